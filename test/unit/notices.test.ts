/** A session's notices to its player's queue and its workflow: only those they would take are sent. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Notices } from "../../durable-objects/crafting-session/notices";
import { movesQueue, type SessionSummary } from "../../src/domain/queue/crafting-queue";
import {
  applyStepChange,
  heldStep,
  movesStep,
  newWorkflow,
  type StepSummary,
  stepSessionId,
} from "../../src/domain/workflow/workflow-state";

afterEach(() => {
  vi.useRealTimers();
});

/** Session a, active, 60 s planned, reported at `atMs` with `elapsedMs` crafted. */
function report(seq: number, atMs: number, elapsedMs: number): SessionSummary {
  return {
    sessionId: "a",
    recipeId: "r",
    status: "active",
    createdAtMs: 0,
    plannedMs: 60_000,
    clock: { anchorAtMs: atMs, anchorElapsedMs: elapsedMs, rate: 1, running: true },
    materialIds: [],
    seq,
  };
}

/** A player that takes every summary and answers with it; `sent` lists the seqs it was told. */
function player() {
  const sent: number[] = [];
  const call =
    (summary: SessionSummary, answer: Promise<void> = Promise.resolve()) =>
    () => {
      sent.push(summary.seq);
      return answer.then(() => summary);
    };
  return { sent, call };
}

describe("a session's notices to its player's queue", () => {
  it("tells a change again on a retry only when the player has not answered since the object woke or a notice failed", async () => {
    const { sent, call } = player();
    const notices = new Notices(movesQueue, () => {});
    const start = report(2, 0, 0);
    // Woken afresh (the first telling died with the object): told.
    await notices.tell(start, true, 0, call(start), true);
    expect(sent).toEqual([2]);
    // Told and answered: a second retry calls no one.
    await notices.tell(start, true, 0, call(start), true);
    expect(sent).toEqual([2]);
    // A notice that failed: the next retry tells again.
    const failing = () => Promise.reject(new Error("player unreachable"));
    // (A status notice that could not be told says so: the caller is asked to retry.)
    expect(await notices.tell(report(3, 0, 0), true, 0, failing)).toBe(false);
    expect(await notices.tell(report(3, 0, 0), true, 0, call(report(3, 0, 0)), true)).toBe(true);
    expect(sent).toEqual([2, 3]);
  });

  it("sends no progress the queue would not take, once the player said what it holds", async () => {
    vi.useFakeTimers({ now: 0 });
    const { sent, call } = player();
    const notices = new Notices(movesQueue, () => {});
    const start = report(2, 0, 0);
    await notices.tell(start, true, 0, call(start));
    // Reports that agree with the plan, a second apart: none is sent.
    for (let i = 1; i <= 5; i++) {
      vi.setSystemTime(i * 1000);
      const agrees = report(2 + i, i * 1000, i * 1000 + 100);
      await notices.tell(agrees, false, i * 1000, call(agrees));
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(sent).toEqual([2]);
    // 30 s ahead: sent.
    vi.setSystemTime(7000);
    const ahead = report(9, 7000, 37_000);
    await notices.tell(ahead, false, 7000, call(ahead));
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([2, 9]);
  });

  it("sends the next notice while one is on its way: what the player will hold is not known yet", async () => {
    vi.useFakeTimers({ now: 0 });
    const { sent, call } = player();
    const notices = new Notices(movesQueue, () => {});
    const start = report(2, 0, 0);
    await notices.tell(start, true, 0, call(start));
    // 30 s ahead, its answer slow to come...
    let answer = () => {};
    const slow = new Promise<void>((resolve) => {
      answer = resolve;
    });
    vi.setSystemTime(1500);
    const ahead = report(3, 1500, 31_500);
    await notices.tell(ahead, false, 1500, call(ahead, slow));
    // ...then back on plan: close to what the player held, not to what it is about to hold.
    vi.setSystemTime(1600);
    const onPlan = report(4, 1600, 1600);
    await notices.tell(onPlan, false, 1600, call(onPlan));
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([2, 3, 4]);
    answer();
  });

  it("forgets what the player holds when a notice fails, so the next one goes", async () => {
    vi.useFakeTimers({ now: 0 });
    const { sent, call } = player();
    const failures: unknown[] = [];
    const notices = new Notices(movesQueue, (e) => failures.push(e));
    const start = report(2, 0, 0);
    await notices.tell(start, true, 0, call(start));
    vi.setSystemTime(1000);
    await notices.tell(report(3, 1000, 0), true, 1000, () => Promise.reject(new Error("gone")));
    expect(failures).toHaveLength(1);
    vi.setSystemTime(2500);
    const agrees = report(4, 2500, 2500);
    await notices.tell(agrees, false, 2500, call(agrees));
    expect(sent).toEqual([2, 4]);
  });

  it("drops a paced notice when a newer report agrees with what the player holds", async () => {
    vi.useFakeTimers({ now: 0 });
    const { sent, call } = player();
    const notices = new Notices(movesQueue, () => {});
    const start = report(2, 0, 5000);
    await notices.tell(start, true, 0, call(start));
    // Within the second: 5.5 s behind plan is held back by the pace...
    vi.setSystemTime(500);
    const behind = report(3, 500, 0);
    await notices.tell(behind, false, 500, call(behind));
    // ...then the next report agrees with the plan again: the queue already holds what it should.
    vi.setSystemTime(900);
    const agrees = report(4, 900, 5900);
    await notices.tell(agrees, false, 900, call(agrees));
    await vi.advanceTimersByTimeAsync(2000);
    expect(sent).toEqual([2]);
  });
});

describe("a session's notices to its workflow", () => {
  const planned = 60_000;
  /** A workflow whose first step is session `w.0` (60 s planned); it answers each notice with what it holds. */
  function workflow() {
    let state = newWorkflow(
      "w",
      "p",
      [
        {
          name: "smelt",
          recipeId: "r",
          steps: [{ name: "s", durationMs: planned }],
          materials: [],
        },
      ],
      1,
      0,
    );
    const sent: number[] = [];
    const call = (step: StepSummary) => async () => {
      sent.push(step.seq);
      state = applyStepChange(state, step, Date.now()).state;
      return heldStep(state, step.sessionId);
    };
    return { sent, call, held: () => heldStep(state, stepSessionId("w", 0)) };
  }
  const step = (
    seq: number,
    atMs: number,
    elapsedMs: number,
    status: "active" | "paused" = "active",
  ): StepSummary => ({
    sessionId: stepSessionId("w", 0),
    status,
    progressPercent: (elapsedMs / planned) * 100,
    seq,
    clock: { anchorAtMs: atMs, anchorElapsedMs: elapsedMs, rate: 1, running: status === "active" },
  });

  it("sends no report that keeps the step on its course; a move or a new status goes", async () => {
    vi.useFakeTimers({ now: 0 });
    const { sent, call, held } = workflow();
    const notices = new Notices<StepSummary>(
      (h, n, nowMs) => movesStep(h, n, planned, nowMs),
      () => {},
    );
    const start = step(2, 0, 0);
    await notices.tell(start, true, 0, call(start));
    for (let i = 1; i <= 5; i++) {
      vi.setSystemTime(i * 1000);
      const agrees = step(2 + i, i * 1000, i * 1000 + 200);
      await notices.tell(agrees, false, i * 1000, call(agrees));
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(sent).toEqual([2]);
    // The workflow still holds the first clock, and it says where the step is.
    expect(held()?.seq).toBe(2);
    vi.setSystemTime(7000);
    const ahead = step(9, 7000, 37_000);
    await notices.tell(ahead, false, 7000, call(ahead));
    await vi.advanceTimersByTimeAsync(0);
    vi.setSystemTime(9000);
    const paused = step(10, 9000, 39_000, "paused");
    await notices.tell(paused, true, 9000, call(paused));
    expect(sent).toEqual([2, 9, 10]);
    expect(held()).toMatchObject({ seq: 10, status: "paused" });
  });
});
