/**
 * Finding the dead streams of one object: the stream rules (idle for 30 s,
 * past the token; pure in stream-liveness.ts) applied to every open socket
 * at a wake, never by a timer. Keeps in memory when it last looked and when
 * the first live token expires, so that most wakes look at nothing.
 */

import {
  earliestExpiry,
  STREAM_TIMING,
  type StreamClock,
  streamVerdict,
} from "../../src/domain/streams/stream-liveness";
import type { DescriptorShare } from "../../src/health/descriptor-budget";
import type { StreamAttachment } from "./stream-attachment";
import type { StreamEnds } from "./stream-ends";

/** What a look at the open streams found: those it closed (their slots to release), and the live ones. */
export interface StreamLook {
  closed: StreamAttachment[];
  live: { ws: WebSocket; attachment: StreamAttachment; clock: StreamClock }[];
  /** Every socket the runtime holds for this object, closing ones included. */
  sockets: number;
}

/** The dead-stream rules of one object's streams, applied at its wakes. */
export class DeadStreams {
  /** When dead streams were last looked for (in memory: a wake looks again). */
  #checkedAtMs = 0;
  /**
   * When the first open stream's token expires (ms since the epoch; in
   * memory): null until this isolate has looked at every stream.
   */
  #expiresAtMs: number | null = null;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly ends: StreamEnds,
    private readonly descriptors: DescriptorShare,
  ) {}

  /** A stream opened whose token expires at `tokenExpMs`. */
  opened(tokenExpMs: number): void {
    this.#expiresAtMs = Math.min(this.#expiresAtMs ?? Number.POSITIVE_INFINITY, tokenExpMs);
  }

  /**
   * Nothing reaches a stream past its token: before anything is sent (a
   * change, an answer to a frame, a first frame), the streams whose token
   * expired are closed with 4001, and the dead ones with 4008 on the same
   * look. Looks at every stream only when a token may have expired, or once
   * after a wake.
   */
  expire(nowMs: number): void {
    if (this.#expiresAtMs !== null && nowMs < this.#expiresAtMs) return;
    this.#closeNow(nowMs);
  }

  /**
   * Closes, at a wake, the streams that died meanwhile (nothing from their
   * client for 30 s, or past their token). Looks at most once per idle
   * timeout while awake, after this turn: frames sent in it leave when it
   * ends, and looking at every stream (a thousand attachments) must not
   * hold them back.
   */
  closeSoon(nowMs: number): void {
    if (nowMs - this.#checkedAtMs < STREAM_TIMING.idleTimeoutMs) return;
    this.#checkedAtMs = nowMs;
    setTimeout(() => this.#closeNow(Date.now()), 0);
  }

  /**
   * Applies the stream rules to every open stream at `nowMs`, and
   * remembers that it looked and when the first live stream's token expires.
   */
  lookAtAll(nowMs: number): StreamLook {
    const look = this.#close(nowMs);
    this.descriptors.socketsCounted(look.sockets);
    this.#checkedAtMs = nowMs;
    this.#expiresAtMs = earliestExpiry(look.live.map((stream) => stream.clock));
    return look;
  }

  /**
   * Which of these slots still hold a live stream here (a player's object
   * asks when it needs a slot): a stream idle for 30 s or past its token is
   * closed now and not counted, and its player frees the slot.
   */
  openLeases(leaseIds: readonly string[]): string[] {
    const { live } = this.#close(Date.now(), new Set(leaseIds));
    return live.map((stream) => stream.attachment.leaseId);
  }

  /** Closes the dead streams now; their slots go back in the background (one that does not is reclaimed when needed). */
  #closeNow(nowMs: number): void {
    const { closed } = this.lookAtAll(nowMs);
    if (closed.length > 0) void this.ends.release(closed);
  }

  /**
   * Applies the stream rules to the open streams (or to those holding one
   * of `leaseIds`) at `nowMs`: closes the dead ones (returned, for their
   * slots to be released) and returns the live ones.
   */
  #close(nowMs: number, leaseIds?: ReadonlySet<string>): StreamLook {
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
        closed.push(this.ends.close(ws, verdict.code, verdict.reason));
      else live.push({ ws, attachment, clock });
    }
    return { closed, live, sockets: sockets.length };
  }

  /** A stream's last sign of life (a frame, or a keepalive the runtime answered) and its token's expiry. */
  #clockOf(ws: WebSocket, attachment: StreamAttachment): StreamClock {
    const pinged = this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0;
    return { lastSeenMs: Math.max(attachment.lastSeenMs, pinged), tokenExp: attachment.tokenExp };
  }
}
