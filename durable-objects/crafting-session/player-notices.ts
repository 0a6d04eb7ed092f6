/**
 * A session's notices to its player's queue (crafting-queue.ts): a status
 * change at once, progress at most once a second, the newest
 * (latest-every.ts), and none at all when the queue would not take it: the
 * player answers each notice with the summary it holds, and a progress
 * notice that would not move that one (`movesQueue`) is not sent, so
 * crafting-service's regular reports do not call, wake or keep alive the
 * player's object. While a notice is on its way what the player will hold
 * is not known, so the next one goes as before.
 */
import { movesQueue, type SessionSummary } from "../../src/domain/queue/crafting-queue";
import { PROGRESS_NOTICE_INTERVAL_MS } from "../../src/domain/session/session-machine";
import { LatestEvery } from "./latest-every";

/** One notice's call: resolves with what the player's queue holds for the session after it (undefined: the player did not say). */
export type PlayerCall = () => Promise<SessionSummary | null | undefined>;

export class PlayerNotices {
  readonly #throttle = new LatestEvery(PROGRESS_NOTICE_INTERVAL_MS);
  /** What the player's queue held at its last answer (null: not known). */
  #held: SessionSummary | null = null;
  #onTheWay = 0;

  /** `failed`: a notice could not be delivered (the next one repairs it: summaries are whole). */
  constructor(private readonly failed: (error: unknown) => void) {}

  /**
   * Tells the player of `summary`. `wait` (a status change): at once, and
   * the returned promise settles when the player has it. Otherwise when
   * the pace allows, or not at all if the queue holds one it would keep.
   */
  tell(summary: SessionSummary, wait: boolean, nowMs: number, call: PlayerCall): Promise<void> {
    if (wait) {
      this.#throttle.supersede(nowMs);
      return this.#send(call);
    }
    if (this.#onTheWay === 0 && this.#held && !movesQueue(this.#held, summary, nowMs)) {
      this.#throttle.drop();
      return Promise.resolve();
    }
    this.#throttle.run(() => void this.#send(call), nowMs);
    return Promise.resolve();
  }

  async #send(call: PlayerCall): Promise<void> {
    this.#onTheWay++;
    try {
      const held = (await call()) ?? null;
      // Answers may cross: the one with the newer summary wins.
      if (!held || !this.#held || held.seq >= this.#held.seq) this.#held = held;
    } catch (error: unknown) {
      this.#held = null;
      this.failed(error);
    } finally {
      this.#onTheWay--;
    }
  }
}
