/**
 * Counting and rendering, as pure code. A `MetricsBuffer` collects deltas
 * where things happen; `mergeTotals` sums deltas into totals (the
 * aggregator's state); `renderPrometheus` writes the text exposition format.
 */
import { CloseCode } from "../errors";
import { DERIVED_GAUGES, LATENCY_BUCKETS, METRICS, type MetricName } from "./catalogue";

/** The close code of a connection that ended without a close frame (RFC 6455 §7.1.5); never sent. */
const DROPPED = 1006;

/** Label values of one series. */
export type Labels = Record<string, string>;

/** Histogram state: cumulative-free bucket counts (one per bound, plus +Inf), sum and count. */
export interface HistogramState {
  buckets: number[];
  sum: number;
  count: number;
}

/** Counters and histograms keyed by series (`name{labels}`). */
export interface Totals {
  counters: Record<string, number>;
  histograms: Record<string, HistogramState>;
}

function emptyHistogram(buckets: number): HistogramState {
  return { buckets: new Array(buckets).fill(0), sum: 0, count: 0 };
}

/** An empty set of totals. */
export const emptyTotals = (): Totals => ({ counters: {}, histograms: {} });

/** Series keys already built, by name and labels as given (counting is on every hot path). */
const KEYS = new Map<string, string>();
/** Kept small: label values come from short fixed lists; anything else just rebuilds. */
const KEYS_LIMIT = 1000;

/** `name{a="x",b="y"}`, labels sorted, values escaped as the text format asks. */
export function seriesKey(name: MetricName, labels: Labels = {}): string {
  let given: string = name;
  for (const label in labels) given += `\u0000${label}\u0001${labels[label]}`;
  let key = KEYS.get(given);
  if (key !== undefined) return key;
  const pairs = Object.keys(labels)
    .sort()
    .map((label) => `${label}="${escapeLabel(labels[label] as string)}"`);
  key = pairs.length > 0 ? `${name}{${pairs.join(",")}}` : name;
  if (KEYS.size >= KEYS_LIMIT) KEYS.clear();
  KEYS.set(given, key);
  return key;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** Deltas collected between pushes. */
export class MetricsBuffer {
  #totals: Totals = emptyTotals();
  #dirty = false;

  /** Adds `n` to a counter. */
  count(name: MetricName, labels: Labels = {}, n = 1): void {
    const key = seriesKey(name, labels);
    this.#totals.counters[key] = (this.#totals.counters[key] ?? 0) + n;
    this.#dirty = true;
  }

  /** Records one observation (seconds) in a histogram. */
  observe(name: MetricName, seconds: number, labels: Labels = {}): void {
    const key = seriesKey(name, labels);
    const state = this.#totals.histograms[key] ?? emptyHistogram(LATENCY_BUCKETS.length + 1);
    this.#totals.histograms[key] = state;
    const index = LATENCY_BUCKETS.findIndex((bound) => seconds <= bound);
    (state.buckets[index === -1 ? LATENCY_BUCKETS.length : index] as number)++;
    state.sum += seconds;
    state.count++;
    this.#dirty = true;
  }

  /** Whether anything was counted since the last drain. */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** Puts back deltas that could not be pushed. */
  restore(delta: Totals): void {
    mergeTotals(this.#totals, delta);
    this.#dirty = true;
  }

  /** Takes the deltas, leaving the buffer empty. */
  drain(): Totals {
    const totals = this.#totals;
    this.#totals = emptyTotals();
    this.#dirty = false;
    return totals;
  }
}

/** Adds `delta` into `into` (mutates and returns it). */
export function mergeTotals(into: Totals, delta: Totals): Totals {
  for (const [key, n] of Object.entries(delta.counters))
    into.counters[key] = (into.counters[key] ?? 0) + n;
  for (const [key, h] of Object.entries(delta.histograms)) {
    const target = into.histograms[key] ?? emptyHistogram(h.buckets.length);
    into.histograms[key] = target;
    h.buckets.forEach((n, i) => {
      target.buckets[i] = (target.buckets[i] ?? 0) + n;
    });
    target.sum += h.sum;
    target.count += h.count;
  }
  return into;
}

/** The name and label text of a series key. */
function splitKey(key: string): { name: string; labels: string } {
  const brace = key.indexOf("{");
  return brace === -1
    ? { name: key, labels: "" }
    : { name: key.slice(0, brace), labels: key.slice(brace + 1, -1) };
}

function withLabel(labels: string, extra: string): string {
  return `{${labels ? `${labels},` : ""}${extra}}`;
}

/** A counter value of `name` summed over the label `keep` (one value per value of that label, "" when absent). */
function sumBy(totals: Totals, name: string, keep: string | null): Map<string, number> {
  const sums = new Map<string, number>();
  for (const [key, n] of Object.entries(totals.counters)) {
    const { name: series, labels } = splitKey(key);
    if (series !== name) continue;
    const value = keep ? (new RegExp(`${keep}="([^"]*)"`).exec(labels)?.[1] ?? "") : "";
    sums.set(value, (sums.get(value) ?? 0) + n);
  }
  return sums;
}

/** The Prometheus text exposition (format 0.0.4) of `totals`, plus `extra` gauges. */
export function renderPrometheus(
  totals: Totals,
  extra: { name: string; help: string; value: number }[] = [],
): string {
  const lines: string[] = [];
  for (const [name, meta] of Object.entries(METRICS)) {
    lines.push(`# HELP ${name} ${meta.help}`, `# TYPE ${name} ${meta.type}`);
    if (meta.type === "counter") {
      const keys = Object.keys(totals.counters)
        .filter((key) => splitKey(key).name === name)
        .sort();
      for (const key of keys) lines.push(`${key} ${totals.counters[key]}`);
    } else {
      const keys = Object.keys(totals.histograms)
        .filter((key) => splitKey(key).name === name)
        .sort();
      for (const key of keys) {
        const { labels } = splitKey(key);
        const h = totals.histograms[key] as HistogramState;
        let cumulative = 0;
        LATENCY_BUCKETS.forEach((bound, i) => {
          cumulative += h.buckets[i] ?? 0;
          lines.push(`${name}_bucket${withLabel(labels, `le="${bound}"`)} ${cumulative}`);
        });
        cumulative += h.buckets[LATENCY_BUCKETS.length] ?? 0;
        lines.push(`${name}_bucket${withLabel(labels, 'le="+Inf"')} ${cumulative}`);
        lines.push(`${name}_sum${labels ? `{${labels}}` : ""} ${h.sum}`);
        lines.push(`${name}_count${labels ? `{${labels}}` : ""} ${h.count}`);
      }
    }
  }
  const opened = sumBy(totals, "crafting_streams_opened_total", "kind");
  const closed = sumBy(totals, "crafting_streams_closed_total", "kind");
  lines.push(
    `# HELP crafting_streams_open ${DERIVED_GAUGES.crafting_streams_open.help}`,
    "# TYPE crafting_streams_open gauge",
  );
  for (const kind of [...new Set([...opened.keys(), ...closed.keys()])].sort()) {
    lines.push(
      `crafting_streams_open{kind="${kind}"} ${Math.max(0, (opened.get(kind) ?? 0) - (closed.get(kind) ?? 0))}`,
    );
  }
  const created = sumBy(totals, "crafting_sessions_created_total", null).get("") ?? 0;
  const ended = sumBy(totals, "crafting_sessions_ended_total", null).get("") ?? 0;
  lines.push(
    `# HELP crafting_sessions_active ${DERIVED_GAUGES.crafting_sessions_active.help}`,
    "# TYPE crafting_sessions_active gauge",
    `crafting_sessions_active ${Math.max(0, created - ended)}`,
  );
  for (const gauge of extra)
    lines.push(
      `# HELP ${gauge.name} ${gauge.help}`,
      `# TYPE ${gauge.name} gauge`,
      `${gauge.name} ${gauge.value}`,
    );
  return `${lines.join("\n")}\n`;
}

/**
 * Streams open, sessions active, the failed and the dropped streams'
 * shares and delivery p99 (s), from totals: for health and alerts.
 */
export function summarizeTotals(totals: Totals): {
  streamsOpen: number;
  sessionsActive: number;
  messagesOut: number;
  streamFailureRatio: number;
  streamDropRatio: number;
  deliveryP99Seconds: number | null;
} {
  const opened = [...sumBy(totals, "crafting_streams_opened_total", null).values()].reduce(
    (a, b) => a + b,
    0,
  );
  const closedByCode = sumBy(totals, "crafting_streams_closed_total", "code");
  const closed = [...closedByCode.values()].reduce((a, b) => a + b, 0);
  // A failure is the server's: a stream it ended with an internal error.
  // A drop (1006, no close frame) is most often the client's — a closed tab,
  // a phone out of coverage — so it is shown beside, not counted as ours.
  const failed = closedByCode.get(String(CloseCode.INTERNAL_ERROR)) ?? 0;
  const dropped = closedByCode.get(String(DROPPED)) ?? 0;
  const created = sumBy(totals, "crafting_sessions_created_total", null).get("") ?? 0;
  const ended = sumBy(totals, "crafting_sessions_ended_total", null).get("") ?? 0;
  const histogram = Object.entries(totals.histograms).find(([key]) =>
    key.startsWith("crafting_delivery_latency_seconds"),
  )?.[1];
  return {
    streamsOpen: Math.max(0, opened - closed),
    sessionsActive: Math.max(0, created - ended),
    messagesOut: sumBy(totals, "crafting_messages_out_total", null).get("") ?? 0,
    streamFailureRatio: opened > 0 ? failed / opened : 0,
    streamDropRatio: opened > 0 ? dropped / opened : 0,
    deliveryP99Seconds: histogram ? histogramQuantile(histogram, 0.99) : null,
  };
}

/** The upper bound of the bucket holding quantile `q` (as Prometheus' histogram_quantile would bracket it). */
export function histogramQuantile(h: HistogramState, q: number): number | null {
  if (h.count === 0) return null;
  const rank = q * h.count;
  let cumulative = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    cumulative += h.buckets[i] ?? 0;
    if (cumulative >= rank)
      return i < LATENCY_BUCKETS.length ? (LATENCY_BUCKETS[i] as number) : Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}
