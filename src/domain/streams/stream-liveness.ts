/**
 * Stream rules that depend on the clock, as pure functions: idle streams
 * and streams whose token expired are closed; inbound frames are metered by
 * a token bucket. The Durable Object's alarm applies them, so they hold
 * while the object hibernates.
 */
import { CloseCode } from "../../errors";

/**
 * Timing of every stream, in one place (docs/streams.md, "Idle that costs
 * almost nothing"). A client keeps its stream alive with the text `ping`
 * at least every 30 s, which the runtime answers without waking the
 * object. A stream from which nothing arrived for 30 s is dead (seed 000's
 * idle timeout): it is closed with 4008 at the object's next wake — a
 * change, a frame, its player needing the slot, or the maintenance sweep,
 * at most 5 minutes away — never by a timer of its own, so an idle watched
 * session wakes at most once per 5 minutes.
 */
export const STREAM_TIMING = {
  /** Nothing from the client for this long: the stream is dead (seed 000: 30 s idle timeout). */
  idleTimeoutMs: 30_000,
  /** The maintenance sweep (dead streams closed, a heartbeat to the live ones) while streams are open. */
  sweepIntervalMs: 5 * 60_000,
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

/** Whether a stream may stay open at `nowMs`. */
export function streamVerdict(stream: StreamClock, nowMs: number): StreamVerdict {
  if (stream.tokenExp * 1000 <= nowMs) {
    return {
      action: "close",
      code: CloseCode.TOKEN_EXPIRED,
      reason: "token expired: reconnect with a new token",
    };
  }
  if (nowMs - stream.lastSeenMs >= STREAM_TIMING.idleTimeoutMs) {
    return { action: "close", code: CloseCode.IDLE_TIMEOUT, reason: "idle for 30 s" };
  }
  return { action: "keep" };
}

/**
 * When the next sweep must run for the streams that stay open (the
 * maintenance interval, or sooner when a token expires: a stream ends at
 * its token's expiry); null when none stay open.
 */
export function nextSweepAt(streams: readonly StreamClock[], nowMs: number): number | null {
  if (streams.length === 0) return null;
  let next = nowMs + STREAM_TIMING.sweepIntervalMs;
  for (const stream of streams) next = Math.min(next, stream.tokenExp * 1000);
  // Never busy-loop: at least 100 ms ahead.
  return Math.max(next, nowMs + 100);
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
