/**
 * Work run in arrival order per key and concurrently across keys, with a
 * cap on what may wait at once: the ingest stream's updates to one session
 * are applied in the order they were sent, while updates to other sessions
 * do not wait for them, and a caller that sends faster than the sessions
 * apply is refused rather than buffered without bound.
 */

/** Tasks queued per key; a task must not reject (it answers its own failures). */
export class PerKeyQueue {
  readonly #tails = new Map<string, Promise<void>>();
  #pending = 0;

  constructor(readonly limit: number) {}

  /** Tasks queued or running. */
  get pending(): number {
    return this.#pending;
  }

  /** Keys with queued or running tasks. */
  get keys(): number {
    return this.#tails.size;
  }

  /**
   * Runs `task` after every task queued before it for `key`; false (and
   * `task` is not run) when `limit` tasks are already pending.
   */
  push(key: string, task: () => Promise<void>): boolean {
    if (this.#pending >= this.limit) return false;
    this.#pending++;
    const run = async (): Promise<void> => {
      try {
        await task();
      } catch {
        // A task answers its own failures; one that threw must not stop its key's queue.
      } finally {
        this.#pending--;
      }
    };
    const before = this.#tails.get(key);
    const tail = before ? before.then(run) : run();
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return true;
  }

  /** Resolves once every task queued so far has run. */
  async drained(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }
}
