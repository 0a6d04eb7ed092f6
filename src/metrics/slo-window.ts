/**
 * The SLO over the last minutes, not since the counters began: a shard of
 * the metrics aggregator also adds each pushed delta's SLO series (streams
 * opened and closed, delivery latency) into a bucket per minute, and keeps
 * the buckets of the window. Judged since the counters began, a long calm
 * history hid an outage happening now (a quarter of an hour of failed
 * streams after a week of good ones barely moves a lifetime ratio), and an
 * old incident kept the service degraded long after it ended. Pure: the
 * shard stores the buckets.
 */
import { emptyTotals, mergeTotals, type Totals } from "./registry";

/** The window the `slo` check and the `crafting_slo_*` gauges judge. */
export const SLO_WINDOW_MS = 15 * 60_000;

const BUCKET_MS = 60_000;

/** The SLO series a delta added in one minute (`minute`: ms since the epoch / 60,000). */
export interface SloBucket {
  minute: number;
  totals: Totals;
}

/** The series the SLO is computed from: what the buckets keep of a delta. */
const SLO_SERIES = [
  "crafting_streams_opened_total",
  "crafting_streams_closed_total",
  "crafting_delivery_latency_seconds",
];

const inSlo = (key: string) =>
  SLO_SERIES.some((name) => key === name || key.startsWith(`${name}{`));

/** The buckets within the window ending at `nowMs` (whole minutes: the last 15, this one included). */
function inWindow(buckets: readonly SloBucket[], nowMs: number): SloBucket[] {
  const oldest = Math.floor(nowMs / BUCKET_MS) - SLO_WINDOW_MS / BUCKET_MS + 1;
  return buckets.filter((bucket) => bucket.minute >= oldest);
}

/**
 * The buckets after `delta` arrived at `nowMs`: its SLO series added into
 * this minute's bucket (a new one; those given are not changed), and those
 * past the window dropped.
 */
export function addToWindow(
  buckets: readonly SloBucket[],
  delta: Totals,
  nowMs: number,
): SloBucket[] {
  const kept = inWindow(buckets, nowMs);
  const slo: Totals = {
    counters: Object.fromEntries(Object.entries(delta.counters).filter(([key]) => inSlo(key))),
    histograms: Object.fromEntries(Object.entries(delta.histograms).filter(([key]) => inSlo(key))),
  };
  if (Object.keys(slo.counters).length === 0 && Object.keys(slo.histograms).length === 0)
    return kept;
  const minute = Math.floor(nowMs / BUCKET_MS);
  const current = kept.find((bucket) => bucket.minute === minute);
  const totals = mergeTotals(mergeTotals(emptyTotals(), current?.totals ?? emptyTotals()), slo);
  return [...kept.filter((bucket) => bucket !== current), { minute, totals }];
}

/** The SLO series added within the window ending at `nowMs`. */
export function windowTotals(buckets: readonly SloBucket[], nowMs: number): Totals {
  return inWindow(buckets, nowMs).reduce(
    (sum, bucket) => mergeTotals(sum, bucket.totals),
    emptyTotals(),
  );
}
