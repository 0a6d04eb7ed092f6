/** The plot of a result: p99 delivery latency against subscribers (bench/results/p99-vs-subscribers.svg). */
import type { BenchResult } from "./report.ts";

/** An SVG line chart of p99 latency against subscribers, one line per target. */
export function p99Svg(result: BenchResult): string {
  const width = 640;
  const height = 360;
  const pad = { left: 60, right: 120, top: 30, bottom: 50 };
  const colors: Record<string, string> = { us: "#d9480f", floor: "#2b8a3e", peer: "#1c7ed6" };
  const points = result.fanout.flatMap((f) =>
    Object.values(f.by_target).map((t) => t.latency_ms.p99),
  );
  const maxY = Math.max(1, ...points.filter(Number.isFinite)) * 1.1;
  const subs = result.fanout.map((f) => f.subscribers);
  const logMin = Math.log10(Math.max(1, Math.min(...subs)));
  const logMax = Math.log10(Math.max(10, Math.max(...subs)));
  const x = (s: number) =>
    pad.left +
    ((Math.log10(Math.max(1, s)) - logMin) / Math.max(1e-9, logMax - logMin)) *
      (width - pad.left - pad.right);
  const y = (v: number) => height - pad.bottom - (v / maxY) * (height - pad.top - pad.bottom);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14">p99 delivery latency vs subscribers (${result.mode})</text>`,
    `<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="black"/>`,
    `<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="black"/>`,
    `<text x="${(width - pad.right + pad.left) / 2}" y="${height - 12}" text-anchor="middle">subscribers on one session (log scale)</text>`,
    `<text x="16" y="${height / 2}" transform="rotate(-90 16 ${height / 2})" text-anchor="middle">p99 ms</text>`,
  ];
  for (const s of subs)
    parts.push(
      `<text x="${x(s)}" y="${height - pad.bottom + 16}" text-anchor="middle">${s}</text>`,
    );
  for (let i = 0; i <= 4; i++) {
    const v = (maxY / 4) * i;
    parts.push(
      `<text x="${pad.left - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`,
    );
    parts.push(
      `<line x1="${pad.left}" y1="${y(v)}" x2="${width - pad.right}" y2="${y(v)}" stroke="#eee"/>`,
    );
  }
  let legend = 0;
  for (const target of ["us", "floor", "peer"] as const) {
    const series = result.fanout
      .map((f) => [f.subscribers, f.by_target[target]?.latency_ms.p99] as const)
      .filter((p): p is readonly [number, number] => p[1] !== undefined && Number.isFinite(p[1]));
    if (series.length === 0) continue;
    const color = colors[target];
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${series.map(([s, v]) => `${x(s)},${y(v)}`).join(" ")}"/>`,
    );
    for (const [s, v] of series)
      parts.push(`<circle cx="${x(s)}" cy="${y(v)}" r="3" fill="${color}"/>`);
    parts.push(
      `<rect x="${width - pad.right + 15}" y="${pad.top + legend * 20}" width="12" height="12" fill="${color}"/>`,
    );
    parts.push(
      `<text x="${width - pad.right + 32}" y="${pad.top + legend * 20 + 10}">${target}</text>`,
    );
    legend++;
  }
  parts.push("</svg>");
  return parts.join("\n");
}
