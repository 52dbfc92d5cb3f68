// The labelling page's side panels, drawn from one queue entry: the galaxy's facts, the model's prediction (also as
// a thin bar on each class button), why the queue chose it, the volunteers' votes and its nearest neighbours; and
// the list of labels the server refused. Everything is built with DOM calls, never from HTML strings, because
// catalogue ids and question texts come from imported files.
(function () {
  "use strict";

  const STRATEGIES = {
    combined: "combined score", margin: "margin", least_confidence: "least confidence", entropy: "entropy",
    bald: "BALD", cluster_margin: "cluster-margin", typiclust: "typical (TypiClust)", kcenter: "k-center greedy",
    disagreement: "volunteer disagreement", random: "random",
  };

  /** h("p", {class: "x"}, "text", child...) */
  function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    Object.entries(attributes || {}).forEach(([name, value]) => {
      if (value === null || value === undefined || value === false) {
        return;
      }
      if (name === "text") {
        element.textContent = value;
      } else if (name === "style") {
        Object.assign(element.style, value);
      } else {
        element.setAttribute(name, value === true ? "" : String(value));
      }
    });
    children.flat(Infinity).forEach((child) => {
      if (child !== null && child !== undefined && child !== false) {
        element.append(child instanceof Node ? child : String(child));
      }
    });
    return element;
  }

  function percent(fraction) {
    return `${Math.round(100 * fraction)}%`;
  }

  function number(value, digits) {
    return typeof value === "number" ? value.toFixed(digits) : "–";
  }

  /** One compact bar: label, track with fill, value. */
  function bar(label, fraction, value, options) {
    const width = `${Math.max(0, Math.min(1, fraction || 0)) * 100}%`;
    return h("li", { class: `mini-bar${options && options.leading ? " leading" : ""}`, "data-key": options && options.key },
      h("span", { class: "mini-label", title: label, text: label }),
      h("span", { class: "mini-track", "aria-hidden": "true" }, h("span", { class: "mini-fill", style: { width } })),
      h("span", { class: "mini-value", text: value }));
  }

  function facts(ui, galaxy) {
    ui.title.replaceChildren(h("a", { href: galaxy.detail_url, target: "_blank", rel: "noopener",
                                      class: "mono", text: galaxy.external_id }));
    const parts = [galaxy.dataset];
    if (galaxy.ra !== null && galaxy.ra !== undefined) {
      parts.push(`RA ${number(galaxy.ra, 5)}°, Dec ${number(galaxy.dec, 5)}°`);
    }
    if (galaxy.width) {
      parts.push(`${galaxy.width} × ${galaxy.height} px`);
    }
    ui.facts.textContent = parts.join(" · ");
  }

  function prediction(ui, entry, context) {
    const p = entry.prediction;
    const byKey = new Map(((p && p.probabilities) || []).map((row) => [row.key, row.p]));
    context.buttons.forEach((button, key) => {
      const value = byKey.get(key);
      button.querySelector(".class-p span").style.width = `${100 * (value || 0)}%`;
      button.querySelector(".class-pct").textContent = value === undefined ? "" : percent(value);
      button.classList.toggle("is-predicted", Boolean(p) && p.label_class === key);
      button.classList.toggle("is-yours", Boolean(entry.your_label) && entry.your_label.key === key);
    });
    // Outside models' imported predictions, beside ours: name, likeliest class, the top three.
    const imported = (entry.imported_predictions || []).map((o) => h("div", { class: "imported-prediction", "data-model": o.model },
      h("p", { class: "small" }, h("strong", { text: o.model }), " ", h("span", { class: "muted", text: "(imported)" }),
        ": ", h("span", { text: `${o.name} ${percent(o.probability)}` })),
      h("ul", { class: "mini-bars" }, (o.probabilities || []).slice(0, 3).map((row, n) =>
        bar(row.name, row.p, percent(row.p), { leading: n === 0, key: row.key })))));
    if (!p) {
      ui.prediction.replaceChildren(h("p", { class: "muted small", text:
        "No model yet: predictions appear once a probability model has been fitted on enough labels." }), ...imported);
      return;
    }
    const details = [p.calibrated ? "calibrated" : "not calibrated",
                     p.classifier_id ? `head #${p.classifier_id}` : null,
                     typeof p.n_labels === "number" ? `${p.n_labels} labels` : null].filter(Boolean).join(" · ");
    ui.prediction.replaceChildren(
      h("p", { class: "prediction-top" }, h("strong", { text: p.name }), " ", h("span", { text: percent(p.probability) })),
      h("ul", { class: "mini-bars" }, (p.probabilities || []).slice(0, 5).map((row, n) =>
        bar(row.name, row.p, percent(row.p), { leading: n === 0, key: row.key }))),
      h("p", { class: "muted small", text: details }), ...imported);
  }

  function why(ui, entry) {
    const w = entry.why || {};
    const strategy = STRATEGIES[w.strategy] || w.strategy || "–";
    const rows = [["Strategy", w.requested_strategy && w.requested_strategy !== w.strategy ?
      `${strategy} (asked: ${STRATEGIES[w.requested_strategy] || w.requested_strategy})` : strategy],
    ["Score", `${number(w.score, 3)}${w.rank ? ` · rank ${w.rank}` : ""}`]];
    if (w.model_version) {
      rows.push(["Features", w.model_version]);
    }
    if (w.classifier) {
      rows.push(["Model", w.classifier]);
    }
    const components = Object.entries(w.components || {});
    ui.why.replaceChildren(
      w.double_label ? h("p", { class: "badge badge-double", text: "Second opinion: another expert labels it too" }) : "",
      h("dl", { class: "why-list" }, rows.map(([term, value]) => [h("dt", { text: term }), h("dd", { text: value })])),
      components.length ? h("ul", { class: "mini-bars" }, components.map(([name, value]) =>
        bar(STRATEGIES[name] || name.replace(/_/g, " "), value, number(value, 2)))) : "",
      w.built_at ? h("p", { class: "muted small" }, "Queue built ",
        h("time", { datetime: w.built_at, text: new Date(w.built_at).toLocaleString() })) : "");
  }

  function votes(ui, entry) {
    const blocks = entry.votes || [];
    if (!blocks.length) {
      ui.votes.replaceChildren(h("p", { class: "muted small", text: "No volunteer votes for this galaxy." }));
      return;
    }
    ui.votes.replaceChildren(...blocks.map((block) => h("div", { class: "vote-block", "data-tree": block.tree },
      h("h3", {}, block.tree, " ", h("span", { class: "muted small", text: `(${block.source})` })),
      (block.questions || []).map((question) => {
        const top = Math.max(0, ...(question.answers || []).map((a) => a.fraction || 0));
        return h("div", { class: "vote-question", "data-question": question.key },
          h("p", { class: "vote-text", title: question.text }, question.text, " ",
            h("span", { class: "muted", text: question.total ? `${question.total} votes` : "" })),
          h("ul", { class: "mini-bars" }, (question.answers || []).map((answer) =>
            bar(answer.text, answer.fraction, `${percent(answer.fraction || 0)}${typeof answer.count === "number" ?
              ` (${answer.count})` : ""}`, { leading: top > 0 && answer.fraction === top, key: answer.key }))));
      }))));
  }

  function neighbours(ui, entry) {
    const list = entry.neighbours || [];
    if (!list.length) {
      ui.neighbours.replaceChildren(h("p", { class: "muted small", text:
        "No neighbours: this dataset has no similarity index yet." }));
      return;
    }
    ui.neighbours.replaceChildren(h("ul", { class: "label-neighbours" }, list.map((n) => {
      const name = n.label ? n.label.name : "unlabelled";
      return h("li", { "data-galaxy": n.id },
        h("a", { href: n.detail_url, target: "_blank", rel: "noopener",
                 title: `${name} · neighbour #${n.rank} · similarity ${n.likeness ?? "–"} of 100 ` +
                        `(100: identical features, 0: as far apart as a random pair) · cosine ${number(n.similarity, 3)}` },
          n.thumbnail_url ? h("img", { src: n.thumbnail_url, alt: `Neighbour: ${name}`, width: 96, height: 96 }) :
            h("span", { class: "placeholder" }, h("small", { text: "no image" })),
          // Cosines of near neighbours all read 1.00; the rank and the 0-100 figure differ from tile to tile.
          h("span", { class: "score", "data-likeness": n.likeness ?? "",
                      text: n.likeness === null || n.likeness === undefined ? `#${n.rank}` : `#${n.rank} · ${n.likeness}` })),
        n.label ? h("span", { class: `badge ${n.label_source === "expert" ? "badge-expert" : "badge-consensus"}`,
                              text: n.label.name, title: n.label_source || "" }) :
          h("span", { class: "badge badge-uncertain", text: "unlabelled" }));
    })));
  }

  const LabelViews = {
    entry(ui, entry, context) {
      facts(ui, entry.galaxy);
      ui.yourLabel.hidden = !entry.your_label;
      ui.yourLabel.textContent = entry.your_label ? `You labelled it ${entry.your_label.name} before.` : "";
      prediction(ui, entry, context);
      why(ui, entry);
      votes(ui, entry);
      neighbours(ui, entry);
    },

    clear(ui) {
      ui.title.textContent = "No galaxy";
      ui.facts.textContent = "";
      ui.yourLabel.hidden = true;
      [ui.prediction, ui.why, ui.votes, ui.neighbours].forEach((panel) => panel.replaceChildren());
    },

    /** The labels the server refused, each with its message and Retry / Discard buttons. */
    failures(list, items, actions) {
      list.hidden = !items.length;
      list.replaceChildren(...items.map((item) => {
        const retry = h("button", { type: "button", class: "button-quiet", text: "Retry" });
        const discard = h("button", { type: "button", class: "button-quiet", text: "Discard" });
        retry.addEventListener("click", () => actions.retry(item));
        discard.addEventListener("click", () => actions.discard(item));
        return h("li", { class: "outbox-failure", "data-item": item.id },
          h("span", {}, h("strong", { text: `${item.meta.externalId}: ${item.meta.className || "label"}` }),
            ` not saved: ${item.error}`), retry, discard);
      }));
    },

    /** A short highlight on the class button just chosen. */
    flash(button) {
      if (!button) {
        return;
      }
      button.classList.remove("flash");
      void button.offsetWidth;  // restart the animation
      button.classList.add("flash");
    },
  };

  window.LabelViews = LabelViews;
})();
