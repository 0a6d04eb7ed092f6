/**
 * One crafting session: a thin Durable Object around the pure state machine
 * in crafting-session-state.ts. It decodes input, calls `transition`, and
 * carries out the effects: persist (one synchronous SQLite transaction),
 * broadcast to hibernatable WebSockets, close.
 */

import { DurableObject } from "cloudflare:workers";
import { fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import { type HeldLease, releaseStreamLeases, renewStreamLeases } from "../../src/durable";
import { CloseCode, fail, httpStatus, ok, type Result, type ServiceError } from "../../src/errors";
import { type ServerFrame, ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import { SessionStateSchema } from "../../src/gen/crafting/v1/session_pb";
import { log, setLogLevel } from "../../src/log";
import { metrics, pushMetricsSoon } from "../../src/metrics/push";
import type { TraceContext } from "../../src/middleware/trace";
import {
  decodeClientJson,
  encodeJson,
  errorFrame,
  type FramePosition,
  heartbeatFrame,
  MAX_CLIENT_FRAME_BYTES,
  pongFrame,
  resumedFrame,
  snapshotFrame,
  updateFrame,
} from "../../src/protocol/frames";
import { sessionStateMessage, sessionUpdateMessage } from "../../src/protocol/session-wire";
import {
  type CreateSessionParams,
  isFinal,
  type LifecycleAction,
  type ProgressCorrection,
  type SessionEffect,
  type SessionInput,
  type SessionState,
  transition,
} from "./crafting-session-state";
import { type EventMeta, EventStore } from "./event-store";
import { newPacer, type Pacer, pace } from "./progress-pacing";
import { type FoldOutcome, foldEvents, type SessionEvent } from "./session-events";
import { STREAM_HEADERS, type StreamAttachment } from "./stream-attachment";
import {
  FRAME_BUDGET,
  meterFrame,
  newBucket,
  nextSweepAt,
  STREAM_TIMING,
  type StreamClock,
  streamVerdict,
} from "./stream-liveness";

const STATE_KEY = "state";
/** Updates kept for resuming clients: the last 1,000 (see README, "Resume"). */
export const REPLAY_LOG_LIMIT = 1000;

/**
 * A session as HTTP callers see it: the proto3 JSON text of `SessionState`,
 * passed through the Worker untouched.
 */
export type SessionJson = string;

/** Durable Object holding one crafting session and its live subscribers. */
export class CraftingSession extends DurableObject<Env> {
  #state: SessionState | null;
  #replayTableReady = false;
  readonly #events: EventStore;
  /** Live progress budget and the one frame held back by it (progress-pacing.ts). */
  #pacer: Pacer = newPacer(Date.now());
  #pending: ServerFrame | null = null;
  /** When the oldest change the held frame stands for reached the edge. */
  #pendingSinceMs = 0;
  /** The seq every live stream has been sent (or synced past). */
  #deliveredSeq: number;
  /** A stream was synced (snapshot, replay) while a frame was held. */
  #joinedWhileHeld = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous KV read of SQLite-backed storage: nothing is written for an
    // id that was never created, so probing an unknown id leaves no trace.
    this.#state = ctx.storage.kv.get<SessionState>(STATE_KEY) ?? null;
    this.#replayTableReady = this.#state !== null;
    this.#deliveredSeq = this.#state?.seq ?? 0;
    setLogLevel(env.LOG_LEVEL);
    this.#events = new EventStore(ctx.storage);
    // Keepalives are answered by the runtime without waking the object.
    // https://developers.cloudflare.com/durable-objects/best-practices/websockets/
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
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
    const results = new Map<string, EventResult>();
    const fresh: SessionEvent[] = [];
    for (const event of events) {
      const { eventId } = event;
      if (results.has(eventId) || fresh.some((e) => e.eventId === eventId) || store.has(eventId)) {
        results.set(eventId, { eventId, outcome: "duplicate" });
      } else if (event.version <= meta.floor) {
        results.set(eventId, { eventId, outcome: "stale" });
      } else if (event.sessionId !== (prev?.sessionId ?? event.sessionId)) {
        results.set(eventId, { eventId, outcome: "rejected", reason: "session_id does not match" });
      } else if (prev && prev.playerId !== event.playerId) {
        results.set(eventId, {
          eventId,
          outcome: "rejected",
          reason: `session ${prev.sessionId} belongs to another player`,
        });
      } else {
        fresh.push(event);
      }
    }
    if (fresh.length > 0 && this.#foldIn(fresh, meta, epoch, results)) {
      await this.#closeAll(CloseCode.NORMAL, `session ${this.#state?.status}`);
    }
    return events.map((event) => results.get(event.eventId) as EventResult);
  }

  /**
   * Folds new events into the session: incrementally when they come in
   * order, from the base when not. True when the session just ended.
   */
  #foldIn(
    fresh: SessionEvent[],
    meta: EventMeta,
    epoch: number,
    results: Map<string, EventResult>,
  ): boolean {
    const prev = this.#state;
    const inOrder = prev !== null && fresh.every((event) => event.version > meta.maxVersion);
    const fold = inOrder
      ? foldEvents(prev, fresh, epoch)
      : foldEvents(meta.base, [...this.#events.all(), ...fresh], epoch);
    for (const event of fresh) {
      const outcome = fold.outcomes.get(event.eventId) ?? { outcome: "parked" };
      results.set(event.eventId, { eventId: event.eventId, ...outcome });
      if (outcome.outcome === "ignored") {
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
    if (!next || next === prev) return false;
    this.#state = next;
    this.#countLifecycle(prev, next);
    if (prev === null) {
      this.#deliveredSeq = next.seq;
      return false;
    }
    const acceptedAtMs = Math.min(...fresh.map((event) => event.acceptedAtMs));
    if (frame) this.#deliver(frame, cause === "progress", atMs, acceptedAtMs);
    return isFinal(next.status) && !isFinal(prev.status);
  }

  // ─── Streams ───────────────────────────────────────────────────────────────

  /**
   * Accepts a WebSocket the Worker has already authenticated and given a
   * stream lease. Ownership is checked here, where the owner is known.
   */
  override async fetch(request: Request): Promise<Response> {
    const headers = request.headers;
    const playerId = headers.get(STREAM_HEADERS.player);
    const leaseId = headers.get(STREAM_HEADERS.leaseId) ?? "";
    if (headers.get("Upgrade")?.toLowerCase() !== "websocket" || !playerId) {
      return errorResponse({
        code: "invalid_argument",
        message: "expected an authenticated WebSocket upgrade",
      });
    }
    const state = this.#state;
    if (!state)
      return errorResponse({ code: "not_found", message: "no crafting session with this id" });
    if (state.playerId !== playerId) {
      return errorResponse({
        code: "permission_denied",
        message: "this session belongs to another player",
      });
    }

    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [playerId]);
    const now = Date.now();
    const attachment: StreamAttachment = {
      playerId,
      leaseId,
      tokenExp: Number(headers.get(STREAM_HEADERS.tokenExp)),
      connectedAtMs: now,
      lastSeenMs: now,
      origin: headers.get(STREAM_HEADERS.origin),
      syncedSeq: state.seq,
      bucket: newBucket(now),
    };
    server.serializeAttachment(attachment);
    if (this.#pending) this.#joinedWhileHeld = true;
    const resume = parseResume(headers.get(STREAM_HEADERS.resume));
    if (resume) this.#resume(server, resume.epoch, resume.seq, now);
    else
      server.send(
        encodeJson(snapshotFrame(this.#position(state, now), sessionStateMessage(state, now))),
      );
    this.#audit("stream.connect", attachment, { resume_seq: resume?.seq });
    metrics.count("crafting_streams_opened_total", { kind: "session" });

    if (isFinal(state.status)) {
      // Nothing more will happen: deliver what the client needs, then end.
      await this.#release([
        this.#closeByServer(server, CloseCode.NORMAL, `session ${state.status}`),
      ]);
    } else {
      await this.#ensureSweep(attachment, now);
    }

    const responseHeaders = new Headers();
    const protocol = headers.get(STREAM_HEADERS.protocol);
    if (protocol) responseHeaders.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers: responseHeaders });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const size =
      typeof message === "string"
        ? new TextEncoder().encode(message).byteLength
        : message.byteLength;
    metrics.count("crafting_messages_in_total");
    metrics.count("crafting_bytes_in_total", {}, size);
    if (size > MAX_CLIENT_FRAME_BYTES) {
      const reason = `frames are limited to ${MAX_CLIENT_FRAME_BYTES} bytes`;
      await this.#release([
        this.#closeByServer(ws, CloseCode.MESSAGE_TOO_BIG, reason, { bytes: size }),
      ]);
      return;
    }
    const now = Date.now();
    const position = this.#state
      ? this.#position(this.#state, now)
      : { seq: 0, epoch: 0, serverTimeMs: now };
    const attachment = ws.deserializeAttachment() as StreamAttachment;
    const metered = meterFrame(attachment.bucket, now);
    ws.serializeAttachment({ ...attachment, lastSeenMs: now, bucket: metered.bucket });
    if (metered.decision !== "accept") {
      await this.#throttle(ws, attachment, metered.decision, position);
      return;
    }
    if (typeof message !== "string") {
      ws.send(
        encodeJson(
          errorFrame(position, {
            code: "invalid_argument",
            message: "this stream speaks crafting.v1.json: send text frames",
          }),
        ),
      );
      return;
    }
    const decoded = decodeClientJson(message);
    if (!decoded.ok) {
      ws.send(encodeJson(errorFrame(position, decoded.error)));
      return;
    }
    const { kind } = decoded.frame;
    switch (kind.case) {
      case "ping":
        ws.send(encodeJson(pongFrame(position, kind.value.clientTimeMs)));
        break;
      case "resume":
        this.#resume(ws, kind.value.epoch, kind.value.seq, now);
        ws.serializeAttachment({
          ...(ws.deserializeAttachment() as StreamAttachment),
          syncedSeq: this.#state?.seq ?? 0,
        });
        if (this.#pending) this.#joinedWhileHeld = true;
        break;
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Reciprocate the peer's close frame, or clients see 1006. 1005 and 1006
    // are never sent on the wire (RFC 6455 §7.4.1).
    try {
      ws.close(code === 1005 || code === 1006 ? CloseCode.NORMAL : code, reason);
    } catch {
      // Already closed by the runtime.
    }
    const attachment = ws.deserializeAttachment() as StreamAttachment;
    // A stream the server closed was counted and released then.
    if (attachment.closedCode !== undefined) return;
    this.#audit("stream.close", attachment, { close_code: code, by: "client" });
    metrics.count("crafting_streams_closed_total", { kind: "session", code: String(code) });
    await this.#release([attachment]);
  }

  /**
   * The sweep: closes streams that were idle for 30 s or whose token expired
   * (also sockets whose close event never fired, workerd#1187), renews the
   * leases of the others, and schedules the next sweep while any remain.
   */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const kept: StreamAttachment[] = [];
    const closed: StreamAttachment[] = [];
    const clocks = [];
    const heartbeat = this.#state
      ? encodeJson(heartbeatFrame(this.#position(this.#state, now), STREAM_TIMING.idleTimeoutMs))
      : null;
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = ws.deserializeAttachment() as StreamAttachment | null;
      if (!attachment) continue;
      const pinged = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
      const clock = {
        lastSeenMs: Math.max(attachment.lastSeenMs, pinged),
        tokenExp: attachment.tokenExp,
      };
      const verdict = streamVerdict(clock, now);
      if (verdict.action === "close") {
        closed.push(this.#closeByServer(ws, verdict.code, verdict.reason));
      } else {
        kept.push(attachment);
        clocks.push(clock);
        if (heartbeat) trySend(ws, heartbeat);
      }
    }
    await Promise.all([this.#release(closed), renewStreamLeases(this.env, kept)]);
    const next = nextSweepAt(clocks, now);
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    const attachment = ws.deserializeAttachment() as StreamAttachment | null;
    log("warn", "stream.error", {
      session_id: this.#state?.sessionId,
      player_id: attachment?.playerId,
      message: error instanceof Error ? error.message : String(error),
    });
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
    const broadcast = effects.find(
      (e): e is Extract<SessionEffect, { type: "broadcast" }> => e.type === "broadcast",
    );
    const frame = broadcast
      ? updateFrame(
          { ...this.#position(state, input.atMs), traceId: trace?.traceId ?? "" },
          sessionUpdateMessage(state, broadcast.cause, input.atMs),
        )
      : null;
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
          if (frame) this.#deliver(frame, effect.cause === "progress", input.atMs, receivedAtMs);
          break;
        case "close_all":
          await this.#closeAll(CloseCode.NORMAL, effect.reason);
          break;
      }
    }
    // A change nobody was sent (create) leaves every stream current.
    if (!this.#pending) this.#deliveredSeq = state.seq;
    this.#countLifecycle(prev, state);
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

  /** State, seq and replay-log entry in one synchronous transaction, before anyone hears of it. */
  #persist(state: SessionState, frame: ServerFrame | null, { settleEvents = true } = {}): void {
    const { storage } = this.ctx;
    storage.transactionSync(() => {
      // An HTTP command on a session that also receives events becomes their new base.
      if (settleEvents) this.#events.settleUnder(state);
      if (!this.#replayTableReady) {
        storage.sql.exec(
          "CREATE TABLE IF NOT EXISTS replay_log (seq INTEGER PRIMARY KEY, frame BLOB NOT NULL)",
        );
      }
      storage.kv.put(STATE_KEY, state);
      if (frame) {
        storage.sql.exec(
          "INSERT INTO replay_log (seq, frame) VALUES (?, ?)",
          state.seq,
          toBinary(ServerFrameSchema, frame),
        );
        storage.sql.exec("DELETE FROM replay_log WHERE seq <= ?", state.seq - REPLAY_LOG_LIMIT);
      }
    });
    this.#replayTableReady = true;
  }

  /**
   * Sends a change to every stream now, or — progress over the live budget —
   * holds it as the one pending frame, replacing an older one (latest-wins).
   * A status change replaces any pending progress and goes at once.
   */
  #deliver(frame: ServerFrame, coalescible: boolean, nowMs: number, receivedAtMs: number): void {
    const hadPending = this.#pending !== null;
    this.#pending = null;
    const paced = pace(this.#pacer, nowMs);
    if (!coalescible || paced.sendNow) {
      // A status change spends a token too, but is never held back.
      this.#pacer = paced.pacer;
      this.#broadcast(frame, receivedAtMs);
      return;
    }
    this.#pending = frame;
    // Latency is measured from the oldest change the held frame stands for.
    if (!hadPending) this.#pendingSinceMs = receivedAtMs;
    if (!hadPending && !paced.sendNow) setTimeout(() => this.#flush(), paced.waitMs);
  }

  /** Sends the held frame once the budget allows. */
  #flush(): void {
    const frame = this.#pending;
    if (!frame) return;
    const paced = pace(this.#pacer, Date.now());
    this.#pacer = paced.pacer;
    if (!paced.sendNow) {
      setTimeout(() => this.#flush(), paced.waitMs);
      return;
    }
    this.#pending = null;
    this.#broadcast(frame, this.#pendingSinceMs);
  }

  /**
   * Sends a frame to every stream, saying how many changes it supersedes for
   * that stream; a stream already brought to its seq by a snapshot or replay
   * (possible only while a frame was held) is skipped.
   */
  #broadcast(frame: ServerFrame, receivedAtMs: number): void {
    const deliveredSeq = this.#deliveredSeq;
    const checkEach = this.#joinedWhileHeld;
    this.#deliveredSeq = frame.seq;
    this.#joinedWhileHeld = false;
    const texts = new Map<number, string>();
    let sent = 0;
    let bytes = 0;
    for (const ws of this.ctx.getWebSockets()) {
      let seen = deliveredSeq;
      if (checkEach) {
        const synced = (ws.deserializeAttachment() as StreamAttachment | null)?.syncedSeq ?? 0;
        if (synced >= frame.seq) continue;
        seen = Math.max(seen, synced);
      }
      const superseded = frame.seq - 1 - seen;
      let text = texts.get(superseded);
      if (text === undefined) {
        text = encodeJson(withSuperseded(frame, superseded));
        texts.set(superseded, text);
      }
      if (trySend(ws, text)) {
        sent++;
        bytes += text.length;
      }
    }
    if (sent > 0) {
      metrics.count("crafting_messages_out_total", {}, sent);
      metrics.count("crafting_bytes_out_total", {}, bytes);
      metrics.observe("crafting_delivery_latency_seconds", (Date.now() - receivedAtMs) / 1000);
      pushMetricsSoon(this.env);
    }
  }

  /** Counts sessions created and ended. */
  #countLifecycle(prev: SessionState | null, next: SessionState): void {
    if (prev === null) metrics.count("crafting_sessions_created_total");
    if (isFinal(next.status) && (prev === null || !isFinal(prev.status))) {
      metrics.count("crafting_sessions_ended_total", { status: next.status });
    }
    pushMetricsSoon(this.env);
  }

  async #closeAll(code: number, reason: string): Promise<void> {
    await this.#release(
      this.ctx.getWebSockets().map((ws) => this.#closeByServer(ws, code, reason)),
    );
  }

  /**
   * Closes a stream from the server side: marks it closed (so its close
   * event does not count it twice), closes, audits and counts it. Returns
   * what the caller must release.
   */
  #closeByServer(
    ws: WebSocket,
    code: number,
    reason: string,
    fields: Record<string, string | number | undefined> = {},
  ): StreamAttachment {
    const attachment = { ...(ws.deserializeAttachment() as StreamAttachment), closedCode: code };
    try {
      ws.serializeAttachment(attachment);
      ws.close(code, reason);
    } catch {
      // Already closing.
    }
    this.#audit("stream.close", attachment, { close_code: code, by: "server", ...fields });
    metrics.count("crafting_streams_closed_total", { kind: "session", code: String(code) });
    return attachment;
  }

  /** Gives back stream slots, and pushes the counts soon. */
  async #release(streams: readonly HeldLease[]): Promise<void> {
    pushMetricsSoon(this.env);
    await releaseStreamLeases(this.env, streams);
  }

  /** Refuses a frame over budget; closes a client that keeps sending regardless. */
  async #throttle(
    ws: WebSocket,
    attachment: StreamAttachment,
    decision: "throttle" | "close",
    position: FramePosition,
  ): Promise<void> {
    this.#audit("stream.throttle", attachment, { decision });
    metrics.count("crafting_throttles_total", { limit: "frame_budget" });
    if (decision === "throttle") {
      const message = `over ${FRAME_BUDGET.perSecond} frames/s (burst ${FRAME_BUDGET.burst}): this frame was ignored; slow down or be disconnected`;
      ws.send(encodeJson(errorFrame(position, { code: "resource_exhausted", message })));
      return;
    }
    await this.#release([this.#closeByServer(ws, CloseCode.POLICY_VIOLATION, "too many frames")]);
  }

  /** Makes sure a sweep runs before the new stream can go idle or its token expire. */
  async #ensureSweep(stream: StreamClock, now: number): Promise<void> {
    const due = nextSweepAt([stream], now) ?? now + STREAM_TIMING.sweepIntervalMs;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > due) await this.ctx.storage.setAlarm(due);
  }

  /** One audit line per connect, close and throttle: ids, origin, code; never a token. */
  #audit(
    event: string,
    stream: StreamAttachment,
    fields: Record<string, string | number | undefined> = {},
  ): void {
    log(event.endsWith("connect") ? "info" : "warn", event, {
      session_id: this.#state?.sessionId,
      player_id: stream.playerId,
      origin: stream.origin,
      ...fields,
    });
  }

  /**
   * Replays what a client missed after (epoch, seq), in order, then says so;
   * or sends a snapshot marked not recovered when the log cannot bridge the
   * gap (another epoch, a seq from the future, or older than the log keeps).
   */
  #resume(ws: WebSocket, epoch: number, seq: number, now: number): void {
    const state = this.#state;
    if (!state) return;
    const position = this.#position(state, now);
    if (epoch === state.epoch && seq <= state.seq) {
      const missed = state.seq - seq;
      const rows = this.#replayTableReady
        ? this.ctx.storage.sql
            .exec<{ frame: ArrayBuffer }>(
              "SELECT frame FROM replay_log WHERE seq > ? ORDER BY seq",
              seq,
            )
            .toArray()
        : [];
      if (rows.length === missed) {
        for (const row of rows)
          ws.send(encodeJson(fromBinary(ServerFrameSchema, new Uint8Array(row.frame))));
        ws.send(encodeJson(resumedFrame(position, seq, missed)));
        return;
      }
    }
    ws.send(encodeJson(snapshotFrame(position, sessionStateMessage(state, now), false)));
  }

  #position(state: SessionState, nowMs: number) {
    return { seq: state.seq, epoch: state.epoch, serverTimeMs: nowMs };
  }

  #json(state: SessionState): SessionJson {
    return toJsonString(SessionStateSchema, sessionStateMessage(state, Date.now()));
  }
}

/** What became of one bridged event; the queue consumer acks, retries or dead-letters by it. */
export type EventResult = { eventId: string } & (
  | FoldOutcome
  /** Seen before (same event id): acknowledged, nothing changed. */
  | { outcome: "duplicate" }
  /** At or below the settled version: too late to matter. */
  | { outcome: "stale" }
  /** Can never apply here (another player's session): dead-lettered with the reason. */
  | { outcome: "rejected"; reason: string }
);

/** Whether a fold changed anything a client can see (seq aside). */
function changed(prev: SessionState | null, next: SessionState): boolean {
  return (
    prev === null || JSON.stringify({ ...prev, seq: 0 }) !== JSON.stringify({ ...next, seq: 0 })
  );
}

/** The `epoch.seq` a resuming client presented, validated by the Worker. */
function parseResume(value: string | null): { epoch: number; seq: number } | null {
  const match = value ? /^(\d+)\.(\d+)$/.exec(value) : null;
  return match ? { epoch: Number(match[1]), seq: Number(match[2]) } : null;
}

/** A live copy of an update frame that says how many changes it supersedes. */
function withSuperseded(frame: ServerFrame, superseded: number): ServerFrame {
  if (superseded === 0 || frame.kind.case !== "update") return frame;
  return { ...frame, kind: { case: "update", value: { ...frame.kind.value, superseded } } };
}

/** Sends unless the socket closed meanwhile (its close handler cleans up); true when sent. */
function trySend(ws: WebSocket, text: string): boolean {
  try {
    ws.send(text);
    return true;
  } catch {
    // Closed between listing and sending.
    return false;
  }
}

function errorResponse(error: ServiceError): Response {
  return Response.json({ error }, { status: httpStatus(error.code) });
}
