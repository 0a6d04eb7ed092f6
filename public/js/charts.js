// A small line chart on a canvas: the last `capacity` values of one or more series.
export class LineChart {
  constructor(
    canvas,
    { capacity = 120, colors = ["#f0a030", "#58a6ff", "#3fb950", "#bc8cff"] } = {},
  ) {
    this.canvas = canvas;
    this.capacity = capacity;
    this.colors = colors;
    this.series = new Map();
  }

  push(name, value) {
    const values = this.series.get(name) ?? [];
    values.push(Number.isFinite(value) ? value : 0);
    if (values.length > this.capacity) values.shift();
    this.series.set(name, values);
  }

  draw() {
    const { canvas } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio;
    const height = canvas.clientHeight * ratio;
    if (canvas.width !== width || canvas.height !== height)
      Object.assign(canvas, { width, height });
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    let max = 1;
    for (const values of this.series.values()) for (const v of values) max = Math.max(max, v);
    ctx.lineWidth = 1.5 * ratio;
    let i = 0;
    for (const [name, values] of this.series) {
      ctx.strokeStyle = this.colors[i % this.colors.length];
      ctx.beginPath();
      // Few points yet: spread them over the width; then the last `capacity` scroll by.
      const span = Math.max(1, Math.min(this.capacity, values.length) - 1);
      values.forEach((v, x) => {
        const px = (x / span) * width;
        const py = height - (v / max) * (height - 14 * ratio) - 2 * ratio;
        if (x === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      });
      ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle;
      ctx.font = `${11 * ratio}px system-ui`;
      ctx.fillText(name, 4 * ratio + i * 90 * ratio, 11 * ratio);
      i++;
    }
    ctx.fillStyle = "#8b98a5";
    ctx.textAlign = "right";
    ctx.fillText(String(Math.round(max * 10) / 10), width - 2 * ratio, 11 * ratio);
    ctx.textAlign = "left";
  }
}

// Parses Prometheus text: [{ name, labels, value }].
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

// Work objects owed others and retried by their own alarms
// (crafting_owed_work_total), one row per object and work, by outcome:
// [{ object, work, retry_scheduled, done, abandoned }], the given-up first.
const OWED_OUTCOMES = ["retry_scheduled", "done", "abandoned"];
export function owedWork(samples) {
  const rows = new Map();
  for (const { name, labels, value } of samples) {
    if (name !== "crafting_owed_work_total") continue;
    const key = `${labels.object} ${labels.work}`;
    const row = rows.get(key) ?? {
      object: labels.object,
      work: labels.work,
      retry_scheduled: 0,
      done: 0,
      abandoned: 0,
    };
    if (OWED_OUTCOMES.includes(labels.outcome)) row[labels.outcome] += value;
    rows.set(key, row);
  }
  return [...rows.values()].sort(
    (a, b) =>
      b.abandoned - a.abandoned || `${a.object} ${a.work}`.localeCompare(`${b.object} ${b.work}`),
  );
}

// A token from the URL fragment (never sent to the server), else session storage.
export function tokenFrom(key) {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem(key, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(key);
}
