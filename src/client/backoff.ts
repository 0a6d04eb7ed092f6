/**
 * Reconnect delays: exponential backoff with full jitter (a random delay
 * between 0 and min(cap, base · 2^attempt)), so a thousand clients dropped
 * at once do not come back at once.
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */

export interface BackoffOptions {
  /** First ceiling (ms). */
  baseMs: number;
  /** Largest ceiling (ms). */
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 250, capMs: 30_000 };

/** The ceiling for attempt `n` (0-based): min(cap, base · 2^n). */
export function backoffCeiling(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  return Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 30));
}

/** The delay before attempt `n`: uniformly random in [0, ceiling). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeiling(attempt, options));
}
