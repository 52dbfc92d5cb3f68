// The expert labelling page: one galaxy at a time from the expert's queue, labelled with a key press. The next few
// galaxies are always fetched and their images preloaded, so a label shows the next galaxy at once while the label's
// POST goes out in the background through the outbox (label_outbox.js). Keys pressed while a galaxy is still on its
// way wait, visibly, and are applied in order as the galaxies are shown (label_waiting.js). The image stage is
// label_stage.js; label_queue.js fetches the queue; this file shows its galaxies and holds the actions (label, skip,
// undo); label_views.js draws the panels, label_keys.js the keys.
(function () {
  "use strict";
  const root = document.getElementById("label-app");
  if (!root || !window.LabelStage || !window.LabelOutbox || !window.LabelViews || !window.LabelKeys ||
      !window.LabelWaiting || !window.LabelQueue) {
    return;
  }
  const config = JSON.parse(document.getElementById("label-config").textContent);
  const views = window.LabelViews;
  const byId = (id) => document.getElementById(id);
  const ui = {
    stage: byId("label-stage"), canvas: byId("label-canvas"), loading: byId("stage-loading"), empty: byId("stage-empty"),
    emptyText: byId("stage-empty-text"), title: byId("galaxy-title"), facts: byId("galaxy-facts"),
    today: byId("count-today"), remaining: byId("count-remaining"), status: byId("label-status"),
    banner: byId("outbox-banner"), bannerText: byId("outbox-banner-text"), failures: byId("outbox-failures"),
    pending: byId("outbox-count"), prediction: byId("prediction"), why: byId("why"), votes: byId("votes"),
    neighbours: byId("neighbours"), yourLabel: byId("your-label"), noteForm: byId("note-form"),
    noteInput: byId("note-input"), noteChip: byId("note-chip"), noteChipText: byId("note-chip-text"),
    help: byId("help"), strength: byId("stretch-strength"), strengthValue: byId("stretch-strength-value"),
    zoomValue: byId("zoom-value"), waiting: byId("keys-waiting"),
  };
  const classes = config.schema.classes;
  const classByKey = new Map(classes.map((c) => [c.key, c]));
  const shortcuts = new Map(classes.filter((c) => c.shortcut).map((c) => [c.shortcut, c.key]));
  const buttons = new Map([...root.querySelectorAll(".class-button")].map((b) => [b.dataset.class, b]));
  const PREFETCH = 3;          // entries held (and images loaded) beyond the one shown, so typing ahead rarely waits
  const HISTORY = 50;          // labels undo can walk back through on this page
  const MAX_WAITING = 20;      // keys that may wait for galaxies still loading; one more is refused, out loud

  const state = {
    current: null, ready: false, upcoming: [], images: new Map(), history: [], done: new Set(),
    fetching: false, retryTimer: null, today: null, remaining: null, undoing: false,
    // Answers carry the server's count of today's labels as it was when it answered. Each request is stamped when it
    // leaves and a count is taken only from an answer at least as recent as the one shown (see setToday): a queue
    // request sent before an undo must not bring back the count from before the undo.
    sent: 0, todayStamp: 0,
    broken: false,   // the galaxy shown has no image: it can only be skipped
    ended: false,    // no galaxy shown and none coming (the queue is empty, building or failed to load)
  };
  const waiting = new window.LabelWaiting.KeysWaiting(ui.waiting, MAX_WAITING);

  function say(text) {
    ui.status.textContent = text;
  }

  /** Take ``count`` as today's labels when the answer it came in was stamped ``stamp`` or later than the last one. */
  function setToday(count, stamp) {
    if (typeof count === "number" && stamp >= state.todayStamp) {
      state.today = count;
      state.todayStamp = stamp;
    }
  }

  // --- The stage and its controls -------------------------------------------------------------------------------

  const stage = new window.LabelStage.Stage(ui.canvas, syncControls);

  function syncControls(settings) {
    root.querySelectorAll("[data-stretch]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.stretch === settings.stretch));
    });
    ui.strength.value = settings.strength[settings.stretch];
    ui.strengthValue.textContent = settings.strength[settings.stretch];
    root.querySelector("[data-action=invert]").setAttribute("aria-pressed", String(settings.invert));
    ui.zoomValue.textContent = `${Math.round(settings.zoom * 100)}%`;
  }
  syncControls(stage.settings);

  // --- The outbox ------------------------------------------------------------------------------------------------

  const outbox = new window.LabelOutbox.Outbox(`galaxy-labelling:outbox:${config.user}`, {
    onChange: showOutbox,
    onSent(item, data) {
      // Stamped on arrival: the outbox sends one at a time, and an undo waits for it, so nothing sent later
      // has answered yet.
      if (item.kind === "label" && data && typeof data.labelled_today === "number") {
        setToday(data.labelled_today, ++state.sent);
        showCounts();
      }
    },
    onRejected(item, message) {
      say(`${item.meta.externalId || "A galaxy"}: not saved: ${message}`);
    },
  });

  function showOutbox() {
    const counts = outbox.counts();
    document.body.dataset.outbox = String(counts.total);
    ui.pending.textContent = String(counts.total);
    const retrying = outbox.retrying && counts.waiting > 0;
    ui.banner.hidden = !retrying;
    if (retrying) {
      const n = counts.waitingLabels || counts.waiting;
      const noun = counts.waitingLabels ? "label" : "skip";
      ui.bannerText.textContent = `${n} ${noun}${n === 1 ? "" : "s"} not saved yet — retrying`;
    }
    views.failures(ui.failures, counts.failed, {
      discard(item) {
        outbox.remove(item.id);
        state.history = state.history.filter((given) => given.itemId !== item.id);  // nothing left to undo
        say(`Discarded the label of ${item.meta.externalId}`);
      },
      retry(item) { outbox.retry(item.id); },
    });
    showCounts();
  }

  byId("outbox-retry").addEventListener("click", () => outbox.retryNow());

  function showCounts() {
    // Labels still in the outbox count already: the expert gave them.
    const waiting = outbox.counts().waitingLabels;
    ui.today.textContent = state.today === null ? "–" : String(state.today + waiting);
    ui.remaining.textContent = state.remaining === null ? "–" : String(state.remaining);
  }

  // --- The queue (label_queue.js fetches; this file shows) --------------------------------------------------------

  const queue = new window.LabelQueue.QueueLoader({
    config, state, outbox, prefetch: PREFETCH,
    page: { say, showCounts, show, showEmpty, queueEnded, setToday, statusText: () => ui.status.textContent },
  });
  const fetchMore = () => queue.fetchMore();
  const imageFor = (entry) => queue.imageFor(entry);

  function showEmpty(text) {
    ui.emptyText.textContent = text;
    ui.empty.hidden = false;
  }

  /** No galaxy is shown and none is on its way: keys waiting for one are dropped, and the expert is told. */
  function queueEnded(reason) {
    state.ended = true;
    dropWaiting(reason);
  }

  function dropWaiting(reason) {
    const dropped = waiting.clear();
    if (dropped.length) {
      say(`${dropped.length} key${dropped.length === 1 ? "" : "s"} pressed ahead (` +
        `${dropped.map((item) => item.shown).join(" ")}) not applied: ${reason}.`);
    }
  }

  function show(entry) {
    state.current = entry;
    state.ready = false;
    state.broken = false;
    state.ended = state.ended && !entry;
    ui.stage.dataset.ready = "false";
    ui.stage.dataset.galaxy = entry ? String(entry.galaxy.id) : "";
    root.dataset.entry = entry ? String(entry.id) : "";
    if (!entry) {
      stage.clear();
      views.clear(ui);
      showEmpty("Loading the next galaxy…");
      fetchMore();
      return;
    }
    ui.empty.hidden = true;
    ui.canvas.setAttribute("aria-label", `Galaxy ${entry.galaxy.external_id}`);
    views.entry(ui, entry, { classByKey, buttons });
    const slow = window.setTimeout(() => { ui.loading.hidden = false; }, 120);
    imageFor(entry).then((image) => {
      window.clearTimeout(slow);
      if (state.current !== entry) {
        return;
      }
      ui.loading.hidden = true;
      stage.setImage(image);
      state.ready = true;
      ui.stage.dataset.ready = "true";
      applyWaiting();
    }, (error) => {
      window.clearTimeout(slow);
      if (state.current === entry) {
        ui.loading.hidden = true;
        stage.clear();
        state.broken = true;
        showEmpty(`${entry.galaxy.external_id}: ${error.message}. Press s to skip it.`);
        // Keys typed ahead were meant for galaxies the expert expected to see, not for one with no image.
        dropWaiting(`the image of ${entry.galaxy.external_id} did not load`);
      }
    });
    state.images.delete(entry.id);  // the promise is held above; the cache is for entries still to come
  }

  function advance() {
    show(state.upcoming.shift() || null);
    fetchMore();
  }

  /** Show ``entry`` again (after an undo); the galaxy that was shown comes next. */
  function putBack(entry) {
    if (state.current) {
      state.upcoming.unshift(state.current);
    }
    state.upcoming = state.upcoming.filter((other) => other.id !== entry.id && other.galaxy.id !== entry.galaxy.id);
    state.done.delete(entry.id);
    show(entry);
  }

  // --- Actions ---------------------------------------------------------------------------------------------------

  /** True while a key has to wait: the galaxy it is for is still on its way, or an undo is bringing one back. */
  function mustWait() {
    return state.undoing || (state.current ? !state.ready && !state.broken : !state.ended);
  }

  /** Keep a key pressed ahead; its note (if any) goes with it, since the note was meant for that label. */
  function keepWaiting(item) {
    if (!waiting.push({ ...item, note: note.value() })) {
      say(`${MAX_WAITING} keys are waiting already: ${item.shown} was not taken.`);
      return;
    }
    note.set("");
  }

  /** Apply the oldest waiting key to the galaxy now shown, once it is drawn; called each time one is. */
  function applyWaiting() {
    if (!waiting.size || mustWait()) {
      return;
    }
    const item = waiting.shift();
    if (item.kind === "skip") {
      skipNow();
    } else {
      labelNow(item.key, item.note);
    }
  }

  function label(key) {
    const chosen = classByKey.get(key);
    if (!chosen) {
      return;
    }
    if (waiting.size || mustWait()) {
      keepWaiting({ kind: "label", key, shown: chosen.shortcut || chosen.name });
    } else if (state.broken) {
      say(`${state.current.galaxy.external_id} has no image to label. Press s to skip it.`);
    } else if (!state.current) {
      say("Nothing to label right now.");
    } else {
      const text = note.value();
      note.set("");
      labelNow(key, text);
    }
  }

  function labelNow(key, text) {
    const entry = state.current;
    const chosen = classByKey.get(key);
    const item = outbox.add("label", config.urls.labels, {
      galaxy: entry.galaxy.id, schema: config.schema.name, label_class: key, note: text, queue_entry: entry.id,
    }, { entryId: entry.id, galaxyId: entry.galaxy.id, externalId: entry.galaxy.external_id, className: chosen.name });
    state.history.push({ entry, itemId: item.id, name: chosen.name });
    state.history = state.history.slice(-HISTORY);
    state.done.add(entry.id);
    views.flash(buttons.get(key));
    say(`${entry.galaxy.external_id}: ${chosen.name}${text ? " (with note)" : ""}`);
    advance();
  }

  function skip() {
    // A galaxy still loading may be skipped at once (nothing is waiting ahead of the s), but with no galaxy shown
    // the s is for the next one to come, behind any keys already waiting.
    if (waiting.size || state.undoing || (!state.current && !state.ended)) {
      keepWaiting({ kind: "skip", shown: "s" });
    } else {
      skipNow();
    }
  }

  function skipNow() {
    const entry = state.current;
    if (!entry) {
      return;
    }
    outbox.add("skip", config.urls.skip.replace("ENTRY", String(entry.id)), undefined,
      { entryId: entry.id, galaxyId: entry.galaxy.id, externalId: entry.galaxy.external_id });
    state.done.add(entry.id);
    say(`Skipped ${entry.galaxy.external_id}`);
    advance();
  }

  async function undo() {
    if (waiting.size) {
      const taken = waiting.pop();
      if (taken.note && !note.value()) {
        note.set(taken.note);
      }
      say(`Took back the key ${taken.shown}, which was still waiting.`);
      return;
    }
    if (state.undoing) {
      return;
    }
    const last = state.history.pop();
    // Not sent yet: take it out of the outbox, and the server never hears of it.
    if (last && outbox.remove(last.itemId)) {
      putBack(last.entry);
      say(`Undone: ${last.name} for ${last.entry.galaxy.external_id}`);
      return;
    }
    state.undoing = true;
    try {
      // On its way right now: let it land, then undo it on the server; if the server refused it, drop it here.
      if (last && outbox.has(last.itemId) && !(await outbox.settled(last.itemId)) && outbox.remove(last.itemId)) {
        putBack(last.entry);
        say(`Undone: ${last.name} for ${last.entry.galaxy.external_id}`);
        return;
      }
      const stamp = ++state.sent;
      const answer = await window.GalaxyApi.postJson(config.urls.undo,
        { dataset: config.dataset.id, schema: config.schema.name });
      if (answer.status === 200 && answer.data) {
        const data = answer.data;
        setToday(data.labelled_today, stamp);
        const entry = data.entry || (last && data.undone && last.entry.galaxy.id === data.undone.galaxy ?
          last.entry : null);
        if (entry) {
          putBack(entry);
        }
        const name = data.undone && classByKey.has(data.undone.label_class) ?
          classByKey.get(data.undone.label_class).name : "the label";
        say(`Undone: ${name}${entry ? ` for ${entry.galaxy.external_id}` : ""}`);
        showCounts();
      } else if (answer.status === 404) {
        say("Nothing to undo.");
      } else {
        say(`Could not undo: ${window.GalaxyApi.errorText(answer.status, answer.data)}`);
        if (last) {
          state.history.push(last);
        }
      }
    } catch (error) {
      say("Could not undo: the server cannot be reached. Try again in a moment.");
      if (last) {
        state.history.push(last);
      }
    } finally {
      state.undoing = false;
      applyWaiting();  // keys pressed during the undo are for the galaxy it brought back
    }
  }

  // --- Notes, help, keys and buttons ----------------------------------------------------------------------------

  const note = window.LabelKeys.noteField({ form: ui.noteForm, input: ui.noteInput, chip: ui.noteChip,
                                            chipText: ui.noteChipText, clear: byId("note-clear"), say });
  const help = window.LabelKeys.helpOverlay(ui.help);
  const controls = window.LabelStage.stageControls(stage, { zeroIsFree: !shortcuts.has("0") });
  const ACTIONS = {
    ...controls.actions, skip, undo, note: note.open, help: help.open, "close-help": help.close,
    "retry-queue": () => fetchMore(),
  };
  const KEYS = { ...controls.keys, s: skip, u: undo, n: note.open, "?": help.open };
  window.LabelKeys.bindKeys({ shortcuts, label, keys: KEYS, help });

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || !root.contains(button)) {
      return;
    }
    if (button.dataset.class) {
      label(button.dataset.class);
    } else if (button.dataset.stretch) {
      stage.setStretch(button.dataset.stretch);
    } else if (ACTIONS[button.dataset.action]) {
      ACTIONS[button.dataset.action]();
    }
  });
  ui.strength.addEventListener("input", () => stage.setStrength(ui.strength.value));

  // --- Start: send what an earlier visit left, then fill the queue ----------------------------------------------

  showOutbox();
  const leftOver = outbox.counts().total;
  if (leftOver) {
    say(`Sending ${leftOver} label${leftOver === 1 ? "" : "s"} left from an earlier visit…`);
  }
  outbox.flush().finally(() => fetchMore());
  window.galaxyLabelling = { state, outbox, stage };
})();
