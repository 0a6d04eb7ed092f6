/**
 * Stream rules that depend on the clock, as pure functions: idle streams
 * and streams whose token expired are closed; inbound frames are metered by
 * a token bucket. The Durable Object applies them at its wakes, with no
 * timer of their own, so a hibernating object costs nothing.
 */
import { CloseCode, TOKEN_EXPIRED_REASON } from "../../errors";

/**
 * Timing of every stream, in one place (docs/streams.md, "Heartbeat and
 * idle: an idle stream costs nothing"). A client keeps its stream alive
 * with the text `ping` at least every 30 s, which the runtime answers
 * without waking the object. A stream from which nothing arrived for 30 s
 * is dead (seed 000's idle timeout): it is closed with 4008 at the
 * object's next wake — a change, a frame, or its player needing the slot —
 * never by a timer of its own, so an idle watched session does not wake at
 * all. A stream past its token is sent nothing more, and is closed with
 * 4001 at the same wakes.
 */
export const STREAM_TIMING = {
  /** Nothing from the client for this long: the stream is dead (seed 000: 30 s idle timeout). */
  idleTimeoutMs: 30_000,
} as const;

/** Inbound frame budget of one stream. */
export const FRAME_BUDGET = {
  /** Sustained frames per second. */
  perSecond: 10,
  /** Burst. */
  burst: 20,
  /** Refused frames within `strikeWindowMs` after which the stream is closed with 1008. */
  maxStrikes: 20,
  strikeWindowMs: 10_000,
} as const;

/** What the sweep needs to know of one stream. */
export interface StreamClock {
  /** Last time anything arrived from the client (frames or keepalive pings). */
  lastSeenMs: number;
  /** Token expiry, seconds since the epoch. */
  tokenExp: number;
}

/** The sweep's decision for one stream. */
export type StreamVerdict = { action: "keep" } | { action: "close"; code: number; reason: string };

/** Whether a stream's token has expired at `nowMs` (it must be sent nothing more). */
export function tokenExpired(stream: Pick<StreamClock, "tokenExp">, nowMs: number): boolean {
  return stream.tokenExp * 1000 <= nowMs;
}

/** Whether a stream may stay open at `nowMs`. */
export function streamVerdict(stream: StreamClock, nowMs: number): StreamVerdict {
  if (tokenExpired(stream, nowMs)) {
    return {
      action: "close",
      code: CloseCode.TOKEN_EXPIRED,
      reason: TOKEN_EXPIRED_REASON,
    };
  }
  if (nowMs - stream.lastSeenMs >= STREAM_TIMING.idleTimeoutMs) {
    return { action: "close", code: CloseCode.IDLE_TIMEOUT, reason: "idle for 30 s" };
  }
  return { action: "keep" };
}

/**
 * When the first of these streams' tokens expires (ms since the epoch), or
 * Infinity when there are none: until then, nothing needs closing for expiry.
 */
export function earliestExpiry(streams: readonly StreamClock[]): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const stream of streams) earliest = Math.min(earliest, stream.tokenExp * 1000);
  return earliest;
}

/** Token bucket state, small enough for a WebSocket attachment. */
export interface FrameBucket {
  tokens: number;
  updatedAtMs: number;
  strikes: number;
  strikeWindowStartMs: number;
}

/** A full bucket. */
export function newBucket(nowMs: number): FrameBucket {
  return { tokens: FRAME_BUDGET.burst, updatedAtMs: nowMs, strikes: 0, strikeWindowStartMs: nowMs };
}

/** What to do with one inbound frame. */
export type FrameDecision = "accept" | "throttle" | "close";

/** Meters one inbound frame: accept it, refuse it with an error, or close a client that keeps going. */
export function meterFrame(
  bucket: FrameBucket,
  nowMs: number,
): { bucket: FrameBucket; decision: FrameDecision } {
  const refill = (Math.max(0, nowMs - bucket.updatedAtMs) / 1000) * FRAME_BUDGET.perSecond;
  const tokens = Math.min(FRAME_BUDGET.burst, bucket.tokens + refill);
  if (tokens >= 1) {
    return { bucket: { ...bucket, tokens: tokens - 1, updatedAtMs: nowMs }, decision: "accept" };
  }
  const windowExpired = nowMs - bucket.strikeWindowStartMs >= FRAME_BUDGET.strikeWindowMs;
  const strikes = (windowExpired ? 0 : bucket.strikes) + 1;
  const next: FrameBucket = {
    tokens,
    updatedAtMs: nowMs,
    strikes,
    strikeWindowStartMs: windowExpired ? nowMs : bucket.strikeWindowStartMs,
  };
  return { bucket: next, decision: strikes > FRAME_BUDGET.maxStrikes ? "close" : "throttle" };
}
