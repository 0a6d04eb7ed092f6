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
 * When this isolate's pending push was scheduled (null: none). One for the
 * whole isolate, whoever counted: the Worker's requests and every Durable
 * Object it hosts share one buffer, so one push a second carries all of it
 * (a pending push per object once meant up to one push per busy object
 * per second: 59 a second from one isolate with 100 sessions taking
 * posts). A push whose context ended before its timer fired (a Worker
 * request with no `waitUntil` left, an object reset) never runs, so one
 * pending for much longer than its delay is taken as lost and replaced;
 * its counts stay in the buffer for the next.
 */
let pendingSince: number | null = null;
/** How long past its delay a pending push is taken as lost. */
const LOST_AFTER_MS = 5 * PUSH_DELAY_MS;

/**
 * Pushes what was counted within the next second, unless this isolate
 * already has a push pending. From a Worker, pass the request's
 * `waitUntil` so the push outlives the response; a Durable Object stays
 * awake for the timer.
 */
export function pushMetricsSoon(env: Env, waitUntil?: (promise: Promise<unknown>) => void): void {
  if (!metrics.dirty) return;
  const now = Date.now();
  if (pendingSince !== null && now - pendingSince < LOST_AFTER_MS) return;
  pendingSince = now;
  const push = new Promise<void>((resolve) => setTimeout(resolve, PUSH_DELAY_MS)).then(() => {
    if (pendingSince === now) pendingSince = null;
    return pushNow(env);
  });
  waitUntil?.(push);
}

async function pushNow(env: Env): Promise<void> {
  if (!metrics.dirty) return;
  // Counted in the delta it is part of: a push costs one more series, not one more push.
  metrics.count("crafting_metrics_pushes_total");
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
export const collectTotals = (env: Env) => sumShards(env, (shard) => shard.totals());

/** The SLO series of every shard added in the last 15 minutes (`slo-window.ts`), summed. */
export const collectRecentTotals = (env: Env) => sumShards(env, (shard) => shard.recent());

async function sumShards(
  env: Env,
  read: (shard: ReturnType<Env["METRICS"]["getByName"]>) => Promise<Totals>,
): Promise<Totals> {
  const shards = await Promise.all(
    Array.from({ length: METRICS_SHARDS }, (_, i) => read(env.METRICS.getByName(`shard-${i}`))),
  );
  return shards.reduce((sum, shard) => mergeTotals(sum, shard), emptyTotals());
}
