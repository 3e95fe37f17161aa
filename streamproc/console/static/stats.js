// /console/stats, polled while a page shows it: rates between two snapshots, and sparklines.
import { get } from "./api.js";
import { svg } from "./dom.js";

export const PERIOD_MS = 2000;
export const RING = 60;  // points a sparkline keeps (two minutes at one poll every 2 s)

/**
 * Poll /console/stats every PERIOD_MS while ``owner`` is in the document; ``each(now, before)``
 * gets every snapshot and the one before it (null the first time). Stops, with no timer left,
 * when the owner leaves the page (another page drawn, or the hash changes); returns stop().
 * ``document.body.dataset.stats`` says "polling" or "stopped" (for tests).
 */
export function pollStats(owner, each) {
  let timer = null;
  let before = null;
  let stopped = false;
  // Which poller the body's flag speaks for: a page drawn anew starts its own before the
  // old one notices it was left, and the old one must not mark the new one stopped.
  const id = Math.random().toString(36).slice(2);
  const stop = () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    window.removeEventListener("hashchange", stop);
    if (document.body.dataset.statsPoller === id) document.body.dataset.stats = "stopped";
  };
  const tick = async () => {
    timer = null;
    if (stopped || !owner.isConnected) { stop(); return; }
    try {
      const now = await get("/console/stats");
      if (stopped || !owner.isConnected) { stop(); return; }
      each(now, before);
      before = now;
    } catch (_) {
      // A failed poll (daemon restarting, session ended): the next one tries again.
    }
    if (!stopped) timer = setTimeout(tick, PERIOD_MS);
  };
  window.addEventListener("hashchange", stop);
  document.body.dataset.statsPoller = id;
  document.body.dataset.stats = "polling";
  tick();
  return stop;
}

/** Frames analysed per second between two snapshots' figures, or null. */
export function fps(now, before, nowAt, beforeAt) {
  if (!now || !before || nowAt <= beforeAt) return null;
  return Math.max(0, now.framesAnalysed - before.framesAnalysed) / ((nowAt - beforeAt) / 1000);
}

/** Mean frame-to-publish latency (ms) of the records published between two snapshots, or null. */
export function latencyMs(now, before) {
  if (!now || !before) return null;
  const count = now.latencyCount - before.latencyCount;
  return count > 0 ? ((now.latencySum - before.latencySum) / count) * 1000 : null;
}

/** A number for people: one decimal below 100, none above. */
export function shown(value, unit = "") {
  if (value === null || value === undefined) return "-";
  return `${value < 100 ? value.toFixed(1) : Math.round(value)}${unit}`;
}

/** A small SVG sparkline over a ring of points, labelled with its latest value. */
export class Sparkline {
  constructor(id, label, unit, width = 240, height = 48) {
    this.label = label;
    this.unit = unit;
    this.width = width;
    this.height = height;
    this.points = [];
    this.line = svg("polyline", { fill: "none", class: "spark-line" });
    this.svg = svg("svg", { id, role: "img", class: "sparkline", width, height,
                            viewBox: `0 0 ${width} ${height}` }, this.line);
    // The latest value as text beside the picture (the picture's label says it to readers).
    this.value = document.createElement("span");
    this.value.className = "spark-value";
    this.value.id = `${id}-value`;
    this.draw();
  }

  /** Add a point (null: no value this time; not drawn); keeps the last RING. */
  push(value) {
    this.points.push(value);
    if (this.points.length > RING) this.points.shift();
    this.draw();
  }

  draw() {
    const values = this.points.filter((v) => v !== null);
    const top = Math.max(1e-9, ...values);
    const step = this.width / (RING - 1);
    const coords = [];
    this.points.forEach((v, i) => {
      if (v === null) return;
      const x = (RING - this.points.length + i) * step;
      const y = this.height - 2 - (v / top) * (this.height - 4);
      coords.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    this.line.setAttribute("points", coords.join(" "));
    this.svg.dataset.points = String(coords.length);
    const latest = values.length ? values[values.length - 1] : null;
    this.svg.setAttribute("aria-label", `${this.label}: ${latest === null ? "no data yet" :
      `latest ${shown(latest, this.unit)}`}`);
    this.value.textContent = shown(latest, this.unit);
  }
}
