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

/**
 * When each owner's pending push was scheduled. A promise must never be
 * awaited outside the context that made it, so each owner has its own; and
 * a push whose context ended before its timer fired (a Worker request that
 * had no `waitUntil` left) never runs, so one pending for much longer than
 * its delay is taken as lost and replaced — otherwise that owner would
 * never push again.
 */
const scheduled = new WeakMap<object, number>();
/** How long past its delay a pending push is taken as lost. */
const LOST_AFTER_MS = 5 * PUSH_DELAY_MS;

/** The owner of pushes made from Worker requests (one pending at a time per isolate). */
export const WORKER_CONTEXT = {};

/**
 * Pushes what was counted within the next second, unless `owner` (a
 * Durable Object instance, or WORKER_CONTEXT) already has a push pending.
 * From a Worker, pass the request's `waitUntil` so the push outlives the
 * response; a Durable Object stays awake for the timer.
 */
export function pushMetricsSoon(
  env: Env,
  owner: object,
  waitUntil?: (promise: Promise<unknown>) => void,
): void {
  if (!metrics.dirty) return;
  const now = Date.now();
  const pendingSince = scheduled.get(owner);
  if (pendingSince !== undefined && now - pendingSince < LOST_AFTER_MS) return;
  scheduled.set(owner, now);
  const push = new Promise<void>((resolve) => setTimeout(resolve, PUSH_DELAY_MS)).then(() => {
    if (scheduled.get(owner) === now) scheduled.delete(owner);
    return pushNow(env);
  });
  waitUntil?.(push);
}

async function pushNow(env: Env): Promise<void> {
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
