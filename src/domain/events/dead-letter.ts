/**
 * A dead letter: an event the consumer could not apply, kept with its
 * reason for operators (durable-objects/dead-letters), and how long.
 */

/** A dead letter as stored and listed. */
export interface DeadLetter {
  /** Why it could not be applied. */
  reason: string;
  /** The queue it came from. */
  queue: string;
  /** Delivery attempts before it was given up. */
  attempts: number;
  /** The message body as it was queued. */
  body: unknown;
  /** When it was dead-lettered (ms). */
  atMs: number;
}

/** What the dead-letter log keeps. */
export const DEAD_LETTER_RETENTION = {
  maxAgeMs: 14 * 24 * 60 * 60 * 1000,
  maxCount: 10_000,
} as const;
