/**
 * A trailing throttle for notifications that only carry the latest state
 * (the player's queue estimates, a workflow's overall progress): the first
 * goes at once, later ones at most once per interval, and only the newest
 * of those held back is sent. The receiving objects ignore anything older
 * than what they hold (by seq), so dropping the held ones loses nothing.
 */
export class LatestEvery {
  #lastAtMs = Number.NEGATIVE_INFINITY;
  #held: (() => void) | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly intervalMs: number) {}

  /** Sends now, or holds `send` as the newest to go when the interval allows. */
  run(send: () => void, nowMs = Date.now()): void {
    if (this.#timer === null && nowMs - this.#lastAtMs >= this.intervalMs) {
      this.#lastAtMs = nowMs;
      send();
      return;
    }
    this.#held = send;
    this.#timer ??= setTimeout(() => this.#flush(), this.#lastAtMs + this.intervalMs - nowMs);
  }

  /** Something newer went another way (a status change, sent at once): drop what is held. */
  supersede(nowMs = Date.now()): void {
    this.#held = null;
    this.#lastAtMs = nowMs;
  }

  /** What is held is no longer needed (the receiver's copy is close enough): drop it, keep the pace. */
  drop(): void {
    this.#held = null;
  }

  #flush(): void {
    this.#timer = null;
    const send = this.#held;
    this.#held = null;
    if (!send) return;
    this.#lastAtMs = Date.now();
    send();
  }
}
