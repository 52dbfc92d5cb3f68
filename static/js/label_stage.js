// The labelling page's image stage: a galaxy drawn on a <canvas> with a display stretch (linear, asinh or log, with
// a strength), invert, zoom (buttons, keys, mouse wheel) and pan by drag. The stretch is one 256-entry lookup table
// per setting, applied per pixel to the image's original RGB, so changing it costs one pass over the pixels and
// drawing a new galaxy costs one more. Settings persist across galaxies and, through localStorage, across visits.
(function () {
  "use strict";

  const STRETCHES = ["linear", "asinh", "log"];
  const ZOOM_MIN = 1;
  const ZOOM_MAX = 16;
  const ZOOM_STEP = 1.25;
  const STORAGE_KEY = "galaxy-labelling:stage";
  // Strength 0..100 per stretch: linear 0 is the image as served, asinh and log start half-way.
  const DEFAULTS = { stretch: "linear", strength: { linear: 0, asinh: 50, log: 50 }, invert: false, zoom: 1 };

  function clamp(value, low, high) {
    return Math.min(Math.max(value, low), high);
  }

  // The transfer function of each stretch on x in [0, 1], for strength s in [0, 100].
  const TRANSFER = {
    linear: (s) => { const gain = 1 + s / 25; return (x) => x * gain; },                  // gain 1..5
    asinh: (s) => { const b = Math.pow(10, -3 * s / 100); return (x) => Math.asinh(x / b) / Math.asinh(1 / b); },
    log: (s) => { const a = Math.pow(10, 0.5 + 3 * s / 100); return (x) => Math.log1p(a * x) / Math.log1p(a); },
  };

  /** The 256-entry table mapping an 8-bit channel value to its displayed value. */
  function lookupTable(stretch, strength, invert) {
    const f = TRANSFER[stretch](strength);
    const table = new Uint8ClampedArray(256);
    for (let v = 0; v < 256; v++) {
      const y = clamp(f(v / 255), 0, 1);
      table[v] = Math.round(255 * (invert ? 1 - y : y));
    }
    return table;
  }

  function loadSettings() {
    try {
      const saved = JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "{}");
      const strength = Object.assign({}, DEFAULTS.strength, saved.strength || {});
      return {
        stretch: STRETCHES.includes(saved.stretch) ? saved.stretch : DEFAULTS.stretch,
        strength,
        invert: saved.invert === true,
        zoom: clamp(Number(saved.zoom) || 1, ZOOM_MIN, ZOOM_MAX),
      };
    } catch (error) {
      return JSON.parse(JSON.stringify(DEFAULTS));
    }
  }

  class Stage {
    /**
     * @param {HTMLCanvasElement} canvas the visible canvas; it fills its parent.
     * @param {function} onChange called with the settings after each change, to update the controls.
     */
    constructor(canvas, onChange) {
      this.canvas = canvas;
      this.context = canvas.getContext("2d");
      this.onChange = onChange || (() => {});
      this.settings = loadSettings();
      this.original = null;       // ImageData of the galaxy as served
      this.processed = document.createElement("canvas");  // the stretched image at its own size
      this.stretchable = true;    // false when the browser may not read the pixels (another origin)
      this.image = null;
      this.centre = { x: 0, y: 0 };  // the image point at the canvas's centre, in image pixels
      this.table = null;
      this.bindPointer();
      new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
    }

    /** Show a new, already loaded image; the stretch and zoom stay, the view is centred. */
    setImage(image) {
      this.image = image;
      const width = image.naturalWidth;
      const height = image.naturalHeight;
      this.processed.width = width;
      this.processed.height = height;
      const context = this.processed.getContext("2d", { willReadFrequently: true });
      context.drawImage(image, 0, 0);
      try {
        this.original = context.getImageData(0, 0, width, height);
        this.stretchable = true;
      } catch (error) {
        // A tainted canvas (media on another origin without CORS): show the image as served, without stretch.
        this.original = null;
        this.stretchable = false;
      }
      this.centre = { x: width / 2, y: height / 2 };
      this.render();
    }

    clear() {
      this.image = null;
      this.original = null;
      const { width, height } = this.canvas;
      this.context.setTransform(1, 0, 0, 1, 0, 0);
      this.context.clearRect(0, 0, width, height);
    }

    /** Apply the lookup table to every pixel of the original, then draw. */
    render() {
      if (this.original) {
        const { stretch, strength, invert } = this.settings;
        this.table = lookupTable(stretch, strength[stretch], invert);
        const table = this.table;
        const source = this.original.data;
        const out = new ImageData(this.original.width, this.original.height);
        const target = out.data;
        for (let i = 0; i < source.length; i += 4) {
          target[i] = table[source[i]];
          target[i + 1] = table[source[i + 1]];
          target[i + 2] = table[source[i + 2]];
          target[i + 3] = 255;
        }
        this.processed.getContext("2d").putImageData(out, 0, 0);
      }
      this.draw();
    }

    fitScale() {
      const box = this.canvas.parentElement.getBoundingClientRect();
      return Math.min(box.width / this.processed.width, box.height / this.processed.height);
    }

    /** Draw the processed image under the current zoom and pan, sharp at any device pixel ratio. */
    draw() {
      const box = this.canvas.parentElement.getBoundingClientRect();
      const ratio = window.devicePixelRatio || 1;
      const width = Math.max(1, Math.round(box.width * ratio));
      const height = Math.max(1, Math.round(box.height * ratio));
      if (this.canvas.width !== width || this.canvas.height !== height) {
        this.canvas.width = width;
        this.canvas.height = height;
      }
      const context = this.context;
      context.setTransform(1, 0, 0, 1, 0, 0);
      context.clearRect(0, 0, width, height);
      if (!this.image) {
        return;
      }
      this.clampCentre();
      const scale = this.fitScale() * this.settings.zoom;
      // Past 3 screen pixels per image pixel, show the pixels as they are rather than blurred.
      context.imageSmoothingEnabled = scale < 3;
      context.setTransform(ratio * scale, 0, 0, ratio * scale,
        ratio * (box.width / 2 - this.centre.x * scale), ratio * (box.height / 2 - this.centre.y * scale));
      context.drawImage(this.stretchable ? this.processed : this.image, 0, 0);
    }

    // Keep the image covering the view when zoomed in, centred when it fits.
    clampCentre() {
      const box = this.canvas.parentElement.getBoundingClientRect();
      const scale = this.fitScale() * this.settings.zoom;
      const halfW = box.width / 2 / scale;
      const halfH = box.height / 2 / scale;
      const w = this.processed.width;
      const h = this.processed.height;
      this.centre.x = halfW * 2 >= w ? w / 2 : clamp(this.centre.x, halfW, w - halfW);
      this.centre.y = halfH * 2 >= h ? h / 2 : clamp(this.centre.y, halfH, h - halfH);
    }

    save() {
      try {
        window.localStorage.setItem(STORAGE_KEY, JSON.stringify(this.settings));
      } catch (error) {
        // Private browsing or a full storage: the settings still hold for this visit.
      }
      this.onChange(this.settings);
    }

    setStretch(stretch) {
      if (!STRETCHES.includes(stretch) || stretch === this.settings.stretch) {
        return;
      }
      this.settings.stretch = stretch;
      this.save();
      this.render();
    }

    cycleStretch() {
      const next = STRETCHES[(STRETCHES.indexOf(this.settings.stretch) + 1) % STRETCHES.length];
      this.setStretch(next);
    }

    setStrength(value) {
      this.settings.strength[this.settings.stretch] = clamp(Math.round(Number(value)), 0, 100);
      this.save();
      this.render();
    }

    nudgeStrength(delta) {
      this.setStrength(this.settings.strength[this.settings.stretch] + delta);
    }

    toggleInvert() {
      this.settings.invert = !this.settings.invert;
      this.save();
      this.render();
    }

    /** Zoom by ``factor`` keeping the image point under (x, y) (canvas CSS pixels; default the centre) still. */
    zoomBy(factor, x, y) {
      const box = this.canvas.parentElement.getBoundingClientRect();
      const px = x === undefined ? box.width / 2 : x;
      const py = y === undefined ? box.height / 2 : y;
      const before = this.fitScale() * this.settings.zoom;
      const zoom = clamp(this.settings.zoom * factor, ZOOM_MIN, ZOOM_MAX);
      const after = this.fitScale() * zoom;
      // The image point under the pointer: centre + (pointer - middle) / scale; keep it under the pointer.
      const ix = this.centre.x + (px - box.width / 2) / before;
      const iy = this.centre.y + (py - box.height / 2) / before;
      this.centre = { x: ix - (px - box.width / 2) / after, y: iy - (py - box.height / 2) / after };
      this.settings.zoom = zoom;
      this.save();
      this.draw();
    }

    zoomIn() { this.zoomBy(ZOOM_STEP); }

    zoomOut() { this.zoomBy(1 / ZOOM_STEP); }

    resetZoom() {
      this.settings.zoom = 1;
      if (this.image) {
        this.centre = { x: this.processed.width / 2, y: this.processed.height / 2 };
      }
      this.save();
      this.draw();
    }

    bindPointer() {
      const canvas = this.canvas;
      canvas.addEventListener("wheel", (event) => {
        event.preventDefault();
        const box = canvas.getBoundingClientRect();
        this.zoomBy(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, event.clientX - box.left, event.clientY - box.top);
      }, { passive: false });
      let drag = null;
      canvas.addEventListener("pointerdown", (event) => {
        if (this.settings.zoom <= ZOOM_MIN || event.button !== 0) {
          return;
        }
        drag = { x: event.clientX, y: event.clientY };
        canvas.setPointerCapture(event.pointerId);
        canvas.classList.add("dragging");
      });
      canvas.addEventListener("pointermove", (event) => {
        if (!drag) {
          return;
        }
        const scale = this.fitScale() * this.settings.zoom;
        this.centre.x -= (event.clientX - drag.x) / scale;
        this.centre.y -= (event.clientY - drag.y) / scale;
        drag = { x: event.clientX, y: event.clientY };
        this.draw();
      });
      const stop = () => { drag = null; canvas.classList.remove("dragging"); };
      canvas.addEventListener("pointerup", stop);
      canvas.addEventListener("pointercancel", stop);
      canvas.addEventListener("dblclick", () => this.resetZoom());
    }
  }

  /**
   * The stage's buttons (by data-action) and keys, for the page to bind with its own: invert, stretch, strength,
   * zoom. "0" resets the zoom only when no class has it as its shortcut (with ten classes it labels the tenth).
   */
  function stageControls(stage, { zeroIsFree }) {
    const actions = {
      invert: () => stage.toggleInvert(), "zoom-in": () => stage.zoomIn(), "zoom-out": () => stage.zoomOut(),
      "zoom-reset": () => stage.resetZoom(),
    };
    const keys = {
      i: actions.invert, l: () => stage.setStretch("linear"), a: () => stage.setStretch("asinh"),
      g: () => stage.setStretch("log"), c: () => stage.cycleStretch(), "[": () => stage.nudgeStrength(-5),
      "]": () => stage.nudgeStrength(5), "+": actions["zoom-in"], "=": actions["zoom-in"], "-": actions["zoom-out"],
      _: actions["zoom-out"], z: actions["zoom-reset"],
    };
    if (zeroIsFree) {
      keys["0"] = actions["zoom-reset"];
    }
    return { actions, keys };
  }

  window.LabelStage = { Stage, lookupTable, STRETCHES, stageControls };
})();
