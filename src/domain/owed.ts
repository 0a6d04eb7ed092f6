/**
 * Work one object owes another and could not do when it was due, because
 * the other was unreachable or overloaded: a status change a session's
 * player's queue or workflow has not heard, a workflow step whose session
 * was not started. The object tries again by its own alarm, at these
 * delays, so nothing waits on a caller that never retries; a caller's retry
 * still repairs it at once.
 */

/** The wait before each try again: quick at first, then once a minute. */
export const OWED_RETRY_DELAYS_MS: readonly number[] = [
  1_000, 2_000, 5_000, 10_000, 30_000, 60_000,
];

/** Tries before the object gives up (and says so): about an hour of them. */
export const OWED_RETRY_LIMIT = 60;

/** The wait before try `attempt` again (0: the first after the failure), or null: give up. */
export function owedRetryDelayMs(attempt: number): number | null {
  if (!Number.isInteger(attempt) || attempt < 0 || attempt >= OWED_RETRY_LIMIT) return null;
  const delays = OWED_RETRY_DELAYS_MS;
  return delays[Math.min(attempt, delays.length - 1)] ?? null;
}
