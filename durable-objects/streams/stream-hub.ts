/**
 * The live streams of one Durable Object, whatever they watch: accepting a
 * socket the Worker authenticated, the first frame (snapshot or resume),
 * inbound frames (size limit, frame budget, ping, resume), closes, the
 * alarm sweep (idle, token expiry, heartbeat, slot renewal), and
 * latest-wins delivery of updates. The object supplies what is watched
 * through a `StreamSource`; one implementation of each rule, for every kind.
 */

import { fromBinary } from "@bufbuild/protobuf";
import { newPacer, type Pacer, pace } from "../../src/domain/streams/progress-pacing";
import type { StreamKind } from "../../src/domain/streams/stream-leases";
import {
  FRAME_BUDGET,
  meterFrame,
  newBucket,
  nextSweepAt,
  STREAM_TIMING,
  type StreamClock,
  streamVerdict,
} from "../../src/domain/streams/stream-liveness";
import { type HeldLease, releaseStreamLeases, renewStreamLeases } from "../../src/durable";
import { CloseCode } from "../../src/errors";
import type { ServerFrame } from "../../src/gen/crafting/v1/frames_pb";
import { SyncRequestSchema } from "../../src/gen/crafting/v1/sync_pb";
import { log } from "../../src/log";
import { metrics, pushMetricsSoon } from "../../src/metrics/push";
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
import {
  controlPackets,
  openChannel,
  type SyncChannelState,
  type SyncOptions,
} from "../../src/protocol/sync/sync-encoder";
import type { StreamAttachment } from "./stream-attachment";

/** One frame encoded once per codec, for sending to many sockets. */
type EncodedFrames = Map<StreamCodec, string | Uint8Array>;

/** What a hub's streams watch, as the owning object provides it. */
export interface StreamSource {
  /** Where the watched state stands now; null while there is nothing to watch. */
  position(nowMs: number): FramePosition | null;
  /** The whole watched state; `recovered: false` answers a resume that could not be honoured. */
  snapshot(nowMs: number, recovered?: boolean): ServerFrame;
  /** The frames after `seq`, in order, as far as the replay log reaches. */
  replayAfter(seq: number): ServerFrame[];
  /** Ids for the audit lines (session_id, player_id …). */
  auditFields(): Record<string, string | undefined>;
  /**
   * The sync channel's packets for the current state (sessions only): a
   * full sync when `forceFull` or due, else a delta; null while there is nothing.
   */
  syncPackets?(
    channel: SyncChannelState,
    nowMs: number,
    forceFull: boolean,
  ): { packets: Uint8Array[]; channel: SyncChannelState } | null;
}

/** The live streams of one object. */
export class StreamHub {
  /** Live progress budget and the one frame held back by it (progress-pacing.ts). */
  #pacer: Pacer = newPacer(Date.now());
  #pending: ServerFrame | null = null;
  /** When the oldest change the held frame stands for reached the edge. */
  #pendingSinceMs = 0;
  /** The seq every live stream has been sent (or synced past). */
  #deliveredSeq: number;
  /** A stream was synced (snapshot, replay) while a frame was held. */
  #joinedWhileHeld = false;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly kind: StreamKind,
    private readonly source: StreamSource,
  ) {
    this.#deliveredSeq = source.position(Date.now())?.seq ?? 0;
    // Keepalives are answered by the runtime without waking the object.
    // https://developers.cloudflare.com/durable-objects/best-practices/websockets/
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  // ─── Connect and frames ────────────────────────────────────────────────────

  /**
   * Accepts a socket for `playerId` (the Worker verified the token and took
   * a stream slot, both in `headers`), sends its first frame, and — when
   * `endReason` is given, nothing more will happen — closes it normally.
   */
  async accept(headers: Headers, playerId: string, endReason: string | null): Promise<Response> {
    const now = Date.now();
    const position = this.source.position(now);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    const protocol = headers.get(STREAM_HEADERS.protocol);
    const codec = codecOf(protocol);
    this.ctx.acceptWebSocket(server, [playerId, CODEC_TAG[codec]]);
    const attachment: StreamAttachment = {
      playerId,
      leaseId: headers.get(STREAM_HEADERS.leaseId) ?? "",
      tokenExp: Number(headers.get(STREAM_HEADERS.tokenExp)),
      connectedAtMs: now,
      lastSeenMs: now,
      origin: headers.get(STREAM_HEADERS.origin),
      syncedSeq: position?.seq ?? 0,
      bucket: newBucket(now),
      codec,
    };
    if (codec === "sync") {
      const options = JSON.parse(headers.get(STREAM_HEADERS.sync) ?? "null") as SyncOptions | null;
      if (!options || !this.source.syncPackets)
        throw new Error("a sync stream needs its options and a session");
      attachment.sync = openChannel(options, now);
    }
    server.serializeAttachment(attachment);
    if (this.#pending) this.#joinedWhileHeld = true;
    const resume = parseResume(headers.get(STREAM_HEADERS.resume));
    if (codec === "sync") this.#sync(server, now, true, attachment);
    else if (resume) this.#resume(server, resume.epoch, resume.seq, now, attachment);
    else server.send(encodeFrame(codec, this.source.snapshot(now)));
    this.#audit("stream.connect", attachment, { resume_seq: resume?.seq });
    metrics.count("crafting_streams_opened_total", { kind: this.kind });

    if (endReason !== null) {
      await this.#release([this.#closeByServer(server, CloseCode.NORMAL, endReason)]);
    } else {
      await this.#ensureSweep(attachment, now);
    }
    const responseHeaders = new Headers();
    if (protocol) responseHeaders.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers: responseHeaders });
  }

  /** An inbound frame: size limit, frame budget, then ping or resume. */
  async message(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const size =
      typeof message === "string"
        ? new TextEncoder().encode(message).byteLength
        : message.byteLength;
    metrics.count("crafting_messages_in_total");
    metrics.count("crafting_bytes_in_total", {}, size);
    if (size > MAX_CLIENT_FRAME_BYTES) {
      if ((ws.deserializeAttachment() as StreamAttachment).closedCode !== undefined) return;
      const reason = `frames are limited to ${MAX_CLIENT_FRAME_BYTES} bytes`;
      await this.#release([
        this.#closeByServer(ws, CloseCode.MESSAGE_TOO_BIG, reason, { bytes: size }),
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
    if (metered.decision !== "accept") {
      await this.#throttle(ws, stored, metered.decision, position);
      return;
    }
    const codec = stored.codec ?? "json";
    if (codec === "sync") {
      this.#syncRequest(ws, stored, message, position, now);
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
        if (this.#pending) this.#joinedWhileHeld = true;
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
    const attachment = ws.deserializeAttachment() as StreamAttachment;
    // A stream the server closed was counted and released then.
    if (attachment.closedCode !== undefined) return;
    this.#audit("stream.close", attachment, { close_code: code, by: "client" });
    metrics.count("crafting_streams_closed_total", { kind: this.kind, code: String(code) });
    await this.#release([attachment]);
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

  // ─── The sweep ─────────────────────────────────────────────────────────────

  /**
   * Closes streams that were idle for 30 s or whose token expired (also
   * sockets whose close event never fired, workerd#1187), sends the others
   * a heartbeat and renews their slots, and schedules the next sweep while
   * any remain. Run it from the object's alarm.
   */
  async sweep(): Promise<void> {
    const now = Date.now();
    const kept: StreamAttachment[] = [];
    const closed: StreamAttachment[] = [];
    const clocks: StreamClock[] = [];
    const position = this.source.position(now);
    const heartbeat = position ? heartbeatFrame(position, STREAM_TIMING.idleTimeoutMs) : null;
    const encodedHeartbeat: EncodedFrames = new Map();
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = ws.deserializeAttachment() as StreamAttachment | null;
      if (!attachment || attachment.closedCode !== undefined) continue;
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
        if (heartbeat) this.#send(ws, heartbeat, attachment, encodedHeartbeat);
      }
    }
    await Promise.all([this.#release(closed), renewStreamLeases(this.env, kept)]);
    const next = nextSweepAt(clocks, now);
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  async #ensureSweep(stream: StreamClock, now: number): Promise<void> {
    const due = nextSweepAt([stream], now) ?? now + STREAM_TIMING.sweepIntervalMs;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > due) await this.ctx.storage.setAlarm(due);
  }

  // ─── Delivery ──────────────────────────────────────────────────────────────

  /**
   * Sends a change to every stream now, or — progress over the live budget —
   * holds it as the one pending frame, replacing an older one (latest-wins).
   * A status change replaces any pending progress and goes at once.
   * `receivedAtMs`: when the change reached the edge (delivery latency).
   */
  deliver(frame: ServerFrame, coalescible: boolean, nowMs: number, receivedAtMs: number): void {
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
    if (!hadPending) setTimeout(() => this.#flush(), paced.waitMs);
  }

  /** A change no stream was sent (a creation) leaves every stream current at `seq`. */
  current(seq: number): void {
    if (!this.#pending) this.#deliveredSeq = seq;
  }

  /** Closes every stream (the watched state ended). */
  async closeAll(code: number, reason: string): Promise<void> {
    await this.#release(
      this.ctx.getWebSockets().map((ws) => this.#closeByServer(ws, code, reason)),
    );
  }

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
    let sent = 0;
    let bytes = 0;
    // Sockets are tagged with their codec: each group gets its encoding, and no
    // attachment is read per socket (at a thousand sockets that would cost).
    for (const codec of ["json", "binary"] as const) {
      const encoded = new Map<number, { data: string | Uint8Array; size: number }>();
      for (const ws of this.ctx.getWebSockets(CODEC_TAG[codec])) {
        let seen = deliveredSeq;
        if (checkEach) {
          const synced = (ws.deserializeAttachment() as StreamAttachment | null)?.syncedSeq ?? 0;
          if (synced >= frame.seq) continue;
          seen = Math.max(seen, synced);
        }
        const superseded = frame.seq - 1 - seen;
        let out = encoded.get(superseded);
        if (out === undefined) {
          const data = encodeFrame(codec, withSuperseded(frame, superseded));
          out = { data, size: byteLength(data) };
          encoded.set(superseded, out);
        }
        if (trySend(ws, out.data)) {
          sent++;
          bytes += out.size;
        }
      }
    }
    // The sync channel sends the state itself (delta or full), not the frame.
    const now = Date.now();
    for (const ws of this.ctx.getWebSockets(CODEC_TAG.sync)) {
      const out = this.#sync(ws, now, false);
      sent += out.sent;
      bytes += out.bytes;
    }
    if (sent > 0) {
      metrics.count("crafting_messages_out_total", {}, sent);
      metrics.count("crafting_bytes_out_total", {}, bytes);
      metrics.observe("crafting_delivery_latency_seconds", (Date.now() - receivedAtMs) / 1000);
      pushMetricsSoon(this.env, this.ctx);
    }
  }

  // ─── Internals ─────────────────────────────────────────────────────────────

  /**
   * Replays what a client missed after (epoch, seq), in order, then says so;
   * or sends a snapshot marked not recovered when the log cannot bridge the
   * gap (another epoch, a seq from the future, or older than the log keeps).
   */
  #resume(
    ws: WebSocket,
    epoch: number,
    seq: number,
    now: number,
    attachment: StreamAttachment,
  ): void {
    const position = this.source.position(now);
    if (!position) return;
    if (epoch === position.epoch && seq <= position.seq) {
      const missed = position.seq - seq;
      const frames = missed === 0 ? [] : this.source.replayAfter(seq);
      if (frames.length === missed) {
        for (const frame of frames) this.#send(ws, frame, attachment);
        this.#send(ws, resumedFrame(position, seq, missed), attachment);
        return;
      }
    }
    this.#send(ws, this.source.snapshot(now, false), attachment);
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
    const now = Date.now();
    if (frame.kind.case === "heartbeat") {
      this.#sync(ws, now, false, attachment);
      return;
    }
    if (attachment.sync)
      for (const packet of controlPackets(attachment.sync, frame, now)) trySend(ws, packet);
  }

  /** Sends the sync channel's packets for the current state; keeps the channel's new base. */
  #sync(
    ws: WebSocket,
    now: number,
    forceFull: boolean,
    known?: StreamAttachment | null,
  ): { sent: number; bytes: number } {
    const attachment = known ?? (ws.deserializeAttachment() as StreamAttachment);
    if (!attachment.sync || !this.source.syncPackets) return { sent: 0, bytes: 0 };
    const out = this.source.syncPackets(attachment.sync, now, forceFull);
    if (!out) return { sent: 0, bytes: 0 };
    let sent = 0;
    let bytes = 0;
    for (const packet of out.packets) {
      if (trySend(ws, packet)) {
        sent++;
        bytes += packet.length;
      }
    }
    if (out.channel !== attachment.sync) {
      try {
        ws.serializeAttachment({ ...attachment, sync: out.channel });
      } catch {
        // Closed meanwhile.
      }
    }
    return { sent, bytes };
  }

  /** A sync client's request: a full sync when it asks or holds another base; garbage gets an error. */
  #syncRequest(
    ws: WebSocket,
    attachment: StreamAttachment,
    message: string | ArrayBuffer,
    position: FramePosition,
    now: number,
  ): void {
    const refuse = (text: string) =>
      this.#send(ws, errorFrame(position, { code: "invalid_argument", message: text }), attachment);
    if (typeof message === "string") {
      refuse("this stream speaks crafting.sync.v1: send binary SyncRequest frames");
      return;
    }
    let request: ReturnType<typeof fromBinary<typeof SyncRequestSchema>>;
    try {
      request = fromBinary(SyncRequestSchema, new Uint8Array(message));
    } catch (e) {
      refuse(`malformed SyncRequest: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const held = attachment.sync?.baseSeq ?? 0;
    this.#sync(ws, now, request.full || request.baseSeq !== held, attachment);
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
      this.#send(ws, errorFrame(position, { code: "resource_exhausted", message }), attachment);
      return;
    }
    await this.#release([this.#closeByServer(ws, CloseCode.POLICY_VIOLATION, "too many frames")]);
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
    metrics.count("crafting_streams_closed_total", { kind: this.kind, code: String(code) });
    return attachment;
  }

  /** Gives back stream slots, and pushes the counts soon. */
  async #release(streams: readonly HeldLease[]): Promise<void> {
    pushMetricsSoon(this.env, this.ctx);
    await releaseStreamLeases(this.env, streams);
  }

  /** One audit line per connect, close and throttle: ids, origin, code; never a token. */
  #audit(
    event: string,
    stream: StreamAttachment,
    fields: Record<string, string | number | undefined> = {},
  ): void {
    log(event.endsWith("connect") ? "info" : "warn", event, {
      ...this.source.auditFields(),
      player_id: stream.playerId,
      origin: stream.origin,
      ...fields,
    });
  }
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
function trySend(ws: WebSocket, data: string | Uint8Array): boolean {
  try {
    ws.send(data);
    return true;
  } catch {
    // Closed between listing and sending.
    return false;
  }
}

/** Bytes of a text (UTF-8) or binary frame. */
function byteLength(data: string | Uint8Array): number {
  return typeof data === "string" ? new TextEncoder().encode(data).byteLength : data.byteLength;
}
