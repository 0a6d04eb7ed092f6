/**
 * Live progress is latest-wins. Workers expose no `bufferedAmount`
 * (workerd#988), so the server cannot see a slow reader; instead it bounds
 * what it sends: at most `perSecond` progress frames per session (bursts of
 * `burst`), whatever the ingest rate. A faster change replaces the one
 * waiting to be sent, so at most one frame per session is ever held.
 * Status changes are never held back.
 */

/** The live progress budget of one session. */
export const PROGRESS_PACING = {
  perSecond: 20,
  burst: 10,
} as const;

/** Token-bucket state. */
export interface Pacer {
  tokens: number;
  updatedAtMs: number;
}

/** A full bucket. */
export function newPacer(nowMs: number): Pacer {
  return { tokens: PROGRESS_PACING.burst, updatedAtMs: nowMs };
}

/** Takes a send slot now, or says how long until one is free. */
export function pace(
  pacer: Pacer,
  nowMs: number,
): { pacer: Pacer; sendNow: true } | { pacer: Pacer; sendNow: false; waitMs: number } {
  const refill = (Math.max(0, nowMs - pacer.updatedAtMs) / 1000) * PROGRESS_PACING.perSecond;
  const tokens = Math.min(PROGRESS_PACING.burst, pacer.tokens + refill);
  if (tokens >= 1) return { pacer: { tokens: tokens - 1, updatedAtMs: nowMs }, sendNow: true };
  const waitMs = Math.ceil(((1 - tokens) / PROGRESS_PACING.perSecond) * 1000);
  return { pacer: { tokens, updatedAtMs: nowMs }, sendNow: false, waitMs };
}
