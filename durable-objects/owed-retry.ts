/**
 * Owed work an object tries again by its own alarm (src/domain/owed.ts):
 * the tries so far are one KV row, written only when a try fails, so an
 * object that never fails to tell anyone stores nothing for it. Its alarm
 * asks `pending()`, does the work, and reports `failed()` or `done()`;
 * each outcome is logged and counted (`crafting_owed_work_total`).
 */
import { owedRetryDelayMs } from "../src/domain/owed";
import { type LogFields, log } from "../src/log";
import { metrics, pushMetricsSoon } from "../src/metrics/push";

/** Where an object keeps how many times its owed work was retried (absent: it owes nothing). */
export const TRIES_KEY = "owed_tries";

/** The work, as its logs and `crafting_owed_work_total` say it. */
export interface OwedWork {
  object: "session" | "workflow";
  work: "notify" | "step_start";
}

export class OwedRetry {
  /** `fields`: who the work is for, in its logs. */
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly env: Env,
    private readonly owed: OwedWork,
    private readonly fields: () => LogFields,
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
      this.#abandon({ tries });
      return;
    }
    try {
      await this.storage.setAlarm(Date.now() + delayMs);
    } catch (e: unknown) {
      // Never in the way of the answer the caller is owed (a 503 to retry):
      // its retry, or a redelivery, is then the repair.
      const message = `the retry could not be stored: ${e instanceof Error ? e.message : String(e)}`;
      this.#abandon({ tries, message });
      return;
    }
    this.storage.kv.put(TRIES_KEY, tries + 1);
    this.#said("warn", "retry_scheduled", { tries, delay_ms: delayMs });
  }

  /** The owed work is done (or no longer owed): forgets the tries. */
  done(): void {
    if (!this.pending()) return;
    this.storage.kv.delete(TRIES_KEY);
    this.#said("info", "done", {});
  }

  /** Given up: the tries are forgotten (no alarm will ask for them), said. */
  #abandon(fields: LogFields): void {
    this.storage.kv.delete(TRIES_KEY);
    this.#said("error", "abandoned", fields);
  }

  /** Logs `{object}.{work}_{outcome}` and counts it. */
  #said(
    level: "info" | "warn" | "error",
    outcome: "retry_scheduled" | "done" | "abandoned",
    fields: LogFields,
  ): void {
    const { object, work } = this.owed;
    log(level, `${object}.${work}_${outcome}`, { ...this.fields(), ...fields });
    metrics.count("crafting_owed_work_total", { object, work, outcome });
    pushMetricsSoon(this.env);
  }
}
