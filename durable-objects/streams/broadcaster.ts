/**
 * Delivery of changes to every stream of one object: each codec's sockets
 * get one encoding, progress is paced latest-wins (src/domain/streams/
 * progress-pacing.ts) with at most one frame held, and each update says how
 * many changes it supersedes so clients tell coalescing from gaps.
 */
import { newPacer, type Pacer, pace } from "../../src/domain/streams/progress-pacing";
import type { ServerFrame } from "../../src/gen/crafting/v1/frames_pb";
import { metrics, pushMetricsSoon } from "../../src/metrics/push";
import { CODEC_TAG, encodeFrame } from "../../src/protocol/stream-codec";
import { byteLength, trySend } from "./socket-send";
import type { StreamAttachment } from "./stream-attachment";
import type { SyncSockets } from "./sync-sockets";

/** The delivery state of one object's streams (in memory: a held frame dies with the isolate, its change is in the replay log). */
export class Broadcaster {
  /** Live progress budget and the one frame held back by it. */
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
    private readonly sync: SyncSockets,
    deliveredSeq: number,
    /** Runs before every broadcast: closes the streams that must get nothing more (token expired). */
    private readonly beforeSend: (nowMs: number) => void,
  ) {
    this.#deliveredSeq = deliveredSeq;
  }

  /**
   * Sends a change to every stream now, or (progress over the live budget)
   * holds it as the one pending frame, replacing an older one (latest-wins).
   * A status change replaces any pending progress and goes at once.
   * `receivedAtMs`: when the change reached the edge (delivery latency).
   */
  deliver(frame: ServerFrame, coalescible: boolean, nowMs: number, receivedAtMs: number): void {
    const held = this.#pending;
    const hadPending = held !== null;
    this.#pending = null;
    const paced = pace(this.#pacer, nowMs);
    if (!coalescible || paced.sendNow) {
      // A status change spends a token too, but is never held back. An update
      // carries the clock, so it stands for the held progress; any other frame
      // (a material change) does not, and could not say what it supersedes:
      // the held progress goes first.
      if (held && frame.kind.case !== "update") this.#broadcast(held, this.#pendingSinceMs);
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

  /** A stream was brought up to date (snapshot, replay): a held frame must not reach it twice. */
  joined(): void {
    if (this.#pending) this.#joinedWhileHeld = true;
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
    this.beforeSend(Date.now());
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
      const out = this.sync.sync(ws, now, false);
      sent += out.sent;
      bytes += out.bytes;
    }
    if (sent > 0) {
      metrics.count("crafting_messages_out_total", {}, sent);
      metrics.count("crafting_bytes_out_total", {}, bytes);
      metrics.observe("crafting_delivery_latency_seconds", (Date.now() - receivedAtMs) / 1000);
      pushMetricsSoon(this.env);
    }
  }
}

/** A live copy of an update frame that says how many changes it supersedes. */
function withSuperseded(frame: ServerFrame, superseded: number): ServerFrame {
  if (superseded === 0 || frame.kind.case !== "update") return frame;
  return { ...frame, kind: { case: "update", value: { ...frame.kind.value, superseded } } };
}
