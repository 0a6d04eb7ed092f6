/**
 * One crafting session: a thin Durable Object around the pure state machine
 * in crafting-session-state.ts. It decodes input, calls `transition` (or
 * folds bridged events), and carries out the effects: persist (one
 * synchronous SQLite transaction), deliver to its streams
 * (streams/stream-hub.ts), close them when the session ends.
 */

import { toJsonString } from "@bufbuild/protobuf";
import {
  admitEvents,
  type EventResult,
  type FoldOutcome,
  foldNew,
  type SessionEvent,
} from "../../src/domain/events/session-events";
import {
  applyMaterialChanges,
  type MaterialChange,
  type MaterialOutcome,
} from "../../src/domain/materials/materials";
import type { SessionSummary } from "../../src/domain/queue/crafting-queue";
import {
  type CreateSessionParams,
  isFinal,
  type LifecycleAction,
  type ProgressCorrection,
  progressAt,
  type SessionEffect,
  type SessionInput,
  type SessionState,
  totalDurationMs,
  transition,
} from "../../src/domain/session/session-machine";
import { playerStub, workflowStub } from "../../src/durable";
import { CloseCode, fail, ok, type Result } from "../../src/errors";
import type { ServerFrame } from "../../src/gen/crafting/v1/frames_pb";
import { SessionStateSchema } from "../../src/gen/crafting/v1/session_pb";
import { log, setLogLevel } from "../../src/log";
import { metrics, pushMetricsSoon } from "../../src/metrics/push";
import type { TraceContext } from "../../src/middleware/trace";
import { materialFrame, snapshotFrame, updateFrame } from "../../src/protocol/frames";
import {
  materialNotificationMessage,
  sessionStateMessage,
  sessionUpdateMessage,
} from "../../src/protocol/session-wire";
import { encodeSync } from "../../src/protocol/sync/sync-encoder";
import { ReplayLog } from "../streams/replay-log";
import { StreamHub } from "../streams/stream-hub";
import { StreamingObject } from "../streams/streaming-object";
import { type EventMeta, EventStore } from "./event-store";

const STATE_KEY = "state";
/** Updates kept for resuming clients: the last 1,000 (see README, "Resume"). */
export const REPLAY_LOG_LIMIT = 1000;

/**
 * A session as HTTP callers see it: the proto3 JSON text of `SessionState`,
 * passed through the Worker untouched.
 */
export type SessionJson = string;

/** Durable Object holding one crafting session and its live subscribers. */
export class CraftingSession extends StreamingObject {
  #state: SessionState | null;
  readonly #log: ReplayLog;
  readonly #events: EventStore;
  protected override readonly hub: StreamHub;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    setLogLevel(env.LOG_LEVEL);
    // Synchronous KV read of SQLite-backed storage: nothing is written for an
    // id that was never created, so probing an unknown id leaves no trace.
    const stored = ctx.storage.kv.get<SessionState>(STATE_KEY) ?? null;
    // Sessions stored before materials existed require none.
    this.#state = stored && { ...stored, materials: stored.materials ?? [] };
    this.#log = new ReplayLog(ctx.storage, "replay_log", REPLAY_LOG_LIMIT);
    this.#events = new EventStore(ctx.storage);
    this.hub = new StreamHub(ctx, env, "session", {
      position: (nowMs) => (this.#state ? this.#position(this.#state, nowMs) : null),
      snapshot: (nowMs, recovered) => {
        const state = this.#state as SessionState;
        const position = this.#position(state, nowMs);
        return snapshotFrame(position, sessionStateMessage(state, nowMs), recovered);
      },
      replayAfter: (seq) => this.#log.after(seq),
      auditFields: () => ({ session_id: this.#state?.sessionId }),
      syncPackets: (channel, nowMs, forceFull) =>
        this.#state ? encodeSync(channel, this.#state, nowMs, forceFull) : null,
    });
  }

  // ─── RPC for the Worker ────────────────────────────────────────────────────

  /** Creates the session; repeating the same create is idempotent. */
  async create(
    params: CreateSessionParams,
    trace?: TraceContext,
  ): Promise<Result<{ created: boolean; session: SessionJson }>> {
    const epoch = 1 + Math.floor(Math.random() * 0xfffffffe);
    const before = this.#state;
    const result = await this.#apply({ type: "create", params, epoch, atMs: Date.now() }, trace);
    if (!result.ok) return result;
    return ok({ created: before === null, session: this.#json(result.value) });
  }

  /** Applies a lifecycle action (start, pause, resume, complete, fail, cancel). */
  async lifecycle(
    action: LifecycleAction,
    reason?: string,
    trace?: TraceContext,
  ): Promise<Result<SessionJson>> {
    const input: SessionInput = { type: "lifecycle", action, atMs: Date.now() };
    if (reason !== undefined) input.reason = reason;
    return this.#applyAsJson(input, trace);
  }

  /** Applies an explicit progress correction from crafting-service. */
  async correctProgress(
    correction: ProgressCorrection,
    trace?: TraceContext,
  ): Promise<Result<SessionJson>> {
    return this.#applyAsJson({ type: "progress", correction, atMs: Date.now() }, trace);
  }

  /** Applies several progress corrections as one change: all or none, one update. */
  async correctProgressBatch(
    corrections: ProgressCorrection[],
    trace?: TraceContext,
  ): Promise<Result<SessionJson>> {
    return this.#applyAsJson({ type: "progress_batch", corrections, atMs: Date.now() }, trace);
  }

  /**
   * Applies material availability changes observed at `asOfMs`; says what
   * became of each. Subscribers get a material notification when what the
   * player has changed.
   */
  async materials(
    changes: MaterialChange[],
    asOfMs: number,
    trace?: TraceContext,
  ): Promise<Result<{ outcomes: MaterialOutcome[]; session: SessionJson }>> {
    const held = this.#state?.materials ?? [];
    const result = await this.#apply(
      { type: "materials", changes, asOfMs, atMs: Date.now() },
      trace,
    );
    if (!result.ok) return result;
    const { outcomes } = applyMaterialChanges(held, changes, asOfMs);
    return ok({ outcomes, session: this.#json(result.value) });
  }

  /** Who owns the session and where it stands (the sync channel's negotiation). */
  async owner(): Promise<Result<{ playerId: string; ended: boolean }>> {
    if (!this.#state) return fail("not_found", "no crafting session with this id");
    return ok({ playerId: this.#state.playerId, ended: isFinal(this.#state.status) });
  }

  /** The current state, or not_found. */
  async view(): Promise<Result<SessionJson>> {
    if (!this.#state) return fail("not_found", "no crafting session with this id");
    return ok(this.#json(this.#state));
  }

  /**
   * Applies bridged events (one batch, all for this session). Duplicates
   * (by event id) and stale events (at or below the settled version) are
   * acknowledged and change nothing; the rest are stored and folded in
   * version order, with the state, in one transaction. One update goes out
   * if the state changed.
   */
  async applyEvents(events: SessionEvent[]): Promise<EventResult[]> {
    const now = Date.now();
    const store = this.#events;
    const prev = this.#state;
    const epoch = prev?.epoch ?? 1 + Math.floor(Math.random() * 0xfffffffe);
    this.ctx.storage.transactionSync(() => store.expire(now, epoch));
    const meta = store.meta() ?? { floor: 0, maxVersion: 0, base: prev };
    const { fresh, refused } = admitEvents(events, {
      floor: meta.floor,
      owner: prev && { sessionId: prev.sessionId, playerId: prev.playerId },
      seen: (eventId) => store.has(eventId),
    });
    const folded = fresh.length > 0 ? this.#foldIn(fresh, meta, epoch) : null;
    if (folded?.ended) await this.hub.closeAll(CloseCode.NORMAL, `session ${this.#state?.status}`);
    return events.map((event, i) => ({
      eventId: event.eventId,
      ...(refused[i] ?? folded?.outcomes.get(event.eventId) ?? { outcome: "parked" }),
    }));
  }

  /**
   * Folds new events into the session: incrementally when they come in
   * order, from the base when not. True when the session just ended.
   */
  #foldIn(
    fresh: SessionEvent[],
    meta: EventMeta,
    epoch: number,
  ): { outcomes: Map<string, FoldOutcome>; ended: boolean } {
    const prev = this.#state;
    const stored = () => this.#events.all();
    const fold = foldNew(
      prev,
      { base: meta.base, maxVersion: meta.maxVersion, stored },
      fresh,
      epoch,
    );
    const done = (ended: boolean) => ({ outcomes: fold.outcomes, ended });
    for (const event of fresh) {
      const outcome = fold.outcomes.get(event.eventId);
      if (outcome?.outcome === "ignored") {
        log("info", "event.ignored", {
          session_id: event.sessionId,
          event_id: event.eventId,
          event_type: event.kind,
          version: event.version,
          reason: outcome.reason,
        });
      }
    }
    const next =
      fold.state && changed(prev, fold.state) ? { ...fold.state, seq: (prev?.seq ?? 0) + 1 } : prev;
    const atMs = Date.now();
    const cause = fold.lastApplied ?? "event";
    const traceId = fresh.findLast((event) => event.traceId)?.traceId ?? "";
    const frame =
      next && next !== prev
        ? updateFrame(
            { ...this.#position(next, atMs), traceId },
            sessionUpdateMessage(next, cause, atMs),
          )
        : null;
    const nextMeta: EventMeta = {
      ...meta,
      maxVersion: Math.max(meta.maxVersion, ...fresh.map((event) => event.version)),
    };
    this.ctx.storage.transactionSync(() => {
      this.#events.save(fresh, nextMeta);
      if (next && next !== prev)
        this.#persist(next, prev === null ? null : frame, { settleEvents: false });
    });
    if (!next || next === prev) return done(false);
    this.#state = next;
    this.#countLifecycle(prev, next);
    void this.#notifyProjections(next);
    if (prev === null) {
      this.hub.current(next.seq);
      return done(false);
    }
    const acceptedAtMs = Math.min(...fresh.map((event) => event.acceptedAtMs));
    if (frame) this.hub.deliver(frame, cause === "progress", atMs, acceptedAtMs);
    return done(isFinal(next.status) && !isFinal(prev.status));
  }

  // ─── Streams ───────────────────────────────────────────────────────────────

  /**
   * Accepts a WebSocket the Worker has already authenticated and given a
   * stream slot. Ownership is checked here, where the owner is known.
   */
  override async fetch(request: Request): Promise<Response> {
    const state = this.#state;
    // A stream of an ended session gets what it needs, then a normal close.
    const endReason = state && isFinal(state.status) ? `session ${state.status}` : null;
    return this.acceptOwned(
      request,
      "crafting session",
      state && { owner: state.playerId, endReason },
    );
  }

  // ─── Internals ─────────────────────────────────────────────────────────────

  async #applyAsJson(input: SessionInput, trace?: TraceContext): Promise<Result<SessionJson>> {
    const result = await this.#apply(input, trace);
    return result.ok ? ok(this.#json(result.value)) : result;
  }

  /** Runs one transition and carries out its effects, in order. */
  async #apply(input: SessionInput, trace?: TraceContext): Promise<Result<SessionState>> {
    const prev = this.#state;
    const result = transition(prev, input);
    if (!result.ok) return result;
    const { state, effects } = result;
    const receivedAtMs = trace?.receivedAtMs ?? input.atMs;
    const frame = this.#frameFor(state, effects, input.atMs, trace?.traceId ?? "");
    for (const effect of effects) {
      switch (effect.type) {
        case "persist":
          try {
            this.#persist(state, frame);
          } catch (e: unknown) {
            log("error", "session.persist_failed", {
              session_id: state.sessionId,
              seq: state.seq,
              message: e instanceof Error ? e.message : String(e),
            });
            return fail("internal", "the session could not be saved; nothing was changed");
          }
          this.#state = state;
          break;
        case "broadcast":
        case "notify_materials":
          if (frame) {
            const latestWins = effect.type === "broadcast" && effect.cause === "progress";
            this.hub.deliver(frame, latestWins, input.atMs, receivedAtMs);
          }
          break;
        case "close_all":
          await this.hub.closeAll(CloseCode.NORMAL, effect.reason);
          break;
      }
    }
    // A change nobody was sent (create) leaves every stream current.
    this.hub.current(state.seq);
    this.#countLifecycle(prev, state);
    // The queue must not miss a status change; a progress correction only moves its estimates.
    if (state.seq === prev?.seq) {
      // Nothing a projection shows changed.
    } else if (state.status !== prev?.status) await this.#notifyProjections(state);
    else void this.#notifyProjections(state);
    if (trace && effects.length > 0) {
      log("debug", "session.changed", {
        session_id: state.sessionId,
        seq: state.seq,
        status: state.status,
        trace_id: trace.traceId,
      });
    }
    return ok(state);
  }

  /** The frame a transition's effects send (an update or a material notification), if any. */
  #frameFor(
    state: SessionState,
    effects: readonly SessionEffect[],
    atMs: number,
    traceId: string,
  ): ServerFrame | null {
    const position = { ...this.#position(state, atMs), traceId };
    for (const effect of effects) {
      if (effect.type === "broadcast")
        return updateFrame(position, sessionUpdateMessage(state, effect.cause, atMs));
      if (effect.type === "notify_materials")
        return materialFrame(position, materialNotificationMessage(state, effect.changes, atMs));
    }
    return null;
  }

  /** State, seq and replay-log entry in one synchronous transaction, before anyone hears of it. */
  #persist(state: SessionState, frame: ServerFrame | null, { settleEvents = true } = {}): void {
    const { storage } = this.ctx;
    storage.transactionSync(() => {
      // An HTTP command on a session that also receives events becomes their new base.
      if (settleEvents) this.#events.settleUnder(state);
      this.#log.prepare();
      storage.kv.put(STATE_KEY, state);
      if (frame) this.#log.append(state.seq, frame);
    });
  }

  /** Counts sessions created and ended. */
  #countLifecycle(prev: SessionState | null, next: SessionState): void {
    if (prev === null) metrics.count("crafting_sessions_created_total");
    if (isFinal(next.status) && (prev === null || !isFinal(prev.status))) {
      metrics.count("crafting_sessions_ended_total", { status: next.status });
    }
    pushMetricsSoon(this.env, this.ctx);
  }
  /**
   * Tells the player's object (their crafting queue) and the session's
   * workflow, if any, about the change. A lost
   * notification is repaired by the next one (they carry the seq and the
   * whole summary); a failure is logged, never fails the session's change.
   */
  async #notifyProjections(state: SessionState): Promise<void> {
    const summary: SessionSummary = {
      sessionId: state.sessionId,
      recipeId: state.recipeId,
      status: state.status,
      createdAtMs: state.createdAtMs,
      plannedMs: totalDurationMs(state.steps),
      clock: state.clock,
      materialIds: state.materials.map((m) => m.materialId),
      seq: state.seq,
    };
    try {
      const player = playerStub(this.env, state.playerId).sessionChanged(state.playerId, summary);
      const workflow = state.workflowId
        ? workflowStub(this.env, state.workflowId).stepChanged({
            sessionId: state.sessionId,
            status: state.status,
            progressPercent: progressAt(state, Date.now()).percent,
            seq: state.seq,
          })
        : null;
      await Promise.all([player, workflow]);
    } catch (e) {
      log("warn", "queue.notify_failed", {
        session_id: state.sessionId,
        player_id: state.playerId,
        message: e instanceof Error ? e.message : String(e),
      });
    }
  }

  #position(state: SessionState, nowMs: number) {
    return { seq: state.seq, epoch: state.epoch, serverTimeMs: nowMs };
  }

  #json(state: SessionState): SessionJson {
    return toJsonString(SessionStateSchema, sessionStateMessage(state, Date.now()));
  }
}

/** Whether a fold changed anything a client can see (seq aside). */
function changed(prev: SessionState | null, next: SessionState): boolean {
  return (
    prev === null || JSON.stringify({ ...prev, seq: 0 }) !== JSON.stringify({ ...next, seq: 0 })
  );
}
