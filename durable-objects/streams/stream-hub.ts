/**
 * The live streams of one Durable Object, whatever they watch: accepting a
 * socket the Worker authenticated, the first frame (snapshot or resume),
 * inbound frames (size limit, frame budget, ping, resume), closes, the
 * stream rules applied at wakes (idle, token expiry; no timer of their
 * own: dead-streams.ts), and latest-wins delivery of updates. The object
 * supplies what is watched through a `StreamSource`; one implementation of
 * each rule, for every kind.
 */

import { parseResumePoint, planResume } from "../../src/domain/streams/resume";
import type { StreamKind } from "../../src/domain/streams/stream-leases";
import {
  FRAME_BUDGET,
  meterFrame,
  STREAM_TIMING,
  tokenExpired,
} from "../../src/domain/streams/stream-liveness";
import { CloseCode } from "../../src/errors";
import type { ServerFrame } from "../../src/gen/crafting/v1/frames_pb";
import { DescriptorShare, descriptorBudgetOf } from "../../src/health/descriptor-budget";
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
import { DeadStreams } from "./dead-streams";
import { byteLength, trySend } from "./socket-send";
import { attachmentFor, type StreamAttachment } from "./stream-attachment";
import { StreamEnds } from "./stream-ends";
import type { StreamSource } from "./stream-source";
import { SyncSockets } from "./sync-sockets";

export type { StreamSource } from "./stream-source";

/**
 * How long after a stream's final frame the server closes it, if the client
 * has not (`endAll`): a round trip for clients anywhere, short enough that
 * one which never closes is not kept waiting.
 */
export const END_CLOSE_GRACE_MS = 1_000;

/** One frame encoded once per codec, for sending to many sockets. */
type EncodedFrames = Map<StreamCodec, string | Uint8Array>;

/** The live streams of one object. */
export class StreamHub {
  readonly #sync: SyncSockets;
  readonly #out: Broadcaster;
  readonly #ends: StreamEnds;
  readonly #dead: DeadStreams;
  /** This object's share of the isolate's descriptor budget. */
  readonly #descriptors: DescriptorShare;

  constructor(
    private readonly ctx: DurableObjectState,
    env: Env,
    readonly kind: StreamKind,
    private readonly source: StreamSource,
  ) {
    this.#descriptors = new DescriptorShare(ctx.id.toString(), descriptorBudgetOf(env) > 0);
    this.#sync = new SyncSockets(source);
    this.#ends = new StreamEnds(env, kind, source);
    this.#dead = new DeadStreams(ctx, this.#ends, this.#descriptors);
    this.#out = new Broadcaster(
      ctx,
      env,
      this.#sync,
      source.position(Date.now())?.seq ?? 0,
      (now) => this.#dead.expire(now),
    );
    // Keepalives are answered by the runtime without waking the object.
    // https://developers.cloudflare.com/durable-objects/best-practices/websockets/
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  // --- Connect and frames ----------------------------------------------------

  /**
   * Accepts a socket for `playerId` (the Worker verified the token and took
   * a stream slot, both in `headers`), sends its first frame, and (when
   * `endReason` is given: nothing more will happen) ends it as `endAll` does.
   */
  async accept(headers: Headers, playerId: string, endReason: string | null): Promise<Response> {
    const now = Date.now();
    this.#dead.expire(now);
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
    this.#dead.opened(attachment.tokenExp * 1000);
    this.#out.joined();
    const resume = parseResumePoint(headers.get(STREAM_HEADERS.resume));
    if (codec === "sync") this.#sync.sync(server, now, true, attachment);
    else if (resume) this.#resume(server, resume.epoch, resume.seq, now, attachment);
    else server.send(encodeFrame(codec, this.source.snapshot(now)));
    this.#ends.audit("stream.connect", attachment, { resume_seq: resume?.seq });
    metrics.count("crafting_streams_opened_total", { kind: this.kind });

    if (endReason !== null) this.#closeLater([server], CloseCode.NORMAL, endReason);
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
    this.#dead.expire(now);
    if (tokenExpired(stored, now)) return;
    this.#dead.closeSoon(now);
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
    const { closed, live } = this.#dead.lookAtAll(now);
    const position = this.source.position(now);
    if (position) {
      const heartbeat = heartbeatFrame(position, STREAM_TIMING.idleTimeoutMs);
      const encoded: EncodedFrames = new Map();
      for (const { ws, attachment } of live) this.#send(ws, heartbeat, attachment, encoded);
    }
    if (closed.length > 0) await this.#ends.release(closed);
  }

  /** Which of these slots still hold a live stream here (dead-streams.ts). */
  openLeases(leaseIds: readonly string[]): string[] {
    return this.#dead.openLeases(leaseIds);
  }

  // --- Delivery --------------------------------------------------------------

  /**
   * Sends a change to every stream now, or holds progress over the live
   * budget (latest-wins; broadcaster.ts). `receivedAtMs`: when the change
   * reached the edge (delivery latency).
   */
  deliver(frame: ServerFrame, coalescible: boolean, nowMs: number, receivedAtMs: number): void {
    this.#out.deliver(frame, coalescible, nowMs, receivedAtMs);
    this.#dead.closeSoon(nowMs);
  }

  /** A change no stream was sent (a creation) leaves every stream current at `seq`. */
  current(seq: number): void {
    this.#out.current(seq);
  }

  /**
   * Ends every stream, the watched state having ended and its final frame
   * been sent: each client may close first (the SDKs do, on that frame),
   * and what is still open `END_CLOSE_GRACE_MS` later the server closes.
   * A close the client starts is released at once; one the server starts
   * outside the socket's own events holds the connection until the object
   * goes idle, ~10 s locally, and a Node client's process with it
   * (docs/streams.md). The timer keeps the object from hibernating
   * meanwhile, so it fires.
   */
  endAll(code: number, reason: string): void {
    this.#closeLater(this.ctx.getWebSockets(), code, reason);
  }

  #closeLater(sockets: readonly WebSocket[], code: number, reason: string): void {
    setTimeout(() => {
      // A stream closed meanwhile, by either side, is no longer OPEN.
      const open = sockets.filter((ws) => ws.readyState === WebSocket.OPEN);
      void this.#ends.release(open.map((ws) => this.#ends.close(ws, code, reason)));
    }, END_CLOSE_GRACE_MS);
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
