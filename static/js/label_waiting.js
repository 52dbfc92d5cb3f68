// The labelling page's type-ahead: label and skip keys pressed while the next galaxy is still on its way wait here,
// in the order pressed, and label.js applies them one at a time, each to the galaxy on screen once its image is
// drawn. An expert who types ahead would otherwise lose labels without noticing, so the waiting keys are always
// shown on the stage and anything dropped is said out loud by the page.
(function () {
  "use strict";

  class KeysWaiting {
    /**
     * @param {HTMLElement} element where "2 keys waiting: 6 9" is shown; hidden when none waits.
     * @param {number} limit the most keys that may wait; one more is refused (``push`` returns false).
     */
    constructor(element, limit) {
      this.element = element;
      this.limit = limit;
      this.items = [];  // {kind: "label" | "skip", key, shown, note}
      this.render();
    }

    get size() {
      return this.items.length;
    }

    /** Keep ``item`` behind the others; false when ``limit`` keys wait already. */
    push(item) {
      if (this.items.length >= this.limit) {
        return false;
      }
      this.items.push(item);
      this.render();
      return true;
    }

    /** The key pressed first, taken out; undefined when none waits. */
    shift() {
      const item = this.items.shift();
      this.render();
      return item;
    }

    /** The key pressed last, taken out (undo takes back a waiting key before any label). */
    pop() {
      const item = this.items.pop();
      this.render();
      return item;
    }

    /** Drop every waiting key; returns them. */
    clear() {
      const dropped = this.items;
      this.items = [];
      this.render();
      return dropped;
    }

    render() {
      const n = this.items.length;
      document.body.dataset.keysWaiting = String(n);
      this.element.hidden = n === 0;
      this.element.textContent = n ? `${n} key${n === 1 ? "" : "s"} waiting: ${this.items.map((item) => item.shown)
        .join(" ")}` : "";
    }
  }

  window.LabelWaiting = { KeysWaiting };
})();
