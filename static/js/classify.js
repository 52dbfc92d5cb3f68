// The volunteers' classify page: walk the dataset's decision tree question by question for one galaxy, then send
// the answers and show the next galaxy. Keys: 1-9 choose an answer, Enter goes on, Backspace goes back, ? help.
// The server takes answers only for the galaxy it offered this page, once (403/409 otherwise: the page says why and
// shows another galaxy), and slows down anyone faster than a person (429: the page says how long to wait).
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("classify-config").textContent);
  const app = document.getElementById("classify-app");
  const questions = new Map(config.tree.questions.map((q) => [q.key, q]));
  const root = config.tree.questions[0].key;
  const el = (id) => document.getElementById(id);
  const button = (action) => app.querySelector(`[data-action="${action}"]`);

  const state = { galaxy: null, path: [], answers: {}, ticked: new Set(), finished: false, sending: false };
  // Codes of a refused offer (labeling/services/votes/offers.py): the galaxy is no longer this page's to answer.
  const OFFER_REFUSED = new Set(["not_offered", "expired", "used"]);

  function status(text) {
    el("classify-status").textContent = text || "";
  }

  function nextOf(question, given) {
    if (question.kind === "multiple") {
      return question.next || null;
    }
    const answer = question.answers.find((a) => a.key === given);
    return answer ? answer.next || null : null;
  }

  function current() {
    return questions.get(state.path[state.path.length - 1]);
  }

  function renderQuestion() {
    const question = current();
    state.finished = false;
    el("summary").hidden = true;
    el("answers").hidden = false;
    el("question-step").textContent = `Question ${state.path.length}`;
    el("question-text").textContent = question.text;
    el("question-help").textContent = question.help || "";
    const multiple = question.kind === "multiple";
    const answers = el("answers");
    answers.replaceChildren(...question.answers.map((answer, index) => {
      const choice = document.createElement("button");
      choice.type = "button";
      choice.className = "answer";
      choice.dataset.answer = answer.key;
      const shortcut = index < 9 ? String(index + 1) : "";
      choice.innerHTML = `<kbd>${shortcut || "·"}</kbd><span></span>`;
      choice.querySelector("span").textContent = answer.text;
      if (shortcut) {
        choice.setAttribute("aria-keyshortcuts", shortcut);
      }
      if (multiple) {
        choice.setAttribute("aria-pressed", String(state.ticked.has(answer.key)));
      }
      choice.addEventListener("click", () => choose(answer.key));
      return choice;
    }));
    button("next").hidden = !multiple;
    button("submit").hidden = true;
    button("back").disabled = state.path.length <= 1;
    renderHelp();
  }

  function renderHelp() {
    const panel = el("help-panel");
    const question = state.finished ? null : current();
    if (!question) {
      panel.replaceChildren();
      return;
    }
    panel.replaceChildren(...question.answers.map((answer) => {
      const item = document.createElement("section");
      item.className = "help-answer";
      const title = document.createElement("h3");
      title.textContent = answer.text;
      const text = document.createElement("p");
      text.className = "small";
      text.textContent = answer.help || "";
      const examples = document.createElement("div");
      examples.className = "help-examples";
      for (const example of answer.examples || []) {
        const image = document.createElement("img");
        image.src = example.url;
        image.alt = example.caption || answer.text;
        image.loading = "lazy";
        examples.append(image);
      }
      item.append(title, text, examples);
      return item;
    }));
  }

  function choose(key) {
    if (state.finished || state.sending || !state.galaxy) {
      return;
    }
    const question = current();
    if (question.kind === "multiple") {
      state.ticked.has(key) ? state.ticked.delete(key) : state.ticked.add(key);
      const choice = el("answers").querySelector(`[data-answer="${CSS.escape(key)}"]`);
      choice.setAttribute("aria-pressed", String(state.ticked.has(key)));
      return;
    }
    state.answers[question.key] = key;
    advance(nextOf(question, key));
  }

  function confirmTicked() {
    const question = current();
    if (question.kind !== "multiple" || state.finished || !state.galaxy) {
      return;
    }
    state.answers[question.key] = question.answers.map((a) => a.key).filter((k) => state.ticked.has(k));
    advance(nextOf(question));
  }

  function advance(next) {
    state.ticked = new Set();
    if (next) {
      state.path.push(next);
      renderQuestion();
    } else {
      renderSummary();
    }
  }

  function renderSummary() {
    state.finished = true;
    el("question-step").textContent = "All done for this galaxy";
    el("question-text").textContent = "Your answers";
    el("question-help").textContent = "Go back to change one, or send them and see the next galaxy.";
    el("answers").hidden = true;
    const list = el("summary-list");
    list.replaceChildren(...state.path.map((key) => {
      const question = questions.get(key);
      const given = state.answers[key];
      const texts = (Array.isArray(given) ? given : [given]).map(
        (k) => (question.answers.find((a) => a.key === k) || { text: k }).text);
      const item = document.createElement("li");
      item.textContent = `${question.text} ${texts.length ? texts.join(", ") : "(none ticked)"}`;
      return item;
    }));
    el("summary").hidden = false;
    button("next").hidden = true;
    button("submit").hidden = false;
    button("back").disabled = false;
    renderHelp();
    button("submit").focus();
  }

  function back() {
    if (state.sending || !state.galaxy) {
      return;
    }
    if (state.finished) {
      renderQuestion();
      return;
    }
    if (state.path.length <= 1) {
      return;
    }
    // The question left behind may hold an answer (when coming back from the summary); a walk down another branch
    // must not send it, or the server refuses a question the walk never reaches.
    delete state.answers[state.path.pop()];
    const question = current();
    const given = state.answers[question.key];
    delete state.answers[question.key];
    state.ticked = new Set(Array.isArray(given) ? given : []);
    renderQuestion();
  }

  async function submit() {
    if (!state.finished || state.sending || !state.galaxy) {
      return;
    }
    state.sending = true;  // until the next galaxy is shown: a second Enter meanwhile sends nothing
    button("submit").disabled = true;
    status("Sending…");
    try {
      let answered = null;  // "saved", or "refused" when the galaxy was no longer this page's to answer
      try {
        const { status: code, data } = await GalaxyApi.postJson(config.urls.submit,
          { galaxy: state.galaxy.id, answers: state.answers });
        if (code === 429) {
          status(`Not saved yet: ${GalaxyApi.errorText(code, data)} Then press Enter to send your answers again.`);
          return;
        }
        if (data && OFFER_REFUSED.has(data.code)) {
          answered = "refused";
          status(data.code === "used" ? "Already saved." : `Not saved: ${data.detail} Here is another galaxy.`);
          await loadNext([state.galaxy.id]);
          return;
        }
        if (code !== 201 && code !== 200) {
          status(`Not saved: ${GalaxyApi.errorText(code, data)}`);
          return;
        }
        answered = "saved";
        el("classified-count").textContent = data.classified;
        status(code === 201 ? "Thank you! Saved." : "Already saved.");
        await loadNext([state.galaxy.id]);
      } catch (error) {
        status(answered === "saved" ? "Saved, but the next galaxy could not be loaded; reload the page to go on."
          : answered ? "The next galaxy could not be loaded; reload the page to go on."
            : "Not saved: the server could not be reached. Check the connection and press Enter again.");
      }
    } finally {
      state.sending = false;
      button("submit").disabled = false;
    }
  }

  // Nothing to answer while the page waits for the server to take requests again.
  function showWaiting(text) {
    state.galaxy = null;
    state.finished = false;
    el("galaxy-image").hidden = true;
    el("question-step").textContent = "";
    el("question-text").textContent = "Just a moment…";
    el("question-help").textContent = "";
    el("answers").replaceChildren();
    el("summary").hidden = true;
    button("next").hidden = true;
    button("submit").hidden = true;
    button("back").disabled = true;
    app.dataset.galaxy = "";
    status(text);
  }

  /** Show the next galaxy offered to this page; false when the server asked to wait (it loads later by itself). */
  async function loadNext(exclude) {
    const url = `${config.urls.next}?exclude=${encodeURIComponent((exclude || []).join(","))}`;
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await response.json().catch(() => null);
    if (response.status === 429) {
      const seconds = Number(response.headers.get("Retry-After")) || (data && data.retry_after) || 30;
      showWaiting(`${GalaxyApi.errorText(429, data)} The next galaxy then appears by itself.`);
      setTimeout(() => loadNext(exclude).then((loaded) => loaded && status(""))
        .catch(() => status("The next galaxy could not be loaded; reload the page to try again.")), seconds * 1000);
      return false;
    }
    if (!response.ok || !data) {
      throw new Error(`the server answered ${response.status}`);
    }
    state.galaxy = data.galaxy;
    state.path = [root];
    state.answers = {};
    state.ticked = new Set();
    const image = el("galaxy-image");
    if (!state.galaxy) {
      image.hidden = true;
      el("classify-empty").hidden = false;
      el("question-text").textContent = "Nothing left to classify here";
      el("answers").replaceChildren();
      el("summary").hidden = true;
      for (const action of ["next", "submit", "back"]) {
        button(action).hidden = true;
      }
      app.dataset.galaxy = "";
      app.dataset.ready = "true";
      return true;
    }
    image.src = state.galaxy.image_url;
    image.hidden = false;
    app.dataset.galaxy = String(state.galaxy.id);
    renderQuestion();
    app.dataset.ready = "true";
    return true;
  }

  function toggleHelp() {
    const panel = el("help-panel");
    panel.hidden = !panel.hidden;
    button("help").setAttribute("aria-expanded", String(!panel.hidden));
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target.matches("input, textarea, select")) {
      return;
    }
    if (/^[1-9]$/.test(event.key) && !state.finished) {
      const choice = el("answers").querySelectorAll(".answer")[Number(event.key) - 1];
      if (choice) {
        event.preventDefault();
        choice.click();
      }
    } else if (event.key === "Enter") {
      event.preventDefault();
      state.finished ? submit() : confirmTicked();
    } else if (event.key === "Backspace") {
      event.preventDefault();
      back();
    } else if (event.key === "?") {
      toggleHelp();
    }
  });
  button("back").addEventListener("click", back);
  button("next").addEventListener("click", confirmTicked);
  button("submit").addEventListener("click", submit);
  button("help").addEventListener("click", toggleHelp);

  loadNext([]).catch(() => status("The next galaxy could not be loaded; reload the page to try again."));
})();
