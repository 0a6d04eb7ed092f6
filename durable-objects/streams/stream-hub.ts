/**
 * The live streams of one Durable Object, whatever they watch: accepting a
 * socket the Worker authenticated, the first frame (snapshot or resume),
 * inbound frames (size limit, frame budget, ping, resume), closes, the
 * stream rules applied at wakes (idle, token expiry; no timer of their
 * own), and latest-wins delivery of updates. The object supplies what is
 * watched through a `StreamSource`; one implementation of each rule, for
 * every kind.
 */

import { parseResumePoint, planResume } from "../../src/domain/streams/resume";
import type { StreamKind } from "../../src/domain/streams/stream-leases";
import {
  earliestExpiry,
  FRAME_BUDGET,
  meterFrame,
  STREAM_TIMING,
  type StreamClock,
  streamVerdict,
  tokenExpired,
} from "../../src/domain/streams/stream-liveness";
import { CloseCode } from "../../src/errors";
import type { ServerFrame } from "../../src/gen/crafting/v1/frames_pb";
import { descriptorBudgetOf, ObjectDescriptors } from "../../src/health/descriptor-budget";
import { log } from "../../src/log";
import { metrics } from "../../src/metrics/push";
import {
  errorFrame,
  type FramePosition,
  heartbeatFrame,
  MAX_CLIENT_FRAME_BYTES,
  pongFrame,
  resumedFrame,
} from "../../src/protocol/frames";
import {
  CODEC_TAG,
  codecOf,
  decodeClientFrame,
  encodeFrame,
  type StreamCodec,
} from "../../src/protocol/stream-codec";
import { STREAM_HEADERS } from "../../src/protocol/stream-headers";
import { Broadcaster } from "./broadcaster";
import { byteLength, trySend } from "./socket-send";
import { attachmentFor, type StreamAttachment } from "./stream-attachment";
import { StreamEnds } from "./stream-ends";
import type { StreamSource } from "./stream-source";
import { SyncSockets } from "./sync-sockets";

export type { StreamSource } from "./stream-source";

/** One frame encoded once per codec, for sending to many sockets. */
type EncodedFrames = Map<StreamCodec, string | Uint8Array>;

/** What a look at the open streams found: those it closed (their slots to release), and the live ones. */
interface StreamLook {
  closed: StreamAttachment[];
  live: { ws: WebSocket; attachment: StreamAttachment; clock: StreamClock }[];
  /** Every socket the runtime holds for this object, closing ones included. */
  sockets: number;
}

/** The live streams of one object. */
export class StreamHub {
  readonly #sync: SyncSockets;
  readonly #out: Broadcaster;
  readonly #ends: StreamEnds;
  /** When dead streams were last looked for (in memory: a wake looks again). */
  #deadCheckedAtMs = 0;
  /**
   * When the first open stream's token expires (ms since the epoch; in
   * memory): null until this isolate has looked at every stream.
   */
  #expiresAtMs: number | null = null;
  /** This object's share of the isolate's descriptor budget. */
  readonly #descriptors: ObjectDescriptors;

  constructor(
    private readonly ctx: DurableObjectState,
    env: Env,
    readonly kind: StreamKind,
    private readonly source: StreamSource,
  ) {
    this.#descriptors = new ObjectDescriptors(ctx.id.toString(), descriptorBudgetOf(env) > 0);
    this.#sync = new SyncSockets(source);
    this.#ends = new StreamEnds(env, kind, source);
    this.#out = new Broadcaster(
      ctx,
      env,
      this.#sync,
      source.position(Date.now())?.seq ?? 0,
      (now) => this.#expire(now),
    );
    // Keepalives are answered by the runtime without waking the object.
    // https://developers.cloudflare.com/durable-objects/best-practices/websockets/
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  // --- Connect and frames ----------------------------------------------------

  /**
   * Accepts a socket for `playerId` (the Worker verified the token and took
   * a stream slot, both in `headers`), sends its first frame, and (when
   * `endReason` is given: nothing more will happen) closes it normally.
   */
  async accept(headers: Headers, playerId: string, endReason: string | null): Promise<Response> {
    const now = Date.now();
    this.#expire(now);
    const position = this.source.position(now);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const protocol = headers.get(STREAM_HEADERS.protocol);
    const codec = codecOf(protocol);
    this.ctx.acceptWebSocket(server, [playerId, CODEC_TAG[codec]]);
    this.#descriptors.socketChanged(1);
    if (codec === "sync" && !this.source.syncPackets)
      throw new Error("a sync stream needs a session to watch");
    const attachment = attachmentFor(headers, playerId, codec, position?.seq ?? 0, now);
    server.serializeAttachment(attachment);
    this.#expiresAtMs = Math.min(
      this.#expiresAtMs ?? Number.POSITIVE_INFINITY,
      attachment.tokenExp * 1000,
    );
    this.#out.joined();
    const resume = parseResumePoint(headers.get(STREAM_HEADERS.resume));
    if (codec === "sync") this.#sync.sync(server, now, true, attachment);
    else if (resume) this.#resume(server, resume.epoch, resume.seq, now, attachment);
    else server.send(encodeFrame(codec, this.source.snapshot(now)));
    this.#ends.audit("stream.connect", attachment, { resume_seq: resume?.seq });
    metrics.count("crafting_streams_opened_total", { kind: this.kind });

    if (endReason !== null)
      await this.#ends.release([this.#ends.close(server, CloseCode.NORMAL, endReason)]);
    const responseHeaders = new Headers();
    if (protocol) responseHeaders.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers: responseHeaders });
  }

  /** An inbound frame: size limit, frame budget, then ping or resume. */
  async message(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.#descriptors.woke(Date.now());
    const size = byteLength(message);
    metrics.count("crafting_messages_in_total");
    metrics.count("crafting_bytes_in_total", {}, size);
    if (size > MAX_CLIENT_FRAME_BYTES) {
      if ((ws.deserializeAttachment() as StreamAttachment).closedCode !== undefined) return;
      const reason = `frames are limited to ${MAX_CLIENT_FRAME_BYTES} bytes`;
      await this.#ends.release([
        this.#ends.close(ws, CloseCode.MESSAGE_TOO_BIG, reason, { bytes: size }),
      ]);
      return;
    }
    const now = Date.now();
    const position = this.source.position(now) ?? { seq: 0, epoch: 0, serverTimeMs: now };
    const attachment = ws.deserializeAttachment() as StreamAttachment;
    // Frames still in flight after the server closed the stream are dropped.
    if (attachment.closedCode !== undefined) return;
    const metered = meterFrame(attachment.bucket, now);
    const stored: StreamAttachment = { ...attachment, lastSeenMs: now, bucket: metered.bucket };
    ws.serializeAttachment(stored);
    // A frame is a wake: streams past their token are closed before any answer
    // (this one too: it gets none), and the dead ones looked for (this one just spoke).
    this.#expire(now);
    if (tokenExpired(stored, now)) return;
    this.#closeDead(now);
    if (metered.decision !== "accept") {
      await this.#throttle(ws, stored, metered.decision, position);
      return;
    }
    const codec = stored.codec ?? "json";
    if (codec === "sync") {
      this.#sync.request(ws, stored, message, position, now);
      return;
    }
    const decoded = decodeClientFrame(codec, message);
    if (!decoded.ok) {
      this.#send(ws, errorFrame(position, decoded.error), stored);
      return;
    }
    const { kind } = decoded.frame;
    switch (kind.case) {
      case "ping":
        this.#send(ws, pongFrame(position, kind.value.clientTimeMs), stored);
        break;
      case "resume":
        this.#resume(ws, kind.value.epoch, kind.value.seq, now, stored);
        ws.serializeAttachment({ ...stored, syncedSeq: this.source.position(now)?.seq ?? 0 });
        this.#out.joined();
        break;
    }
  }

  /** The client closed (or the connection dropped). */
  async closed(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Reciprocate the peer's close frame, or clients see 1006. 1005 and 1006
    // are never sent on the wire (RFC 6455 §7.4.1).
    try {
      ws.close(code === 1005 || code === 1006 ? CloseCode.NORMAL : code, reason);
    } catch {
      // Already closed by the runtime.
    }
    this.#descriptors.socketChanged(-1);
    const attachment = ws.deserializeAttachment() as StreamAttachment;
    // A stream the server closed was counted and released then.
    if (attachment.closedCode !== undefined) return;
    this.#ends.audit("stream.close", attachment, { close_code: code, by: "client" });
    metrics.count("crafting_streams_closed_total", { kind: this.kind, code: String(code) });
    await this.#ends.release([attachment]);
  }

  /** A socket error: logged; its close follows. */
  errored(ws: WebSocket, error: unknown): void {
    const attachment = ws.deserializeAttachment() as StreamAttachment | null;
    log("warn", "stream.error", {
      ...this.source.auditFields(),
      player_id: attachment?.playerId,
      message: error instanceof Error ? error.message : String(error),
    });
  }

  // --- The sweep -------------------------------------------------------------

  /**
   * A maintenance sweep, for an object that keeps an alarm of its own (the
   * health stream's, every 5 s): closes streams idle for 30 s (dead
   * clients, and sockets whose close event never fired, workerd#1187) or
   * whose token expired, and sends the others a heartbeat. Schedules
   * nothing: a stream never wakes its object by a timer.
   */
  async sweep(): Promise<void> {
    const now = Date.now();
    const { closed, live } = this.#lookAtAll(now);
    const position = this.source.position(now);
    if (position) {
      const heartbeat = heartbeatFrame(position, STREAM_TIMING.idleTimeoutMs);
      const encoded: EncodedFrames = new Map();
      for (const { ws, attachment } of live) this.#send(ws, heartbeat, attachment, encoded);
    }
    if (closed.length > 0) await this.#ends.release(closed);
  }

  /**
   * Which of these slots still hold a live stream here (a player's object
   * asks when it needs a slot): a stream idle for 30 s or past its token is
   * closed now and not counted, and its player frees the slot.
   */
  openLeases(leaseIds: readonly string[]): string[] {
    const { live } = this.#closeDeadStreams(Date.now(), new Set(leaseIds));
    return live.map((stream) => stream.attachment.leaseId);
  }

  /**
   * Closes, at a wake, the streams that died meanwhile (nothing from their
   * client for 30 s, or past their token): a dead stream is closed at the
   * object's next wake, never by a timer of its own. Looks at most once per
   * idle timeout while awake.
   */
  #closeDead(nowMs: number): void {
    if (nowMs - this.#deadCheckedAtMs < STREAM_TIMING.idleTimeoutMs) return;
    this.#deadCheckedAtMs = nowMs;
    // After this turn: frames sent in it leave when it ends, and looking at
    // every stream (a thousand attachments) must not hold them back.
    setTimeout(() => this.#closeDeadNow(Date.now()), 0);
  }

  /**
   * Nothing reaches a stream past its token: before anything is sent (a
   * change, an answer to a frame, a first frame), the streams whose token
   * expired are closed with 4001, and the dead ones with 4008 on the same
   * look. Looks at every stream only when a token may have expired, or once
   * after a wake (the earliest expiry is kept in memory).
   */
  #expire(nowMs: number): void {
    if (this.#expiresAtMs !== null && nowMs < this.#expiresAtMs) return;
    this.#closeDeadNow(nowMs);
  }

  /** Closes the dead streams now; their slots go back in the background (one that does not is reclaimed when needed). */
  #closeDeadNow(nowMs: number): void {
    const { closed } = this.#lookAtAll(nowMs);
    if (closed.length > 0) void this.#ends.release(closed);
  }

  /**
   * Applies the stream rules to every open stream at `nowMs` (below), and
   * remembers that it looked and when the first live stream's token expires.
   */
  #lookAtAll(nowMs: number): StreamLook {
    const look = this.#closeDeadStreams(nowMs);
    this.#descriptors.socketsCounted(look.sockets);
    this.#deadCheckedAtMs = nowMs;
    this.#expiresAtMs = earliestExpiry(look.live.map((stream) => stream.clock));
    return look;
  }

  /**
   * Applies the stream rules (idle, token expiry) to the open streams (or
   * to those holding one of `leaseIds`) at `nowMs`: closes the dead ones
   * (returned, for their slots to be released) and returns the live ones.
   */
  #closeDeadStreams(nowMs: number, leaseIds?: ReadonlySet<string>): StreamLook {
    const closed: StreamAttachment[] = [];
    const live: StreamLook["live"] = [];
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) {
      const attachment = ws.deserializeAttachment() as StreamAttachment | null;
      if (!attachment || attachment.closedCode !== undefined) continue;
      if (leaseIds && !leaseIds.has(attachment.leaseId)) continue;
      const clock = this.#clockOf(ws, attachment);
      const verdict = streamVerdict(clock, nowMs);
      if (verdict.action === "close")
        closed.push(this.#ends.close(ws, verdict.code, verdict.reason));
      else live.push({ ws, attachment, clock });
    }
    return { closed, live, sockets: sockets.length };
  }

  /** A stream's last sign of life (a frame, or a keepalive the runtime answered) and its token's expiry. */
  #clockOf(ws: WebSocket, attachment: StreamAttachment): StreamClock {
    const pinged = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
    return { lastSeenMs: Math.max(attachment.lastSeenMs, pinged), tokenExp: attachment.tokenExp };
  }

  // --- Delivery --------------------------------------------------------------

  /**
   * Sends a change to every stream now, or holds progress over the live
   * budget (latest-wins; broadcaster.ts). `receivedAtMs`: when the change
   * reached the edge (delivery latency).
   */
  deliver(frame: ServerFrame, coalescible: boolean, nowMs: number, receivedAtMs: number): void {
    this.#out.deliver(frame, coalescible, nowMs, receivedAtMs);
    this.#closeDead(nowMs);
  }

  /** A change no stream was sent (a creation) leaves every stream current at `seq`. */
  current(seq: number): void {
    this.#out.current(seq);
  }

  /** Closes every stream (the watched state ended). */
  async closeAll(code: number, reason: string): Promise<void> {
    await this.#ends.release(
      this.ctx.getWebSockets().map((ws) => this.#ends.close(ws, code, reason)),
    );
  }

  // --- Internals -------------------------------------------------------------

  /** Replays what a client missed after (epoch, seq), then says so; or a snapshot not recovered. */
  #resume(
    ws: WebSocket,
    epoch: number,
    seq: number,
    now: number,
    attachment: StreamAttachment,
  ): void {
    const position = this.source.position(now);
    if (!position) return;
    const plan = planResume(position, { epoch, seq }, (after) => this.source.replayAfter(after));
    if (plan.type === "snapshot") {
      this.#send(ws, this.source.snapshot(now, false), attachment);
      return;
    }
    for (const frame of plan.frames) this.#send(ws, frame, attachment);
    this.#send(ws, resumedFrame(position, seq, plan.missed), attachment);
  }

  /**
   * Sends one frame in the stream's codec (on the sync channel: a heartbeat
   * is a sync, others control packets). `cache` shares one encoding of the
   * same frame among many sockets.
   */
  #send(
    ws: WebSocket,
    frame: ServerFrame,
    attachment: StreamAttachment,
    cache: EncodedFrames = new Map(),
  ): void {
    const codec: StreamCodec = attachment.codec ?? "json";
    if (codec !== "sync") {
      let data = cache.get(codec);
      if (data === undefined) {
        data = encodeFrame(codec, frame);
        cache.set(codec, data);
      }
      trySend(ws, data);
      return;
    }
    this.#sync.send(ws, frame, attachment, Date.now());
  }

  /** Refuses a frame over budget; closes a client that keeps sending regardless. */
  async #throttle(
    ws: WebSocket,
    attachment: StreamAttachment,
    decision: "throttle" | "close",
    position: FramePosition,
  ): Promise<void> {
    this.#ends.audit("stream.throttle", attachment, { decision });
    metrics.count("crafting_throttles_total", { limit: "frame_budget" });
    if (decision === "throttle") {
      const message = `over ${FRAME_BUDGET.perSecond} frames/s (burst ${FRAME_BUDGET.burst}): this frame was ignored; slow down or be disconnected`;
      this.#send(ws, errorFrame(position, { code: "resource_exhausted", message }), attachment);
      return;
    }
    await this.#ends.release([this.#ends.close(ws, CloseCode.POLICY_VIOLATION, "too many frames")]);
  }
}
