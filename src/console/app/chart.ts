/** A small line chart on a canvas: the last N samples of one figure, with its latest value as text. */
import { h } from "./dom.ts";

export class Sparkline {
  readonly el: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly value: HTMLElement;
  private readonly samples: number[] = [];

  constructor(
    readonly label: string,
    private readonly unit: string,
    private readonly keep = 60,
  ) {
    this.canvas = h("canvas", { width: 240, height: 48, role: "img", "aria-label": `${label} over the last minute` });
    this.value = h("span", { class: "spark-value" }, "—");
    this.el = h("figure", { class: "spark" }, h("figcaption", null, label, " ", this.value), this.canvas);
  }

  push(v: number): void {
    this.samples.push(v);
    if (this.samples.length > this.keep) this.samples.shift();
    this.value.textContent = `${Number.isInteger(v) ? v : v.toFixed(1)} ${this.unit}`;
    this.draw();
  }

  private draw(): void {
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    const { width: w, height: hgt } = this.canvas;
    ctx.clearRect(0, 0, w, hgt);
    const max = Math.max(1, ...this.samples);
    ctx.strokeStyle = getComputedStyle(this.canvas).color || "#1b6ac9";
    ctx.lineWidth = 2;
    ctx.beginPath();
    this.samples.forEach((s, i) => {
      const x = (i / Math.max(1, this.keep - 1)) * w;
      const y = hgt - 2 - (s / max) * (hgt - 4);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}
