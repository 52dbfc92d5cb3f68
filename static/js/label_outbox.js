// The labelling page's outbox: every label (and skip) is written to localStorage before it is sent, and leaves only
// once the server has answered 2xx. A network error or a 5xx is retried with backoff (1 s, 2 s, 4 s ... 30 s);
// a 4xx stays, marked failed with the server's message, until the expert discards or retries it. Items go one at a
// time in the order given, so a label changed twice ends as the expert last chose. The labels API is idempotent,
// so sending an item again after an answer that never arrived is harmless.
(function () {
  "use strict";

  const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];

  const { postJson, errorText } = window.GalaxyApi;

  class Outbox {
    /**
     * @param {string} storageKey localStorage key; one per user, so nobody sends another's labels.
     * @param {object} handlers onChange(outbox), onSent(item, data), onRejected(item, message)
     */
    constructor(storageKey, handlers) {
      this.key = storageKey;
      this.handlers = handlers;
      this.memory = [];          // used when localStorage is unavailable
      this.sending = null;       // id of the item whose request is in flight
      this.timer = null;
      this.retrying = false;     // a retryable failure happened and is not resolved yet
      this.waiters = new Map();  // item id -> callbacks waiting for it to settle
      window.addEventListener("online", () => this.flush());
      // Another tab of the same user may add or send items: keep the counts true.
      window.addEventListener("storage", (event) => { if (event.key === this.key) { this.changed(); } });
    }

    items() {
      try {
        return JSON.parse(window.localStorage.getItem(this.key) || "[]");
      } catch (error) {
        return this.memory;
      }
    }

    store(items) {
      this.memory = items;
      try {
        window.localStorage.setItem(this.key, JSON.stringify(items));
      } catch (error) {
        // Storage unavailable or full: keep them in memory for this visit.
      }
      this.changed();
    }

    changed() {
      this.handlers.onChange(this);
    }

    update(id, change) {
      this.store(this.items().map((item) => (item.id === id ? Object.assign(item, change) : item)));
    }

    /** Queue a POST; returns the item. ``meta`` travels with it for messages and for the queue's exclude list. */
    add(kind, url, body, meta) {
      const item = { id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`, kind, url, body,
                     meta: meta || {}, attempts: 0, failed: false, error: "" };
      this.store(this.items().concat([item]));
      this.flush();
      return item;
    }

    has(id) {
      return this.items().some((item) => item.id === id);
    }

    isSending(id) {
      return this.sending === id;
    }

    /** Take an item out before it is sent; false when it is being sent right now (or already gone). */
    remove(id) {
      if (this.sending === id || !this.has(id)) {
        return false;
      }
      this.store(this.items().filter((item) => item.id !== id));
      this.settle(id, false);
      return true;
    }

    /** Resolves once the server has answered for the item: true when it took it, false when it refused it (the item
     * then stays, failed) or the item was removed. */
    settled(id) {
      if (!this.has(id)) {
        return Promise.resolve(true);
      }
      return new Promise((resolve) => {
        this.waiters.set(id, (this.waiters.get(id) || []).concat([resolve]));
      });
    }

    settle(id, sent) {
      (this.waiters.get(id) || []).forEach((resolve) => resolve(sent));
      this.waiters.delete(id);
    }

    retry(id) {
      this.update(id, { failed: false, error: "", attempts: 0 });
      this.flush();
    }

    /** Counts for the page: waiting to be sent (not failed), and failed with a 4xx. */
    counts() {
      const items = this.items();
      const waiting = items.filter((item) => !item.failed);
      return {
        total: items.length,
        waiting: waiting.length,
        waitingLabels: waiting.filter((item) => item.kind === "label").length,
        failed: items.filter((item) => item.failed),
      };
    }

    /** Send every waiting item, one after another; resolves when none is left or a retryable failure waits. */
    async flush() {
      if (this.sending || this.timer) {
        return this.drained;
      }
      this.drained = this.drain();
      return this.drained;
    }

    async drain() {
      for (;;) {
        const item = this.items().find((candidate) => !candidate.failed);
        if (!item) {
          this.retrying = false;
          this.changed();
          return;
        }
        this.sending = item.id;
        let answer = null;
        try {
          answer = await postJson(item.url, item.body);
        } catch (error) {
          answer = null;  // offline, or the server went away
        }
        this.sending = null;
        if (!this.has(item.id)) {
          continue;  // discarded while in flight
        }
        if (answer && answer.status >= 200 && answer.status < 300) {
          this.store(this.items().filter((other) => other.id !== item.id));
          this.settle(item.id, true);
          this.handlers.onSent(item, answer.data);
          continue;
        }
        if (answer && answer.status >= 400 && answer.status < 500 && answer.status !== 408 && answer.status !== 429) {
          const message = errorText(answer.status, answer.data);
          if (item.kind === "label") {
            this.update(item.id, { failed: true, error: message, status: answer.status });
            this.settle(item.id, false);  // it stays, but whoever waits for it learns it was not taken
          } else {
            // A skip the server refuses (the entry is gone) has nothing left worth keeping.
            this.store(this.items().filter((other) => other.id !== item.id));
            this.settle(item.id, false);
          }
          this.handlers.onRejected(item, message);
          continue;
        }
        // Network error, 5xx, 408 or 429: wait, then try again from this item.
        const attempts = item.attempts + 1;
        this.retrying = true;
        this.update(item.id, { attempts });
        const delay = BACKOFF_MS[Math.min(attempts - 1, BACKOFF_MS.length - 1)];
        this.timer = window.setTimeout(() => { this.timer = null; this.flush(); }, delay);
        return;
      }
    }

    /** Try again now rather than at the end of the backoff. */
    retryNow() {
      if (this.timer) {
        window.clearTimeout(this.timer);
        this.timer = null;
      }
      return this.flush();
    }
  }

  window.LabelOutbox = { Outbox };
})();
