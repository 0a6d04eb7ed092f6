/**
 * Owed work an object tries again by its own alarm (src/domain/owed.ts):
 * the tries so far are one KV row, written only when a try fails, so an
 * object that never fails to tell anyone stores nothing for it. Its alarm
 * asks `pending()`, does the work, and reports `failed()` or `done()`.
 */
import { owedRetryDelayMs } from "../src/domain/owed";
import { log } from "../src/log";

const TRIES_KEY = "owed_tries";

export class OwedRetry {
  /**
   * `what`: the work, as the log says it (`session.notify`, `workflow.step_start`);
   * `fields`: who it is for, in those logs.
   */
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly what: string,
    private readonly fields: () => Record<string, unknown>,
  ) {}

  /** Whether work is owed (a try failed and none has succeeded since). */
  pending(): boolean {
    return this.storage.kv.get<number>(TRIES_KEY) !== undefined;
  }

  /** A try failed: the alarm tries again after the next delay, or the object gives up, said. */
  async failed(): Promise<void> {
    const tries = this.storage.kv.get<number>(TRIES_KEY) ?? 0;
    const delayMs = owedRetryDelayMs(tries);
    if (delayMs === null) {
      this.storage.kv.delete(TRIES_KEY);
      log("error", `${this.what}_abandoned`, { ...this.fields(), tries });
      return;
    }
    this.storage.kv.put(TRIES_KEY, tries + 1);
    await this.storage.setAlarm(Date.now() + delayMs);
    log("warn", `${this.what}_retry_scheduled`, { ...this.fields(), tries, delay_ms: delayMs });
  }

  /** The owed work is done (or no longer owed): forgets the tries. */
  done(): void {
    if (this.pending()) this.storage.kv.delete(TRIES_KEY);
  }
}
