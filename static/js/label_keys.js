// The labelling page's keyboard, note field and help overlay. Keys do nothing while the expert types in a text
// field or while the help is open (where Esc or ? closes it); holding a key down labels one galaxy, not a run of
// them. Which key does what is the page's business (label.js); this file only dispatches.
(function () {
  "use strict";

  // Keys that may repeat while held: zoom and stretch strength.
  const REPEATABLE = new Set(["[", "]", "+", "=", "-", "_"]);

  function isTyping(element) {
    if (!element || element === document.body) {
      return false;
    }
    if (element.isContentEditable || element.tagName === "TEXTAREA" || element.tagName === "SELECT") {
      return true;
    }
    return element.tagName === "INPUT" && !["range", "checkbox", "radio", "button", "submit"].includes(element.type);
  }

  /** The help dialog: opens with focus on its Close button, and gives focus back where it was on closing. */
  function helpOverlay(element) {
    let opener = null;
    const overlay = {
      isOpen: () => !element.hidden,
      open() {
        opener = document.activeElement;
        element.hidden = false;
        element.querySelector("[data-action=close-help]").focus();
      },
      close() {
        element.hidden = true;
        if (opener && opener.focus) {
          opener.focus();
        }
      },
    };
    element.addEventListener("click", (event) => {
      if (event.target === element) {
        overlay.close();  // a click on the backdrop
      }
    });
    return overlay;
  }

  /**
   * The note for the next label: a small field that Enter keeps and Esc cancels, then a chip showing the kept note.
   * ``say`` reads out what happened.
   */
  function noteField({ form, input, chip, chipText, clear, say }) {
    let text = "";
    const note = {
      value: () => text,
      set(value) {
        text = value;
        chip.hidden = !text;
        chipText.textContent = text;
      },
      open() {
        form.hidden = false;
        input.value = text;
        input.focus();
      },
      close() {
        form.hidden = true;
        input.blur();
      },
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      note.set(input.value.trim());
      note.close();
      say(text ? "The note goes with the next label." : "No note.");
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        note.close();
        say("Note cancelled.");
      }
    });
    clear.addEventListener("click", () => { note.set(""); say("Note removed."); });
    return note;
  }

  /**
   * Dispatch key presses: ``shortcuts`` maps a key to a class key passed to ``label``; ``keys`` maps other keys to
   * functions. Letters are matched in lower case.
   */
  function bindKeys({ shortcuts, label, keys, help }) {
    document.addEventListener("keydown", (event) => {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) {
        return;
      }
      if (help.isOpen()) {
        if (event.key === "Escape" || event.key === "?") {
          event.preventDefault();
          help.close();
        }
        return;
      }
      const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
      const classKey = shortcuts.get(key);
      const action = classKey !== undefined ? () => label(classKey) : keys[key];
      if (!action) {
        return;
      }
      event.preventDefault();
      if (event.repeat && !REPEATABLE.has(key)) {
        return;  // holding a digit down must not label a run of galaxies
      }
      action();
    });
  }

  window.LabelKeys = { bindKeys, helpOverlay, noteField, isTyping };
})();
