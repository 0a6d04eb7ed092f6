/**
 * How many corrections an ingest client keeps sent and unanswered: as many
 * as the round trip needs, and no more than the service answers without a
 * queue building up. Corrections set absolute values (latest wins), so a
 * correction that waits in the client is folded into its session's newer
 * one; one that waits in the service's queue is not, and only makes every
 * answer later. So the window grows while it is what holds corrections back
 * and answers come in time, and shrinks once a round trip's answers come
 * late on the whole (their mean): a queue is standing in the service.
 * Delay-based, as TCP Vegas judges a queue, against the least round trip
 * seen on the stream. The mean, not the fastest answer: the service
 * answers sessions in parallel, and an idle session's answer is fast
 * while the others queue. No I/O and no clock of its own: the client
 * (ingest.ts) says when it sent and when answers came.
 */

/** The window's least size: a full window still sends a handful a message. */
export const LEAST_WINDOW = 16;
/** The size a stream starts at (or the greatest, if less), grown from there while it holds corrections back. */
export const FIRST_WINDOW = 256;
/** Answers are late once they take a quarter of the least round trip more than it, and at least this (ms). */
export const LEAST_QUEUE_MS = 10;

export class IngestWindow {
  #size: number;
  /** The least round trip since the stream opened (ms): the path and the service with nothing queued. */
  #leastRtt = Number.POSITIVE_INFINITY;
  /** This round trip's answers: their round trips summed (ms) and counted, and when the round ends. */
  #roundSum = 0;
  #roundCount = 0;
  #roundEnds = 0;
  /** Corrections were held back by the window during this round trip. */
  #limited = false;

  /** `most`: the window's greatest size (the client's `window` option). */
  constructor(readonly most: number) {
    this.#size = Math.min(FIRST_WINDOW, most);
  }

  /** Corrections that may be sent and unanswered now. */
  get size(): number {
    return this.#size;
  }

  /** The window held corrections back (some waited while it was full). */
  full(): void {
    this.#limited = true;
  }

  /** A new stream: its path may be another, so its least round trip is learnt again. */
  reopened(): void {
    this.#leastRtt = Number.POSITIVE_INFINITY;
    this.#roundSum = 0;
    this.#roundCount = 0;
    this.#roundEnds = 0;
    this.#limited = false;
  }

  /** A correction sent at `sentAt` was answered at `now` (ms). Once a round trip, the size is judged. */
  answered(sentAt: number, now: number): void {
    const rtt = Math.max(0, now - sentAt);
    this.#leastRtt = Math.min(this.#leastRtt, rtt);
    this.#roundSum += rtt;
    this.#roundCount++;
    if (now < this.#roundEnds) return;
    const mean = this.#roundSum / this.#roundCount;
    const allowed = this.#leastRtt + Math.max(this.#leastRtt / 4, LEAST_QUEUE_MS);
    if (mean > allowed) {
      // Answers waited: a queue stands in the service. To the size whose answers would
      // come in time at the rate they come now, by half at most (a pause is not a rate).
      const fits = Math.floor(this.#size * Math.max(0.5, allowed / mean));
      this.#size = Math.max(Math.min(LEAST_WINDOW, this.most), fits);
    } else if (this.#limited) {
      // Answers come at the path's pace and corrections waited for room: more in flight.
      this.#size = Math.min(this.most, this.#size + Math.max(1, Math.floor(this.#size / 4)));
    }
    this.#roundEnds = now + mean;
    this.#roundSum = 0;
    this.#roundCount = 0;
    this.#limited = false;
  }
}
