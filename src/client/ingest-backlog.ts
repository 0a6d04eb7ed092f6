/**
 * What an ingest client holds: corrections to send and corrections sent and
 * not yet answered, each with the callers waiting on it. Corrections set
 * absolute values (latest wins), so a session never has more than one
 * waiting to be sent: a newer one takes the older one's place, and its
 * callers get the newer one's answer. After a disconnect the unanswered
 * ones go back in front of those waiting, folded the same way, so the
 * newest of each session is sent again and nothing is lost. No I/O: the
 * client (ingest.ts) sends and answers.
 */

/** One progress correction, as the ingest stream takes it (the fields of a `POST /v1/progress` update). */
export interface IngestCorrection {
  session_id: string;
  elapsed_ms?: number;
  progress_percent?: number;
  current_step_index?: number;
  step_progress?: number;
  /** When crafting-service read the progress (ms since the epoch): a correction sent again keeps its meaning. */
  as_of_ms?: number;
}

/** Someone waiting on a correction's answer. */
export interface Waiter<A, E> {
  resolve: (answer: A) => void;
  reject: (error: E) => void;
}

/** A correction held, with everyone its answer settles. */
export interface Held<A, E> {
  ref: number;
  correction: IngestCorrection;
  /** The callers of the corrections folded into it first, its own caller last. */
  waiters: Waiter<A, E>[];
  /** Times it was refused for a while and sent again. */
  tries: number;
  /** When it was last sent (the client's clock, ms): its answer's round trip. */
  sentAt: number;
}

export class IngestBacklog<A, E> {
  #nextRef = 1;
  /** To send, oldest first; at most one per session. */
  #waiting = new Map<string, Held<A, E>>();
  /** Sent, by ref. */
  #sent = new Map<number, Held<A, E>>();
  /** Refused for a while and to be sent again (`rest`, `back`): at most one per session. */
  #resting = new Map<string, Held<A, E>>();

  /** Corrections held, sent or not. */
  get size(): number {
    return this.#waiting.size + this.#sent.size + this.#resting.size;
  }

  /** Corrections waiting to be sent. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Corrections sent and not yet answered. */
  get inFlight(): number {
    return this.#sent.size;
  }

  /** Holds a correction for sending; it replaces one its session has waiting or resting. */
  add(correction: IngestCorrection, waiter: Waiter<A, E>): void {
    const held: Held<A, E> = {
      ref: this.#nextRef++,
      correction,
      waiters: [waiter],
      tries: 0,
      sentAt: 0,
    };
    const resting = this.#resting.get(correction.session_id);
    if (resting) {
      this.#resting.delete(correction.session_id);
      held.waiters.unshift(...resting.waiters);
    }
    this.#wait(held);
  }

  /** Takes up to `count` waiting corrections, oldest first, as sent at `now`. */
  take(count: number, now: number): Held<A, E>[] {
    const taken: Held<A, E>[] = [];
    for (const [sessionId, held] of this.#waiting) {
      if (taken.length >= count) break;
      this.#waiting.delete(sessionId);
      held.sentAt = now;
      this.#sent.set(held.ref, held);
      taken.push(held);
    }
    return taken;
  }

  /** The sent correction `ref` was answered: no longer held (undefined: not one sent on this stream). */
  answered(ref: unknown): Held<A, E> | undefined {
    if (typeof ref !== "number") return undefined;
    const held = this.#sent.get(ref);
    this.#sent.delete(ref);
    return held;
  }

  /**
   * A sent correction refused for a while: held aside until `back`, unless
   * its session has a newer one held, which answers its callers instead
   * (sent again later, it would undo the newer one). False: not rested.
   */
  rest(held: Held<A, E>): boolean {
    const sessionId = held.correction.session_id;
    const newer =
      this.#waiting.get(sessionId) ??
      [...this.#sent.values()].find(
        (h) => h.correction.session_id === sessionId && h.ref > held.ref,
      );
    if (newer) {
      newer.waiters.unshift(...held.waiters);
      return false;
    }
    const older = this.#resting.get(sessionId);
    if (older) held.waiters.unshift(...older.waiters);
    held.tries++;
    this.#resting.set(sessionId, held);
    return true;
  }

  /** A rested correction is due again: it waits to be sent (nothing newer of its session is held). */
  back(held: Held<A, E>): void {
    const sessionId = held.correction.session_id;
    if (this.#resting.get(sessionId) !== held) return;
    this.#resting.delete(sessionId);
    this.#wait(held);
  }

  /**
   * The stream dropped: every correction sent and not answered waits again,
   * in front of those waiting, folded into its session's newer one if any.
   */
  unanswered(): void {
    const waiting = this.#waiting;
    this.#waiting = new Map();
    const sent = [...this.#sent.values()].sort((a, b) => a.ref - b.ref);
    this.#sent.clear();
    for (const held of [...sent, ...waiting.values()]) this.#wait(held);
  }

  /** Everything held, taken out (the client closed for good). */
  drain(): Held<A, E>[] {
    const all = [...this.#sent.values(), ...this.#waiting.values(), ...this.#resting.values()];
    this.#sent.clear();
    this.#waiting.clear();
    this.#resting.clear();
    return all;
  }

  /** `held` waits to be sent, newer than any its session has waiting: it takes that one's place and callers. */
  #wait(held: Held<A, E>): void {
    const sessionId = held.correction.session_id;
    const there = this.#waiting.get(sessionId);
    if (there) held.waiters.unshift(...there.waiters);
    // In the older one's place in the order (a Map keeps a key's first place).
    this.#waiting.set(sessionId, held);
  }
}
