/**
 * One shard of the metrics aggregator, and (the instance named "health")
 * the operators' health stream — a stream like every other (streams/
 * stream-hub.ts): a slot of the caller's, heartbeats, the idle close, token
 * expiry, close codes; a snapshot every 5 s while any is open.
 *
 * Every isolate (Worker or Durable Object) counts locally and pushes its
 * deltas at most once a second to a shard chosen at random; `GET /metrics`
 * sums the shards. Totals are kept in storage, so a restart does not reset
 * the counters. One object serializes its calls; with N shards the push
 * rate each absorbs is divided by N, and adding shards scales it. In
 * production, Workers Analytics Engine can take this role (docs/operations.md).
 */
import { create } from "@bufbuild/protobuf";
import {
  DependencyHealthSchema,
  type HealthSnapshot,
  HealthSnapshotSchema,
  HealthStatus,
} from "../../src/gen/crafting/v1/health_pb";
import { type CheckStatus, overall, runHealthChecks } from "../../src/health/checks";
import { setLogLevel } from "../../src/log";
import { collectTotals } from "../../src/metrics/push";
import { emptyTotals, mergeTotals, summarizeTotals, type Totals } from "../../src/metrics/registry";
import { addToWindow, type SloBucket, windowTotals } from "../../src/metrics/slo-window";
import { type FramePosition, healthFrame } from "../../src/protocol/frames";
import { StreamHub } from "../streams/stream-hub";
import { StreamingObject } from "../streams/streaming-object";

/** A shard's totals and its SLO window, stored as one value: one row written per push. */
const STATE_KEY = "state";
/** Where the totals alone were kept before the window (read once, then moved). */
const LEGACY_TOTALS_KEY = "totals";

interface ShardState {
  totals: Totals;
  window: SloBucket[];
}
/** How often the health stream sends a snapshot. */
export const HEALTH_INTERVAL_MS = 5000;

const WIRE_STATUS: Record<CheckStatus, HealthStatus> = {
  ok: HealthStatus.OK,
  degraded: HealthStatus.DEGRADED,
  failing: HealthStatus.FAILING,
};

/** Durable Object holding one shard of the metrics totals, or the health stream. */
export class Metrics extends StreamingObject {
  #state: ShardState;
  #lastMessagesOut: { at: number; count: number } | null = null;
  protected override readonly hub: StreamHub;
  /** The health stream's latest snapshot and its place: held in memory (a restart is a new epoch). */
  #health: { snapshot: HealthSnapshot; seq: number } | null = null;
  readonly #healthEpoch = 1 + Math.floor(Math.random() * 0xfffffffe);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    setLogLevel(env.LOG_LEVEL);
    this.#state = ctx.storage.kv.get<ShardState>(STATE_KEY) ?? this.#fromLegacy();
    this.hub = new StreamHub(ctx, env, "health", {
      position: (nowMs) => (this.#health ? this.#position(this.#health.seq, nowMs) : null),
      snapshot: (nowMs) => {
        const health = this.#health as { snapshot: HealthSnapshot; seq: number };
        return healthFrame(this.#position(health.seq, nowMs), health.snapshot);
      },
      // Health is a state, not a history: a resume gets the latest snapshot.
      replayAfter: () => [],
      auditFields: () => ({ stream: "health" }),
    });
  }

  /** Adds a pushed delta (and its SLO series to this minute's bucket). */
  async add(delta: Totals): Promise<void> {
    mergeTotals(this.#state.totals, delta);
    this.#state.window = addToWindow(this.#state.window, delta, Date.now());
    this.ctx.storage.kv.put(STATE_KEY, this.#state);
  }

  /** A shard stored before the window: its totals move under the one key, once. */
  #fromLegacy(): ShardState {
    const { kv } = this.ctx.storage;
    const state = { totals: kv.get<Totals>(LEGACY_TOTALS_KEY) ?? emptyTotals(), window: [] };
    if (kv.delete(LEGACY_TOTALS_KEY)) kv.put(STATE_KEY, state);
    return state;
  }

  /** This shard's totals. */
  async totals(): Promise<Totals> {
    return this.#state.totals;
  }

  /** This shard's SLO series added in the last 15 minutes. */
  async recent(): Promise<Totals> {
    return windowTotals(this.#state.window, Date.now());
  }

  /** A storage round trip, for the health check. */
  async ping(): Promise<number> {
    return this.ctx.storage.sql.exec<{ one: number }>("SELECT 1 AS one").one().one;
  }

  /** Accepts an operator's health stream (the Worker checked the token and took a slot). */
  override async fetch(request: Request): Promise<Response> {
    const upgrade = this.upgrade(request);
    if (upgrade instanceof Response) return upgrade;
    await this.#publish();
    const response = await this.hub.accept(request.headers, upgrade.playerId, null);
    await this.#nextSnapshotBy(Date.now() + HEALTH_INTERVAL_MS);
    return response;
  }

  /** A snapshot to every health stream every 5 s, and the streams' sweep, while any is open. */
  override async alarm(): Promise<void> {
    if (this.ctx.getWebSockets().length === 0) return;
    await this.#publish();
    await this.hub.sweep();
    if (this.ctx.getWebSockets().length > 0)
      await this.#nextSnapshotBy(Date.now() + HEALTH_INTERVAL_MS);
  }

  /** Makes the alarm fire by `atMs` (the sweep may want it sooner). */
  async #nextSnapshotBy(atMs: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > atMs) await this.ctx.storage.setAlarm(atMs);
  }

  /** Takes a new snapshot and sends it to every health stream. */
  async #publish(): Promise<void> {
    const snapshot = await this.#snapshot();
    const seq = (this.#health?.seq ?? 0) + 1;
    this.#health = { snapshot, seq };
    const now = Date.now();
    this.hub.deliver(healthFrame(this.#position(seq, now), snapshot), false, now, now);
  }

  #position(seq: number, nowMs: number): FramePosition {
    return { seq, epoch: this.#healthEpoch, serverTimeMs: nowMs };
  }

  /** The service's health and load now. */
  async #snapshot(): Promise<HealthSnapshot> {
    const now = Date.now();
    const [checks, totals] = await Promise.all([
      runHealthChecks(this.env),
      collectTotals(this.env),
    ]);
    const summary = summarizeTotals(totals);
    const previous = this.#lastMessagesOut;
    this.#lastMessagesOut = { at: now, count: summary.messagesOut };
    const rate =
      previous && now > previous.at
        ? ((summary.messagesOut - previous.count) * 1000) / (now - previous.at)
        : 0;
    return create(HealthSnapshotSchema, {
      status: WIRE_STATUS[overall(checks)],
      version: this.env.SERVICE_VERSION,
      checks: checks.map((check) =>
        create(DependencyHealthSchema, {
          name: check.name,
          status: WIRE_STATUS[check.status],
          latencyMs: check.latency_ms,
          message: check.message,
        }),
      ),
      activeStreams: summary.streamsOpen,
      activeSessions: summary.sessionsActive,
      messagesPerSecond: Math.max(0, rate),
      timestampMs: BigInt(now),
    });
  }
}
