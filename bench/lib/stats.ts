/** Summary statistics for the benchmark: pure, unit-tested. */

/** A latency summary in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The p-th percentile (0 < p ≤ 100) by the nearest-rank method: the
 * smallest value with at least p % of the values at or below it.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** p50, p99, max and mean of latencies. */
export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? Number.NaN),
    mean: round(sorted.length ? sum / sorted.length : Number.NaN),
  };
}

/** `ours / theirs`, rounded; null when either is missing. */
export function ratio(
  ours: number | null | undefined,
  theirs: number | null | undefined,
): number | null {
  if (
    ours == null ||
    theirs == null ||
    !Number.isFinite(ours) ||
    !Number.isFinite(theirs) ||
    theirs === 0
  ) {
    return null;
  }
  return round(ours / theirs, 3);
}

/** Rounds to `digits` decimals (NaN stays NaN). */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** A figure for the reports: rounded, with thousands separators; "–" when missing. */
export const fmt = (value: number | null | undefined, digits = 2) =>
  value == null || Number.isNaN(value)
    ? "–"
    : Number(value.toFixed(digits)).toLocaleString("en-US");
