/**
 * One crafting session: a thin Durable Object around the pure state machine
 * in crafting-session-state.ts. It decodes input, calls `transition`, and
 * carries out the effects: persist (one synchronous SQLite transaction),
 * broadcast to hibernatable WebSockets, close.
 */

import { DurableObject } from "cloudflare:workers";
import { fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import { CloseCode, fail, httpStatus, ok, type Result, type ServiceError } from "../../src/errors";
import { type ServerFrame, ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import { SessionStateSchema } from "../../src/gen/crafting/v1/session_pb";
import { log } from "../../src/log";
import {
  decodeClientJson,
  encodeJson,
  errorFrame,
  MAX_CLIENT_FRAME_BYTES,
  pongFrame,
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
import { STREAM_HEADERS, type StreamAttachment } from "./stream-attachment";

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

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Synchronous KV read of SQLite-backed storage: nothing is written for an
    // id that was never created, so probing an unknown id leaves no trace.
    this.#state = ctx.storage.kv.get<SessionState>(STATE_KEY) ?? null;
    this.#replayTableReady = this.#state !== null;
    // Keepalives are answered by the runtime without waking the object.
    // https://developers.cloudflare.com/durable-objects/best-practices/websockets/
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  // ─── RPC for the Worker ────────────────────────────────────────────────────

  /** Creates the session; repeating the same create is idempotent. */
  async create(
    params: CreateSessionParams,
  ): Promise<Result<{ created: boolean; session: SessionJson }>> {
    const epoch = 1 + Math.floor(Math.random() * 0xfffffffe);
    const before = this.#state;
    const result = this.#apply({ type: "create", params, epoch, atMs: Date.now() });
    if (!result.ok) return result;
    return ok({ created: before === null, session: this.#json(result.value) });
  }

  /** Applies a lifecycle action (start, pause, resume, complete, fail, cancel). */
  async lifecycle(action: LifecycleAction, reason?: string): Promise<Result<SessionJson>> {
    const input: SessionInput = { type: "lifecycle", action, atMs: Date.now() };
    if (reason !== undefined) input.reason = reason;
    return this.#applyAsJson(input);
  }

  /** Applies an explicit progress correction from crafting-service. */
  async correctProgress(correction: ProgressCorrection): Promise<Result<SessionJson>> {
    return this.#applyAsJson({ type: "progress", correction, atMs: Date.now() });
  }

  /** The current state, or not_found. */
  async view(): Promise<Result<SessionJson>> {
    if (!this.#state) return fail("not_found", "no crafting session with this id");
    return ok(this.#json(this.#state));
  }

  // ─── Streams ───────────────────────────────────────────────────────────────

  /** Accepts a WebSocket the Worker has already authenticated. */
  override async fetch(request: Request): Promise<Response> {
    const playerId = request.headers.get(STREAM_HEADERS.player);
    const tokenExp = Number(request.headers.get(STREAM_HEADERS.tokenExp));
    const protocol = request.headers.get(STREAM_HEADERS.protocol) ?? "";
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket" || !playerId) {
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
    const attachment: StreamAttachment = { playerId, tokenExp, connectedAtMs: now };
    server.serializeAttachment(attachment);
    server.send(
      encodeJson(snapshotFrame(this.#position(state, now), sessionStateMessage(state, now))),
    );
    if (isFinal(state.status)) server.close(CloseCode.NORMAL, `session ${state.status}`);

    const headers = new Headers();
    if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const size =
      typeof message === "string"
        ? new TextEncoder().encode(message).byteLength
        : message.byteLength;
    if (size > MAX_CLIENT_FRAME_BYTES) {
      ws.close(CloseCode.MESSAGE_TOO_BIG, `frames are limited to ${MAX_CLIENT_FRAME_BYTES} bytes`);
      return;
    }
    const now = Date.now();
    const position = this.#state
      ? this.#position(this.#state, now)
      : { seq: 0, epoch: 0, serverTimeMs: now };
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

  #applyAsJson(input: SessionInput): Result<SessionJson> {
    const result = this.#apply(input);
    return result.ok ? ok(this.#json(result.value)) : result;
  }

  /** Runs one transition and carries out its effects, in order. */
  #apply(input: SessionInput): Result<SessionState> {
    const result = transition(this.#state, input);
    if (!result.ok) return result;
    const { state, effects } = result;
    const broadcast = effects.find(
      (e): e is Extract<SessionEffect, { type: "broadcast" }> => e.type === "broadcast",
    );
    const frame = broadcast
      ? updateFrame(
          this.#position(state, input.atMs),
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
          if (frame) this.#broadcast(encodeJson(frame));
          break;
        case "close_all":
          this.#closeAll(CloseCode.NORMAL, effect.reason);
          break;
      }
    }
    return ok(state);
  }

  /** State, seq and replay-log entry in one synchronous transaction, before anyone hears of it. */
  #persist(state: SessionState, frame: ServerFrame | null): void {
    const { storage } = this.ctx;
    storage.transactionSync(() => {
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

  #broadcast(text: string): void {
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(text);
      } catch {
        // The socket closed between listing and sending; its close handler cleans up.
      }
    }
  }

  #closeAll(code: number, reason: string): void {
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.close(code, reason);
      } catch {
        // Already closing.
      }
    }
  }

  /**
   * Replays what a client missed after (epoch, seq), in order, or sends a
   * snapshot marked not recovered when the log cannot bridge the gap.
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

function errorResponse(error: ServiceError): Response {
  return Response.json({ error }, { status: httpStatus(error.code) });
}
