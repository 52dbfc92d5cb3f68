// Bulk labelling on the cluster gallery and the similar-galaxies grid (templates/labeling/_bulk_toolbar.html): tick
// galaxies (input.bulk-check), or a whole group at once (input.bulk-all[data-group] ticks every box inside
// [data-bulk-group] of the same name), choose a schema and a class, and one POST to the bulk API labels them all.
// The result, or the server's reason for refusing, is read out in the toolbar's aria-live status line.
(function () {
  "use strict";
  const form = document.getElementById("bulk-toolbar");
  if (!form) {
    return;
  }
  const schema = form.elements.schema;
  const labelClass = form.elements.label_class;
  const note = form.elements.note;
  const submit = document.getElementById("bulk-submit");
  const count = document.getElementById("bulk-count");
  const status = document.getElementById("bulk-status");
  const STORAGE_KEY = "galaxy-labelling:bulk-schema";
  const boxes = () => [...document.querySelectorAll("input.bulk-check")];
  let sending = false;

  function selectedIds() {
    return [...new Set(boxes().filter((box) => box.checked).map((box) => Number(box.value)))];
  }

  function update() {
    const n = selectedIds().length;
    count.textContent = `${n} selected`;
    submit.textContent = `Label ${n} selected`;
    submit.disabled = sending || n === 0 || !labelClass.value;
    document.querySelectorAll("input.bulk-all").forEach((all) => {
      const group = [...document.querySelectorAll(`[data-bulk-group="${all.dataset.group}"] input.bulk-check`)];
      const ticked = group.filter((box) => box.checked).length;
      all.checked = group.length > 0 && ticked === group.length;
      all.indeterminate = ticked > 0 && ticked < group.length;
    });
    document.querySelectorAll(".bulk-tile").forEach((tile) => {
      const box = tile.querySelector("input.bulk-check");
      tile.classList.toggle("is-selected", Boolean(box && box.checked));
    });
  }

  // Only the chosen schema's classes are offered.
  function showClasses() {
    labelClass.querySelectorAll("optgroup").forEach((group) => {
      const mine = group.dataset.schema === schema.value;
      group.hidden = !mine;
      group.disabled = !mine;
    });
    const chosen = labelClass.selectedOptions[0];
    if (chosen && chosen.parentElement.tagName === "OPTGROUP" && chosen.parentElement.disabled) {
      labelClass.value = "";
    }
    update();
  }

  function markLabelled(ids, name) {
    const wanted = new Set(ids.map(String));
    boxes().forEach((box) => {
      if (!wanted.has(box.value)) {
        return;
      }
      box.checked = false;
      const tile = box.closest(".bulk-tile");
      if (tile) {
        tile.classList.add("is-labelled");
        tile.dataset.labelled = name;
        const badges = tile.querySelector(".badges");
        if (badges) {
          badges.prepend(Object.assign(document.createElement("span"), { className: "badge badge-expert",
                                                                            textContent: name }));
        }
      }
    });
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches("input.bulk-all")) {
      document.querySelectorAll(`[data-bulk-group="${target.dataset.group}"] input.bulk-check`)
        .forEach((box) => { box.checked = target.checked; });
    }
    if (target.matches("input.bulk-all, input.bulk-check")) {
      update();
    }
  });
  schema.addEventListener("change", () => {
    try { window.localStorage.setItem(STORAGE_KEY, schema.value); } catch (error) { /* private mode */ }
    showClasses();
  });
  labelClass.addEventListener("change", update);
  document.getElementById("bulk-clear").addEventListener("click", () => {
    boxes().forEach((box) => { box.checked = false; });
    update();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const galaxies = selectedIds();
    if (!galaxies.length || !labelClass.value || sending) {
      return;
    }
    const className = labelClass.selectedOptions[0].textContent;
    sending = true;
    update();
    status.textContent = `Labelling ${galaxies.length} galax${galaxies.length === 1 ? "y" : "ies"}…`;
    try {
      const { status: code, data } = await window.GalaxyApi.postJson(form.dataset.url, {
        schema: schema.value, label_class: labelClass.value, galaxies, note: note.value.trim() });
      if (code === 201 && data) {
        markLabelled(galaxies, className);
        const unchanged = data.unchanged ? `; ${data.unchanged} already had it` : "";
        status.textContent = `Labelled ${data.labelled} galax${data.labelled === 1 ? "y" : "ies"} as ${className}` +
          `${unchanged}.`;
        status.className = "bulk-status bulk-ok";
      } else {
        status.textContent = `Nothing was labelled: ${window.GalaxyApi.errorText(code, data)}`;
        status.className = "bulk-status bulk-error";
      }
    } catch (error) {
      status.textContent = "Nothing was labelled: the server cannot be reached. Try again in a moment.";
      status.className = "bulk-status bulk-error";
    } finally {
      sending = false;
      update();
    }
  });

  try {
    const remembered = window.localStorage.getItem(STORAGE_KEY);
    if (remembered && [...schema.options].some((option) => option.value === remembered)) {
      schema.value = remembered;
    }
  } catch (error) {
    // private mode: the first schema
  }
  showClasses();
})();
