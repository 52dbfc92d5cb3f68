// The labelling page's queue loader: asks the server for the next galaxies of the expert's queue, keeps PREFETCH of
// them (and their images) ready beyond the one shown, and retries when the server cannot be reached or is still
// building the queue. label.js decides what to show; this file only fills ``state.upcoming``.
(function () {
  "use strict";

  class QueueLoader {
    /**
     * @param {object} options
     * @param {object} options.config the page's label-config (urls.next, dataset.id, schema.name).
     * @param {object} options.state label.js's state: current, upcoming, images, done, fetching, retryTimer,
     *   remaining, sent (the request stamp counter).
     * @param {object} options.outbox the LabelOutbox.Outbox: galaxies with a label on its way are not fetched again.
     * @param {number} options.prefetch entries held beyond the one shown.
     * @param {object} options.page label.js's callbacks: say(text), showCounts(), show(entry), showEmpty(text),
     *   queueEnded(reason), setToday(count, stamp), statusText().
     */
    constructor({ config, state, outbox, prefetch, page }) {
      this.config = config;
      this.state = state;
      this.outbox = outbox;
      this.prefetch = prefetch;
      this.page = page;
    }

    /** Entries on this page (shown, upcoming, or with a label still in the outbox): the server must not send them. */
    heldIds() {
      const state = this.state;
      const ids = state.upcoming.map((entry) => entry.id);
      if (state.current) {
        ids.push(state.current.id);
      }
      this.outbox.items().forEach((item) => { if (item.meta.entryId) { ids.push(item.meta.entryId); } });
      return [...new Set(ids)];
    }

    /** The entry's image, loading at most once; the promise rejects when there is none or it does not load. */
    imageFor(entry) {
      let promise = this.state.images.get(entry.id);
      if (!promise) {
        promise = new Promise((resolve, reject) => {
          if (!entry.galaxy.image_url) {
            reject(new Error("no image"));
            return;
          }
          const image = new Image();
          image.decoding = "async";
          image.onload = () => resolve(image);
          image.onerror = () => reject(new Error("the image did not load"));
          image.src = entry.galaxy.image_url;
        });
        promise.catch(() => {});  // shown when the entry is
        this.state.images.set(entry.id, promise);
      }
      return promise;
    }

    wanted() {
      return (this.state.current ? 0 : 1) + this.prefetch - this.state.upcoming.length;
    }

    later(delay) {
      if (!this.state.retryTimer) {
        this.state.retryTimer = window.setTimeout(() => { this.state.retryTimer = null; this.fetchMore(); }, delay);
      }
    }

    async fetchMore() {
      const state = this.state;
      const page = this.page;
      const count = this.wanted();
      if (state.fetching || count <= 0) {
        return;
      }
      state.fetching = true;
      const params = new URLSearchParams({ dataset: this.config.dataset.id, schema: this.config.schema.name, count });
      const exclude = this.heldIds();
      if (exclude.length) {
        params.set("exclude", exclude.join(","));
      }
      const stamp = ++state.sent;  // when it left: see label.js's setToday
      let answer = null;
      try {
        const response = await fetch(`${this.config.urls.next}?${params}`, {
          credentials: "same-origin", headers: { Accept: "application/json" },
        });
        answer = { status: response.status, data: await response.json().catch(() => null) };
      } catch (error) {
        answer = null;
      }
      state.fetching = false;
      if (!answer || answer.status >= 500 || !answer.data) {
        page.say("Could not reach the server for the next galaxies; trying again.");
        this.later(3000);
        return;
      }
      if (answer.status >= 400) {
        const message = window.GalaxyApi.errorText(answer.status, answer.data);
        page.say(`The queue could not be loaded: ${message}`);
        if (!state.current) {
          page.showEmpty(`The queue could not be loaded: ${message}`);
          page.queueEnded("the queue could not be loaded");
        }
        return;
      }
      this.take(answer.data, stamp);
    }

    /** Put the galaxies of a successful answer in line and say what the queue's state is. */
    take(data, stamp) {
      const state = this.state;
      const page = this.page;
      if (this.outbox.counts().waitingLabels === 0) {
        page.setToday(data.labelled_today, stamp);
      }
      state.remaining = typeof data.remaining === "number" ? data.remaining : state.remaining;
      page.showCounts();
      const held = new Set(this.heldIds());
      const fresh = (data.entries || []).filter((entry) => !held.has(entry.id) && !state.done.has(entry.id));
      fresh.forEach((entry) => { state.upcoming.push(entry); this.imageFor(entry); });
      if (fresh.length && page.statusText().startsWith("Building")) {
        page.say("");  // the build has finished: its notice no longer holds
      }
      if (!state.current && state.upcoming.length) {
        page.show(state.upcoming.shift());
      }
      if (!(data.entries || []).length) {
        if (data.building) {
          if (!state.current) {
            page.showEmpty("Building your queue… the next galaxies are being chosen.");
          }
          page.say("Building your queue; checking again every 2 seconds.");
          if (!state.current) {
            page.queueEnded("your queue is being built");
          }
          this.later(2000);
        } else if (!state.current) {
          page.showEmpty(data.message || "Your queue is empty.");
          page.say(data.message || "Your queue is empty.");
          page.queueEnded("your queue is empty");
        }
      } else if (fresh.length && this.wanted() > 0) {
        this.fetchMore();  // the expert labelled while this request was out
      }
    }
  }

  window.LabelQueue = { QueueLoader };
})();
