// The volunteers' classify page: walk the dataset's decision tree question by question for one galaxy, then send
// the answers and show the next galaxy. Keys: 1-9 choose an answer, Enter goes on, Backspace goes back, ? help.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("classify-config").textContent);
  const app = document.getElementById("classify-app");
  const questions = new Map(config.tree.questions.map((q) => [q.key, q]));
  const root = config.tree.questions[0].key;
  const el = (id) => document.getElementById(id);
  const button = (action) => app.querySelector(`[data-action="${action}"]`);

  const state = { galaxy: null, path: [], answers: {}, ticked: new Set(), finished: false, sending: false };

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
    if (state.finished || state.sending) {
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
    if (question.kind !== "multiple" || state.finished) {
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
    if (state.sending) {
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
      let saved = false;
      try {
        const { status: code, data } = await GalaxyApi.postJson(config.urls.submit,
          { galaxy: state.galaxy.id, answers: state.answers });
        if (code !== 201 && code !== 200) {
          status(`Not saved: ${GalaxyApi.errorText(code, data)}`);
          return;
        }
        saved = true;
        el("classified-count").textContent = data.classified;
        status(code === 201 ? "Thank you! Saved." : "Already saved.");
        await loadNext([state.galaxy.id]);
      } catch (error) {
        status(saved ? "Saved, but the next galaxy could not be loaded; reload the page to go on."
          : "Not saved: the server could not be reached. Check the connection and press Enter again.");
      }
    } finally {
      state.sending = false;
      button("submit").disabled = false;
    }
  }

  async function loadNext(exclude) {
    const url = `${config.urls.next}?exclude=${encodeURIComponent((exclude || []).join(","))}`;
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await response.json();
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
      return;
    }
    image.src = state.galaxy.image_url;
    image.hidden = false;
    app.dataset.galaxy = String(state.galaxy.id);
    renderQuestion();
    app.dataset.ready = "true";
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
