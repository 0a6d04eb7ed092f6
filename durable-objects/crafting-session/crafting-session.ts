/**
 * One crafting session: a thin Durable Object around the pure state machine
 * (src/domain/session/session-machine.ts). It decodes input, calls
 * `transition`, and carries out the effects in order: persist (one
 * synchronous SQLite transaction), deliver to its streams
 * (streams/stream-hub.ts), close them, notify the player's and the
 * workflow's objects, count.
 */

import { toJsonString } from "@bufbuild/protobuf";
import type { EventResult, SessionEvent } from "../../src/domain/events/session-events";
import type { MaterialChange, MaterialOutcome } from "../../src/domain/materials/materials";
import { totalDurationMs } from "../../src/domain/session/progress";
import {
  type CreateSessionParams,
  isFinal,
  type LifecycleAction,
  type ProgressCorrection,
  type Session,
} from "../../src/domain/session/session";
import {
  noticesAgain,
  type SessionEffect,
  type SessionInput,
  type SessionOutcome,
  transition,
} from "../../src/domain/session/session-machine";
import { CloseCode, fail, ok, type Result } from "../../src/errors";
import type { ServerFrame } from "../../src/gen/crafting/v1/frames_pb";
import { SessionStateSchema } from "../../src/gen/crafting/v1/session_pb";
import { log, setLogLevel } from "../../src/log";
import { metrics, pushMetricsSoon } from "../../src/metrics/push";
import { frameTraceId, type TraceContext } from "../../src/middleware/trace";
import { materialFrame, snapshotFrame, updateFrame } from "../../src/protocol/frames";
import {
  materialNotificationMessage,
  minimalJson,
  sessionStateMessage,
  sessionUpdateMessage,
} from "../../src/protocol/session-wire";
import { encodeSync } from "../../src/protocol/sync/sync-encoder";
import { OwedRetry } from "../owed-retry";
import { meterObject } from "../storage-meter";
import { StreamHub } from "../streams/stream-hub";
import { StreamingObject } from "../streams/streaming-object";
import { EventStore } from "./event-store";
import { Followers, notTold } from "./notices";
import { SessionStore } from "./session-store";

/** Updates kept for resuming clients: the last 1,000 (docs/streams.md, "Resume"). */
export const REPLAY_LOG_LIMIT = 1000;

/**
 * A session as HTTP callers see it: the proto3 JSON text of the wire `SessionState`,
 * passed through the Worker untouched.
 */
export type SessionJson = string;

/** Durable Object holding one crafting session and its live subscribers. */
export class CraftingSession extends StreamingObject {
  #state: Session | null;
  readonly #store: SessionStore;
  readonly #events: EventStore;
  readonly #followers = new Followers(
    () => this.env,
    () => totalDurationMs(this.#state?.steps ?? []),
    (to, e) => this.#notifyFailed(to, e),
  );
  /** A status the player's queue or the workflow could not be told, told again by the alarm. */
  readonly #owed: OwedRetry;
  protected override readonly hub: StreamHub;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(ctx, "session");
    setLogLevel(env.LOG_LEVEL);
    this.#owed = new OwedRetry(ctx.storage, env, { object: "session", work: "notify" }, () => ({
      session_id: this.#state?.sessionId,
      seq: this.#state?.seq,
    }));
    // Synchronous reads of SQLite-backed storage: nothing is written for an
    // id that was never created, so probing an unknown id leaves no trace.
    this.#store = new SessionStore(ctx.storage, REPLAY_LOG_LIMIT);
    this.#state = this.#store.load();
    this.#events = new EventStore(ctx.storage);
    this.hub = new StreamHub(ctx, env, "session", {
      position: (nowMs) => (this.#state ? this.#position(this.#state, nowMs) : null),
      snapshot: (nowMs, recovered) => {
        const state = this.#state as Session;
        const position = this.#position(state, nowMs);
        return snapshotFrame(position, sessionStateMessage(state, nowMs), recovered);
      },
      replayAfter: (seq) => this.#store.after(seq),
      auditFields: () => ({ session_id: this.#state?.sessionId }),
      syncPackets: (channel, nowMs, forceFull) =>
        this.#state ? encodeSync(channel, this.#state, nowMs, forceFull) : null,
    });
  }

  // --- RPC for the Worker ----------------------------------------------------

  /** Creates the session; repeating the same create is idempotent. */
  async create(
    params: CreateSessionParams,
    trace?: TraceContext,
  ): Promise<Result<{ created: boolean; session: SessionJson }>> {
    const result = await this.#apply(
      { type: "create", params, epoch: newEpoch(), atMs: Date.now() },
      trace,
    );
    if (!result.ok) return result;
    const { state, outcome } = result.value;
    const created = outcome.type === "created" && outcome.created;
    return ok({ created, session: this.#json(state as Session) });
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

  /**
   * Applies an explicit progress correction from crafting-service; answers
   * the session, or (`minimal`, for callers that send many) only where it
   * stands: building the whole state costs more than the correction.
   */
  async correctProgress(
    correction: ProgressCorrection,
    trace?: TraceContext,
    minimal = false,
  ): Promise<Result<SessionJson>> {
    return this.#applyAsJson({ type: "progress", correction, atMs: Date.now() }, trace, minimal);
  }

  /** Applies several progress corrections as one change: all or none, one update. */
  async correctProgressBatch(
    corrections: ProgressCorrection[],
    trace?: TraceContext,
    minimal = false,
  ): Promise<Result<SessionJson>> {
    const input: SessionInput = { type: "progress_batch", corrections, atMs: Date.now() };
    return this.#applyAsJson(input, trace, minimal);
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
    const input: SessionInput = { type: "materials", changes, asOfMs, atMs: Date.now() };
    const result = await this.#apply(input, trace);
    if (!result.ok) return result;
    const { state, outcome } = result.value;
    const outcomes = outcome.type === "materials" ? outcome.outcomes : [];
    return ok({ outcomes, session: this.#json(state as Session) });
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
   * Applies bridged events (one batch, all for this session), through the
   * same transition as every other input; says what became of each.
   */
  async applyEvents(events: SessionEvent[]): Promise<EventResult[]> {
    const now = Date.now();
    const store = this.#events;
    const epoch = this.#state?.epoch ?? newEpoch();
    store.expire(now, epoch);
    const meta = store.meta() ?? { floor: 0, maxVersion: 0, base: this.#state };
    const log = {
      ...meta,
      seen: (eventId: string) => store.has(eventId),
      stored: () => store.all(),
    };
    const result = await this.#apply({ type: "events", events, log, epoch, atMs: now });
    if (!result.ok) throw new Error(result.error.message);
    const { outcome } = result.value;
    return outcome.type === "events" ? outcome.results : [];
  }

  // --- Streams ---------------------------------------------------------------

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

  /**
   * Tells the player's queue and the workflow again a status they could not
   * be told (unless they have heard it since, from a caller's retry), until
   * they have it (src/domain/owed.ts).
   */
  override async alarm(): Promise<void> {
    await super.alarm();
    const state = this.#state;
    if (!this.#owed.pending()) return;
    if (!state) return this.#owed.done();
    const now = Date.now();
    const told = await Promise.all(
      noticesAgain(state, now).map((notice) => this.#followers.tell(notice, now)),
    );
    if (told.includes(false)) await this.#owed.failed();
    else this.#owed.done();
  }

  // --- Internals -------------------------------------------------------------

  async #applyAsJson(
    input: SessionInput,
    trace?: TraceContext,
    minimal = false,
  ): Promise<Result<SessionJson>> {
    const result = await this.#apply(input, trace);
    if (!result.ok) return result;
    const { outcome } = result.value;
    const state = result.value.state as Session;
    if (!minimal) return ok(this.#json(state));
    return ok(minimalJson(state, outcome.type !== "applied" || outcome.changed));
  }

  /** Runs one transition and carries out its effects, in order. */
  async #apply(
    input: SessionInput,
    trace?: TraceContext,
  ): Promise<Result<{ state: Session | null; outcome: SessionOutcome }>> {
    const result = transition(this.#state, input);
    if (!result.ok) return result;
    const { state, effects, outcome } = result;
    const frame = state && this.#frameFor(state, effects, input.atMs, frameTraceId(trace));
    const waits: Promise<boolean>[] = [];
    for (const effect of effects) {
      switch (effect.type) {
        case "persist":
          try {
            this.#persist(state, frame, effect);
          } catch (e: unknown) {
            this.#events.forget();
            log("error", "session.persist_failed", {
              session_id: state?.sessionId,
              seq: state?.seq,
              message: e instanceof Error ? e.message : String(e),
            });
            return fail("internal", "the session could not be saved; nothing was changed");
          }
          this.#state = state;
          break;
        case "deliver":
          if (frame) {
            const latestWins = effect.frame === "update" && effect.latestWins;
            const receivedAtMs =
              (effect.frame === "update" && effect.receivedAtMs) ||
              (trace?.receivedAtMs ?? input.atMs);
            this.hub.deliver(frame, latestWins, input.atMs, receivedAtMs);
          }
          break;
        case "close_all":
          this.hub.endAll(CloseCode.NORMAL, effect.reason);
          break;
        case "notify_player":
        case "notify_workflow":
          waits.push(this.#followers.tell(effect, input.atMs));
          break;
        case "count":
          if (effect.metric === "crafting_sessions_ended_total")
            metrics.count(effect.metric, { status: effect.status });
          else metrics.count(effect.metric);
          pushMetricsSoon(this.env);
          break;
        case "log_ignored":
          log("info", "event.ignored", {
            session_id: effect.event.sessionId,
            event_id: effect.event.eventId,
            event_type: effect.event.kind,
            version: effect.event.version,
            reason: effect.reason,
          });
          break;
      }
    }
    // A change nobody was sent (a creation) leaves every stream current.
    if (state) this.hub.current(state.seq);
    if ((await Promise.all(waits)).includes(false)) {
      await this.#owed.failed();
      return notTold(state?.seq ?? 0);
    }
    if (trace && state && effects.length > 0) {
      log("debug", "session.changed", {
        session_id: state.sessionId,
        seq: state.seq,
        status: state.status,
        trace_id: trace.traceId,
      });
    }
    return ok({ state, outcome });
  }

  #notifyFailed(to: string, e: unknown): void {
    log("warn", "session.notify_failed", {
      session_id: this.#state?.sessionId,
      to,
      message: e instanceof Error ? e.message : String(e),
    });
  }

  /** The frame a transition's effects send (an update or a material notification), if any. */
  #frameFor(
    state: Session,
    effects: readonly SessionEffect[],
    atMs: number,
    traceId: string,
  ): ServerFrame | null {
    for (const effect of effects) {
      if (effect.type !== "deliver") continue;
      const position = {
        ...this.#position(state, atMs),
        traceId: (effect.frame === "update" && effect.traceId) || traceId,
      };
      if (effect.frame === "update")
        return updateFrame(
          position,
          sessionUpdateMessage(state, effect.cause, effect.statusChanged),
        );
      return materialFrame(position, materialNotificationMessage(state, effect.changes, atMs));
    }
    return null;
  }

  /** State, seq, replay-log entry and new events in one synchronous transaction, before anyone hears of it. */
  #persist(
    state: Session | null,
    frame: ServerFrame | null,
    effect: Extract<SessionEffect, { type: "persist" }>,
  ): void {
    const { storage } = this.ctx;
    const events = this.#events;
    // An HTTP command on a session that also receives events becomes their new base.
    const settle = effect.settleEvents && state !== null && events.meta() !== null;
    // (The rows written are counted by the storage meter, storage-meter.ts.)
    const write = () => {
      if (settle && state) events.settleUnder(state);
      if (effect.events) events.save(effect.events.fresh, effect.events.maxVersion, this.#state);
      if (state !== null) this.#store.save(state, frame);
    };
    // One statement is atomic by itself (the common case: a progress update);
    // several share a transaction.
    if (settle || effect.events) storage.transactionSync(write);
    else write();
  }

  #position(state: Session, nowMs: number) {
    return { seq: state.seq, epoch: state.epoch, serverTimeMs: nowMs };
  }

  #json(state: Session): SessionJson {
    return toJsonString(SessionStateSchema, sessionStateMessage(state, Date.now()));
  }
}

/** A new session's epoch: random, so a client holding another one knows to resync. */
function newEpoch(): number {
  return 1 + Math.floor(Math.random() * 0xfffffffe);
}
