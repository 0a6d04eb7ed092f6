/**
 * The isolate's metrics buffer and its push to the aggregator: at most one
 * push a second, to a random shard, in the background.
 */
import { log } from "../log";
import { emptyTotals, MetricsBuffer, mergeTotals, type Totals } from "./registry";

/** Aggregator shards (durable-objects/metrics). */
export const METRICS_SHARDS = 8;
/** How long deltas gather before a push. */
export const PUSH_DELAY_MS = 1000;

/** This isolate's counts: the Worker and every Durable Object it hosts share it. */
export const metrics = new MetricsBuffer();

let scheduled: Promise<void> | null = null;

/**
 * Pushes what was counted within the next second. Pass the request's
 * `waitUntil` from a Worker; a Durable Object stays awake for the timer.
 */
export function pushMetricsSoon(env: Env, waitUntil?: (promise: Promise<unknown>) => void): void {
  if (!metrics.dirty && !scheduled) return;
  if (!scheduled) {
    scheduled = new Promise<void>((resolve) => setTimeout(resolve, PUSH_DELAY_MS)).then(() =>
      pushNow(env),
    );
  }
  waitUntil?.(scheduled);
}

async function pushNow(env: Env): Promise<void> {
  scheduled = null;
  if (!metrics.dirty) return;
  const delta = metrics.drain();
  const shard = Math.floor(Math.random() * METRICS_SHARDS);
  try {
    await env.METRICS.getByName(`shard-${shard}`).add(delta);
  } catch (e) {
    // Put the counts back for the next push rather than lose them.
    metrics.restore(delta);
    log("warn", "metrics.push_failed", { message: e instanceof Error ? e.message : String(e) });
  }
}

/** Sums every shard's totals. */
export async function collectTotals(env: Env): Promise<Totals> {
  const shards = await Promise.all(
    Array.from({ length: METRICS_SHARDS }, (_, i) => env.METRICS.getByName(`shard-${i}`).totals()),
  );
  return shards.reduce((sum, shard) => mergeTotals(sum, shard), emptyTotals());
}
