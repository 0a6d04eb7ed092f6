/**
 * How many corrections an ingest client keeps sent and unanswered: as many
 * as the round trip needs, and no more than the service answers without a
 * queue building up. Corrections set absolute values (latest wins), so a
 * correction that waits in the client is folded into its session's newer
 * one; one that waits in the service's queue is not, and only makes every
 * answer later. So the window grows while it is what holds corrections back
 * and answers wait little, holds while they wait less than they may, and
 * shrinks once a round trip's answers come late on the whole: a queue is
 * standing in the service. Delay-based, as
 * TCP Vegas judges a queue: an answer is as late as its round trip is
 * longer than the least seen for its session. Per session, because each
 * session is an object of its own, placed near its players: one 150 ms
 * away is not late, only far. On the whole (the mean of a round trip's
 * answers), because the service answers sessions in parallel, and an idle
 * session's answer is fast while others queue. No I/O and no clock of its
 * own: the client (ingest.ts) says when it sent and when answers came.
 */

/** The window's least size: a full window still sends a handful a message. */
export const LEAST_WINDOW = 16;
/** The size a stream starts at (or the greatest, if less), grown from there while it holds corrections back. */
export const FIRST_WINDOW = 256;
/** Answers are late once they take a quarter of their least round trip more than it, and at least this (ms). */
export const LEAST_QUEUE_MS = 10;
/** A session's least round trip is forgotten after it has had no answer for this long (ms). */
export const FORGET_AFTER_MS = 60_000;

export class IngestWindow {
  #size: number;
  /**
   * Each session's least round trip on this stream (ms): the path to its
   * object and the object with nothing queued. Two generations, so a
   * session not answered for a while is forgotten (sessions end).
   */
  #least = new Map<string, number>();
  #older = new Map<string, number>();
  #generationEnds = 0;
  /** This round trip's answers: their least round trips and their waits beyond them, summed (ms) and counted. */
  #roundLeast = 0;
  #roundWait = 0;
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

  /** Sessions whose least round trip it holds. */
  get sessions(): number {
    return this.#least.size + this.#older.size;
  }

  /** The window held corrections back (some waited while it was full). */
  full(): void {
    this.#limited = true;
  }

  /** A new stream: its path may be another, so the least round trips are learnt again. */
  reopened(): void {
    this.#least.clear();
    this.#older.clear();
    this.#roundLeast = 0;
    this.#roundWait = 0;
    this.#roundCount = 0;
    this.#roundEnds = 0;
    this.#limited = false;
  }

  /**
   * A correction of `sessionId` sent at `sentAt` was answered at `now` (ms).
   * Once a round trip, the size is judged.
   */
  answered(sessionId: string, sentAt: number, now: number): void {
    const rtt = Math.max(0, now - sentAt);
    this.#turnGenerations(now);
    const least = Math.min(
      rtt,
      this.#least.get(sessionId) ?? this.#older.get(sessionId) ?? Number.POSITIVE_INFINITY,
    );
    this.#least.set(sessionId, least);
    this.#older.delete(sessionId);
    this.#roundLeast += least;
    this.#roundWait += rtt - least;
    this.#roundCount++;
    if (now < this.#roundEnds) return;
    const meanLeast = this.#roundLeast / this.#roundCount;
    const wait = this.#roundWait / this.#roundCount;
    const allowed = Math.max(meanLeast / 4, LEAST_QUEUE_MS);
    if (wait > allowed) {
      // Answers waited: a queue stands in the service. To the size whose answers would
      // come in time at the rate they come now, by half at most (a pause is not a rate).
      const fits = Math.floor(
        this.#size * Math.max(0.5, (meanLeast + allowed) / (meanLeast + wait)),
      );
      this.#size = Math.max(Math.min(LEAST_WINDOW, this.most), fits);
    } else if (this.#limited && wait <= allowed / 2) {
      // Answers wait less than half what they may and corrections waited for room: more in
      // flight. Between the two, held (as TCP Vegas holds between its two thresholds).
      this.#size = Math.min(this.most, this.#size + Math.max(1, Math.floor(this.#size / 4)));
    }
    this.#roundEnds = now + meanLeast + wait;
    this.#roundLeast = 0;
    this.#roundWait = 0;
    this.#roundCount = 0;
    this.#limited = false;
  }

  /** Every `FORGET_AFTER_MS` the least round trips start a new generation; a session answered again is kept. */
  #turnGenerations(now: number): void {
    if (now < this.#generationEnds) return;
    // A whole generation without an answer: every session is forgotten.
    this.#older = now >= this.#generationEnds + FORGET_AFTER_MS ? new Map() : this.#least;
    this.#least = new Map();
    this.#generationEnds = now + FORGET_AFTER_MS;
  }
}
