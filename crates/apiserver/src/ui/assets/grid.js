// The fleet as a <canvas>: one square per node in name order, filled with its state's colour.
// Drawing is one fillRect per cell grouped by colour, so 10,000 nodes cost a few
// milliseconds and no DOM; the hover tooltip maps the pointer back to a node index.
"use strict";

const Grid = (() => {
  // Legend order of Fleet's states: updated, old revision, unavailable, missing, excluded,
  // failed (the health gate's: dark violet, apart from every other state's colour).
  const COLOURS = ["#2e9e5b", "#3b7dd8", "#e0a526", "#d6453d", "#c8ccd2", "#6a1b9a"];
  const GAP = 1;

  class Grid {
    constructor(canvas) {
      this.canvas = canvas;
      this.ctx = canvas.getContext("2d");
      this.cell = 12;
      this.columns = 1;
      this.count = 0;
    }

    // Cells as large as fit about a screen's worth of grid, between 3 and 16 pixels.
    layout(count) {
      const width = Math.max(200, this.canvas.parentElement.clientWidth);
      const area = width * Math.max(240, Math.min(window.innerHeight * 0.6, 720));
      const side = Math.floor(Math.sqrt(area / Math.max(count, 1)));
      this.cell = Math.max(3, Math.min(16, side));
      const pitch = this.cell + GAP;
      this.columns = Math.max(1, Math.floor((width + GAP) / pitch));
      const rows = Math.max(1, Math.ceil(count / this.columns));
      const ratio = window.devicePixelRatio || 1;
      const cssWidth = this.columns * pitch - GAP;
      const cssHeight = rows * pitch - GAP;
      if (this.cssWidth !== cssWidth || this.cssHeight !== cssHeight || this.ratio !== ratio) {
        this.cssWidth = cssWidth;
        this.cssHeight = cssHeight;
        this.ratio = ratio;
        this.canvas.style.width = cssWidth + "px";
        this.canvas.style.height = cssHeight + "px";
        this.canvas.width = Math.ceil(cssWidth * ratio);
        this.canvas.height = Math.ceil(cssHeight * ratio);
      }
      this.count = count;
    }

    draw(states) {
      this.layout(states.length);
      const ctx = this.ctx;
      ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
      ctx.clearRect(0, 0, this.cssWidth, this.cssHeight);
      const pitch = this.cell + GAP;
      for (let s = 0; s < COLOURS.length; s++) {
        ctx.fillStyle = COLOURS[s];
        ctx.beginPath();
        for (let i = 0; i < states.length; i++) {
          if (states[i] !== s) continue;
          ctx.rect((i % this.columns) * pitch, Math.floor(i / this.columns) * pitch, this.cell, this.cell);
        }
        ctx.fill();
      }
    }

    // The node index under a pointer event, or -1.
    indexAt(event) {
      const box = this.canvas.getBoundingClientRect();
      const pitch = this.cell + GAP;
      const x = Math.floor((event.clientX - box.left) / pitch);
      const y = Math.floor((event.clientY - box.top) / pitch);
      if (x < 0 || x >= this.columns || y < 0) return -1;
      const i = y * this.columns + x;
      return i < this.count ? i : -1;
    }
  }

  return { Grid, COLOURS };
})();
