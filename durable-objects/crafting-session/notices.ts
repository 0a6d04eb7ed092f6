/**
 * A session's notices to an object that follows it: its player's queue
 * (crafting-queue.ts) or its workflow (workflow-state.ts). A status change
 * goes at once; progress at most once a second, the newest
 * (latest-every.ts), and none at all when the receiver would not take it:
 * the receiver answers each notice with what it holds for the session, and
 * a progress notice that would not move that (`movesQueue`, `movesStep`)
 * is not sent, so crafting-service's regular reports do not call, wake or
 * keep alive those objects. While a notice is on its way what the receiver
 * will hold is not known, so the next one goes as before.
 */
import { movesQueue, type SessionSummary } from "../../src/domain/queue/crafting-queue";
import {
  PROGRESS_NOTICE_INTERVAL_MS,
  type SessionNotice,
} from "../../src/domain/session/session-machine";
import { movesStep, type StepSummary } from "../../src/domain/workflow/workflow-state";
import { playerStub, workflowStub } from "../../src/durable";
import type { ServiceError } from "../../src/errors";
import { LatestEvery } from "./latest-every";

/** One notice's call: resolves with what the receiver holds for the session after it (null or undefined: not known). */
export type NoticeCall<T> = () => Promise<T | null | undefined>;

/** Whether the receiver, holding `held`, would take `next` at `nowMs`. */
export type Moves<T> = (held: T, next: T, nowMs: number) => boolean;

export class Notices<T extends { seq: number }> {
  readonly #throttle = new LatestEvery(PROGRESS_NOTICE_INTERVAL_MS);
  /** What the receiver held at its last answer (null: not known). */
  #held: T | null = null;
  #onTheWay = 0;

  /** `failed`: a notice could not be delivered (the next one repairs it: notices are whole). */
  constructor(
    private readonly moves: Moves<T>,
    private readonly failed: (error: unknown) => void,
  ) {}

  /**
   * Tells the receiver of `next`. `wait` (a status change): at once, and
   * the returned promise settles when the receiver has it, false if it could
   * not be told. Otherwise when the pace allows, or not at all if the
   * receiver holds one it would keep (true at once).
   */
  tell(
    next: T,
    wait: boolean,
    nowMs: number,
    call: NoticeCall<T>,
    repeat = false,
  ): Promise<boolean> {
    // Told again only when this object has not heard from the receiver since
    // it woke (it may have died between storing the change and telling it)
    // or since a notice failed: any answer since came after a whole notice.
    if (repeat && this.#held) return Promise.resolve(true);
    if (wait) {
      this.#throttle.supersede(nowMs);
      return this.#send(call);
    }
    if (this.#onTheWay === 0 && this.#held && !this.moves(this.#held, next, nowMs)) {
      this.#throttle.drop();
      return Promise.resolve(true);
    }
    this.#throttle.run(() => void this.#send(call), nowMs);
    return Promise.resolve(true);
  }

  /** Sends one notice; false when it could not be delivered. */
  async #send(call: NoticeCall<T>): Promise<boolean> {
    this.#onTheWay++;
    try {
      const held = (await call()) ?? null;
      // Answers may cross: the one with the newer seq wins.
      if (!held || !this.#held || held.seq >= this.#held.seq) this.#held = held;
      return true;
    } catch (error: unknown) {
      this.#held = null;
      this.failed(error);
      return false;
    } finally {
      this.#onTheWay--;
    }
  }
}

/**
 * The objects that follow a session, its player's queue and its workflow,
 * and the notices on their way to each.
 */
export class Followers {
  readonly #player: Notices<SessionSummary>;
  readonly #workflow: Notices<StepSummary>;

  /** `env`: the object's bindings; `plannedMs`: the session's planned time (`movesStep`); `failed`: a notice to `to` failed. */
  constructor(
    private readonly env: () => Env,
    plannedMs: () => number,
    failed: (to: "player" | "workflow", error: unknown) => void,
  ) {
    this.#player = new Notices<SessionSummary>(movesQueue, (e) => failed("player", e));
    this.#workflow = new Notices<StepSummary>(
      (held, next, nowMs) => movesStep(held, next, plannedMs(), nowMs),
      (e) => failed("workflow", e),
    );
  }

  /** Tells the player's queue or the workflow (`Notices.tell`; false: a waited notice was not told). */
  tell(notice: SessionNotice, atMs: number): Promise<boolean> {
    if (notice.type === "notify_player") {
      const { playerId, summary } = notice;
      return this.#player.tell(
        summary,
        notice.wait,
        atMs,
        () => playerStub(this.env(), playerId).sessionChanged(playerId, summary),
        notice.repeat,
      );
    }
    const { workflowId, step } = notice;
    return this.#workflow.tell(
      step,
      notice.wait,
      atMs,
      () => workflowStub(this.env(), workflowId).stepChanged(step),
      notice.repeat,
    );
  }
}

/**
 * The answer to a change that is stored, and its streams have it, but whose
 * player's queue or workflow missed a status it must not miss: the caller
 * sends the call again, which finds the change stored and tells them (a
 * redelivered event does the same). Answered 200, it would stay missed.
 */
export function notTold(seq: number): { ok: false; error: ServiceError } {
  return {
    ok: false,
    error: {
      code: "unavailable",
      message: `the change is stored (seq ${seq}), but the player's queue or the workflow could not be told: send the same call again (a retry is safe, and tells them)`,
      retryAfterSeconds: 1,
    },
  };
}
