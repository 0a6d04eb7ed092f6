/**
 * Work per key in arrival order: one run at a time per key, keys
 * concurrently, and what arrives for a key while its run is under way goes
 * into its next run, all together. The ingest stream's updates to one
 * session are applied in the order they were sent; updates to other
 * sessions do not wait for them; a session that gets updates faster than
 * it applies them takes each backlog as one change (progress is latest
 * wins); and a caller that sends faster than the sessions apply is refused
 * at `limit` rather than buffered without bound.
 */

/** Items batched per key for `run`, which must answer its own failures. */
export class PerKeyBatches<T> {
  readonly #waiting = new Map<string, T[]>();
  readonly #running = new Map<string, Promise<void>>();
  #pending = 0;

  constructor(
    readonly limit: number,
    private readonly run: (key: string, items: T[]) => Promise<void>,
  ) {}

  /** Items waiting or in a run. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Runs `item` at once when `key` has no run under way, or in the key's
   * next run; false (and `item` is dropped) when `limit` items are pending.
   */
  push(key: string, item: T): boolean {
    return this.pushAll([[key, item]]).length === 0;
  }

  /**
   * Pushes several items at once, in order: a key with no run under way
   * starts one run with all of its items. Returns the items refused at
   * `limit` (the last ones).
   */
  pushAll(entries: readonly (readonly [string, T])[]): T[] {
    const refused: T[] = [];
    const starting = new Map<string, T[]>();
    for (const [key, item] of entries) {
      if (this.#pending >= this.limit) {
        refused.push(item);
        continue;
      }
      this.#pending++;
      const waiting = this.#waiting.get(key) ?? starting.get(key);
      if (waiting) waiting.push(item);
      else if (this.#running.has(key)) this.#waiting.set(key, [item]);
      else starting.set(key, [item]);
    }
    for (const [key, items] of starting) this.#start(key, items);
    return refused;
  }

  /** Resolves once every item pushed so far has been run. */
  async drained(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running.values());
  }

  #start(key: string, items: T[]): void {
    const run = async (): Promise<void> => {
      try {
        await this.run(key, items);
      } catch {
        // `run` answers its own failures; one that threw must not stop its key.
      } finally {
        this.#pending -= items.length;
      }
      const next = this.#waiting.get(key);
      this.#waiting.delete(key);
      if (next) this.#start(key, next);
      else this.#running.delete(key);
    };
    this.#running.set(key, run());
  }
}
