/**
 * One player: their stream slots (leases, pure rules in stream-leases.ts)
 * and their crafting queue, a projection of their sessions kept up to date
 * by the session objects (pure rules in crafting-queue.ts), with its own
 * live streams. Both are small, so each is stored whole under one key.
 */

import { toJsonString } from "@bufbuild/protobuf";
import type { MaterialChange, MaterialOutcome } from "../../src/domain/materials/materials";
import type { LocationHint } from "../../src/domain/placement/placement";
import {
  applySummary,
  DEFAULT_SLOTS,
  materialTargets,
  queueView,
  type SessionSummary,
  showsChange,
} from "../../src/domain/queue/crafting-queue";
import {
  acquireLease,
  expiredLeases,
  LEASE_RULES,
  liveLeases,
  reclaimableLeases,
  type StreamKind,
  type StreamLease,
} from "../../src/domain/streams/stream-leases";
import { healthStub, playerStub, sessionStub, workflowStub } from "../../src/durable";
import { fail, ok, type Result, type ServiceError } from "../../src/errors";
import { QueueSnapshotSchema } from "../../src/gen/crafting/v1/queue_pb";
import { log, setLogLevel } from "../../src/log";
import { metrics } from "../../src/metrics/push";
import type { TraceContext } from "../../src/middleware/trace";
import { type FramePosition, queueFrame, queueSnapshotFrame } from "../../src/protocol/frames";
import { queueMessage } from "../../src/protocol/queue-wire";
import { meterObject } from "../storage-meter";
import { ReplayLog } from "../streams/replay-log";
import { StreamHub } from "../streams/stream-hub";
import { StreamingObject } from "../streams/streaming-object";

/** A stream slot's key: one per lease. */
const LEASE_PREFIX = "lease:";
/** Where every lease was kept in one value, before session 12 (moved over on first read). */
const LEGACY_LEASES_KEY = "stream_leases";
/** The location hint of where the player last connected from (session placement). */
const REGION_KEY = "region";
const QUEUE_KEY = "queue";
/** Queue changes kept for resuming clients. */
export const QUEUE_LOG_LIMIT = 100;

/** What one session of the player made of a material change. */
export type PlayerMaterialResult = { sessionId: string; materialIds: string[] } & (
  | { outcomes: MaterialOutcome[] }
  | { error: ServiceError }
);

/** The queue's persistent state. */
interface QueueState {
  playerId: string;
  entries: Record<string, SessionSummary>;
  slots: number;
  epoch: number;
  seq: number;
}

/** Durable Object for one player. */
export class Player extends StreamingObject {
  #queue: QueueState | null;
  /** The player's stream slots (null: not read yet). */
  #slots: Map<string, StreamLease> | null = null;
  /** Where the player last connected from (undefined: not read yet). */
  #region: LocationHint | null | undefined;
  protected override readonly hub: StreamHub;
  readonly #log: ReplayLog;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(ctx, "player");
    setLogLevel(env.LOG_LEVEL);
    this.#queue = ctx.storage.kv.get<QueueState>(QUEUE_KEY) ?? null;
    this.#log = new ReplayLog(ctx.storage, "queue_log", QUEUE_LOG_LIMIT);
    this.hub = new StreamHub(ctx, env, "queue", {
      position: (nowMs) => (this.#queue ? this.#position(this.#queue, nowMs) : null),
      snapshot: (nowMs, recovered) => {
        const queue = this.#queue as QueueState;
        return queueSnapshotFrame(
          this.#position(queue, nowMs),
          this.#message(queue, nowMs),
          recovered,
        );
      },
      replayAfter: (seq) => this.#log.after(seq),
      auditFields: () => ({ queue_of: this.#queue?.playerId }),
    });
  }

  // --- The crafting queue ----------------------------------------------------

  /**
   * A session of this player changed (called by the session object after
   * every change it stored). Older notifications than the one held change
   * nothing, nor does progress that does not move the session's expected
   * finish (crafting-queue.ts, `movesQueue`); a change updates every queue
   * stream. Answers with the summary the queue holds for the session now,
   * so the session knows which notices it need not send (notices.ts).
   */
  async sessionChanged(playerId: string, summary: SessionSummary): Promise<SessionSummary | null> {
    const now = Date.now();
    const queue = this.#queue ?? this.#newQueue(playerId);
    const applied = applySummary(queue.entries, summary, now);
    if (!applied.changed) return queue.entries[summary.sessionId] ?? null;
    if (!showsChange(queue.entries, applied, queue.slots, now)) {
      // Held for the waits it makes once a request queues behind it; no frame, no log row.
      this.#keep({ ...queue, entries: applied.entries });
      return summary;
    }
    const ended = applied.ended ? [summary] : [];
    this.#commit({ ...queue, entries: applied.entries, seq: queue.seq + 1 }, now, ended);
    return summary;
  }

  /**
   * A change in the player's materials: every session of theirs that has
   * not ended and requires one of the materials gets the changes it uses,
   * all at once. Says, per session, what became of each change (or why
   * the session could not take them: a retry is safe).
   */
  async materialsChanged(
    changes: MaterialChange[],
    asOfMs: number,
    trace?: TraceContext,
  ): Promise<PlayerMaterialResult[]> {
    const targets = materialTargets(this.#queue?.entries ?? {}, changes);
    return Promise.all(
      targets.map(({ sessionId, changes: relevant }) =>
        this.#materialsFor(sessionId, relevant, asOfMs, trace),
      ),
    );
  }

  async #materialsFor(
    sessionId: string,
    changes: MaterialChange[],
    asOfMs: number,
    trace?: TraceContext,
  ): Promise<PlayerMaterialResult> {
    const materialIds = changes.map((change) => change.materialId);
    try {
      const result = await sessionStub(this.env, sessionId).materials(changes, asOfMs, trace);
      if (!result.ok) return { sessionId, materialIds, error: result.error };
      return { sessionId, materialIds, outcomes: result.value.outcomes };
    } catch (e) {
      log("warn", "materials.fan_out_failed", {
        session_id: sessionId,
        message: e instanceof Error ? e.message : String(e),
      });
      return {
        sessionId,
        materialIds,
        error: { code: "unavailable", message: "the session could not be reached; retry" },
      };
    }
  }

  /** Sets how many sessions the player crafts at once (1 by default). */
  async setSlots(playerId: string, slots: number): Promise<void> {
    const queue = this.#queue ?? this.#newQueue(playerId);
    if (queue.slots === slots && this.#queue) return;
    this.#commit({ ...queue, slots, seq: queue.seq + 1 }, Date.now());
  }

  /**
   * The queue as its streams' snapshot shows it, as proto3 JSON
   * (`GET /v1/players/{id}/queue`); a player who never queued anything has
   * an empty one, and reading it stores nothing.
   */
  async queueJson(playerId: string): Promise<string> {
    const queue = this.#queue ?? this.#newQueue(playerId);
    return toJsonString(QueueSnapshotSchema, this.#message(queue, Date.now()));
  }

  /** The queue as its streams show it (tests, operators). */
  async craftingQueue(): Promise<Result<{ slots: number; items: ReturnType<typeof queueView> }>> {
    const queue = this.#queue;
    if (!queue) return fail("not_found", "this player has no crafting queue yet");
    return ok({ slots: queue.slots, items: queueView(queue.entries, queue.slots, Date.now()) });
  }

  #newQueue(playerId: string): QueueState {
    const slots = Number(this.env.DEFAULT_CRAFTING_SLOTS) || DEFAULT_SLOTS;
    return {
      playerId,
      entries: {},
      slots,
      epoch: 1 + Math.floor(Math.random() * 0xfffffffe),
      seq: 0,
    };
  }

  /** Stores the queue and its frame in one transaction, then tells its streams. */
  #commit(queue: QueueState, now: number, ended: readonly SessionSummary[] = []): void {
    const frame = queueFrame(this.#position(queue, now), this.#message(queue, now, ended));
    const { storage } = this.ctx;
    storage.transactionSync(() => {
      storage.kv.put(QUEUE_KEY, queue);
      this.#log.append(queue.seq, frame);
    });
    this.#queue = queue;
    this.hub.deliver(frame, false, now, now);
  }

  /** Stores a queue whose view did not change: its streams have nothing to be told. */
  #keep(queue: QueueState): void {
    this.ctx.storage.kv.put(QUEUE_KEY, queue);
    this.#queue = queue;
  }

  #position(queue: QueueState, nowMs: number): FramePosition {
    return { seq: queue.seq, epoch: queue.epoch, serverTimeMs: nowMs };
  }

  #message(queue: QueueState, nowMs: number, ended: readonly SessionSummary[] = []) {
    return queueMessage(
      queue.playerId,
      queueView(queue.entries, queue.slots, nowMs),
      queue.slots,
      nowMs,
      ended,
    );
  }

  // --- Queue streams ---------------------------------------------------------

  /** Accepts the player's queue stream (the Worker checked that the token is this player's). */
  override async fetch(request: Request): Promise<Response> {
    const upgrade = this.upgrade(request);
    if (upgrade instanceof Response) return upgrade;
    const { playerId } = upgrade;
    const headers = request.headers;
    // A player with no session yet still gets an (empty) queue to watch.
    if (!this.#queue) this.#commit({ ...this.#newQueue(playerId), seq: 1 }, Date.now());
    return this.hub.accept(headers, playerId, null);
  }

  // --- Stream slots ----------------------------------------------------------

  /**
   * The player's leases by id, read once per instance: one key each, so
   * taking or freeing a slot writes one small row whatever the player holds
   * (a list stored whole was rewritten on every open and close). Leases in
   * that older layout move over on first read.
   */
  #leases(): Map<string, StreamLease> {
    if (this.#slots) return this.#slots;
    const { kv } = this.ctx.storage;
    const slots = new Map<string, StreamLease>();
    for (const [, lease] of kv.list<StreamLease>({ prefix: LEASE_PREFIX }))
      slots.set(lease.id, lease);
    const legacy = kv.get<StreamLease[]>(LEGACY_LEASES_KEY);
    if (legacy) {
      this.ctx.storage.transactionSync(() => {
        for (const lease of legacy) {
          kv.put(LEASE_PREFIX + lease.id, lease);
          slots.set(lease.id, lease);
        }
        kv.delete(LEGACY_LEASES_KEY);
      });
    }
    this.#slots = slots;
    return slots;
  }

  /** Frees the given slots (and those whose streams have expired): one row each. */
  #free(ids: Iterable<string>, nowMs: number): void {
    const slots = this.#leases();
    const { kv } = this.ctx.storage;
    for (const lease of expiredLeases(slots.values(), nowMs)) {
      slots.delete(lease.id);
      kv.delete(LEASE_PREFIX + lease.id);
    }
    for (const id of ids) if (slots.delete(id)) kv.delete(LEASE_PREFIX + id);
  }

  /**
   * Takes a stream slot, until `expiresAtMs` (the stream's token expiry);
   * `resource_exhausted` when the player is at the limit. At the limit, the
   * objects holding the player's streams are asked which are still open
   * first: slots of streams lost in a crash or a restart are freed then.
   * `seenFrom`: the location hint of where this stream came from,
   * remembered (written only when it changes) to place the player's next
   * sessions near them.
   */
  async acquireStream(
    kind: StreamKind,
    target: string,
    seenFrom: LocationHint | null = null,
    expiresAtMs?: number,
  ): Promise<Result<{ leaseId: string }>> {
    if (seenFrom && seenFrom !== this.#lastRegionSeen()) {
      this.ctx.storage.kv.put(REGION_KEY, seenFrom);
      this.#region = seenFrom;
    }
    const max = Number(this.env.MAX_STREAMS_PER_PLAYER) || LEASE_RULES.maxStreamsPerPlayer;
    // The lease lasts as long as the stream may: until its token expires.
    const request = {
      id: crypto.randomUUID(),
      kind,
      target,
      ...(expiresAtMs ? { expiresAtMs } : {}),
    };
    let result = acquireLease(this.#leases().values(), request, Date.now(), max);
    if (!result.ok) {
      const lost = await this.#lostLeases(reclaimableLeases(this.#leases().values(), Date.now()));
      if (lost.length === 0) return result;
      log("info", "stream.slots_reclaimed", { count: lost.length });
      this.#free(lost, Date.now());
      result = acquireLease(this.#leases().values(), request, Date.now(), max);
      if (!result.ok) return result;
    }
    this.#leases().set(result.lease.id, result.lease);
    this.ctx.storage.kv.put(LEASE_PREFIX + result.lease.id, result.lease);
    return ok({ leaseId: result.lease.id });
  }

  /** Leases whose stream no longer exists in the object that served it. */
  async #lostLeases(leases: readonly StreamLease[]): Promise<string[]> {
    const byHolder = new Map<string, StreamLease[]>();
    for (const lease of leases) {
      const key = `${lease.kind}/${lease.target}`;
      byHolder.set(key, [...(byHolder.get(key) ?? []), lease]);
    }
    const answers = await Promise.all(
      [...byHolder.values()].map(async (held) => {
        const { kind, target } = held[0] as StreamLease;
        const ids = held.map((lease) => lease.id);
        try {
          const open = new Set((await this.#holder(kind, target)?.(ids)) ?? ids);
          return ids.filter((id) => !open.has(id));
        } catch {
          return []; // Could not ask: keep them.
        }
      }),
    );
    return answers.flat();
  }

  /** Who to ask whether a stream of `kind` on `target` is open (null: keep it). */
  #holder(kind: StreamKind, target: string): ((ids: string[]) => Promise<string[]>) | null {
    switch (kind) {
      case "session":
        return (ids) => sessionStub(this.env, target).openLeases(ids);
      case "workflow":
        return (ids) => workflowStub(this.env, target).openLeases(ids);
      case "health":
        return (ids) => healthStub(this.env, target).openLeases(ids);
      case "queue":
        return target === this.#queue?.playerId
          ? (ids) => this.openLeases(ids)
          : (ids) => playerStub(this.env, target).openLeases(ids);
      default:
        return null;
    }
  }

  /**
   * What objects still running the previous version call every 30 s during
   * a deploy: leases no longer expire on a timer, so there is nothing to do.
   */
  async renewStreams(_leaseIds: string[]): Promise<void> {
    metrics.count("crafting_object_wakes_total", { object: "player", event: "renew" });
  }

  /** Frees the given streams' slots. */
  async releaseStreams(leaseIds: string[]): Promise<void> {
    this.#free(leaseIds, Date.now());
  }

  /** Where the player last connected from, as a location hint (null: never seen). */
  async lastRegion(): Promise<LocationHint | null> {
    return this.#lastRegionSeen();
  }

  /** The remembered region: read once per instance, not per stream opened. */
  #lastRegionSeen(): LocationHint | null {
    if (this.#region === undefined)
      this.#region = this.ctx.storage.kv.get<LocationHint>(REGION_KEY) ?? null;
    return this.#region;
  }

  /** The player's live streams (operators, tests). */
  async streams(): Promise<StreamLease[]> {
    return liveLeases(this.#leases().values(), Date.now());
  }
}
