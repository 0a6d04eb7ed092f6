/** Progress computed from the session clock, at any instant. */
import { describe, expect, it } from "vitest";
import { progressAt } from "../../../src/domain/session/progress";
import { apply, created, T0 } from "./session-fixtures";

describe("time-based progress", () => {
  it("is zero until the session starts", () => {
    expect(progressAt(created(), T0 + 60_000)).toMatchObject({
      elapsedMs: 0,
      percent: 0,
      currentStepIndex: 0,
    });
  });

  it("advances with the clock and moves through the steps", () => {
    const active = apply(created(), "start", T0);
    expect(progressAt(active, T0 + 2_000)).toMatchObject({
      elapsedMs: 2_000,
      percent: 20,
      currentStepIndex: 0,
      stepPercent: 50,
      remainingMs: 8_000,
    });
    const later = progressAt(active, T0 + 7_000);
    expect(later).toMatchObject({ currentStepIndex: 1, stepPercent: 50, percent: 70 });
    expect(later.steps.map((s) => s.status)).toEqual(["completed", "active"]);
  });

  it("stops at 100 % when the planned time has elapsed, without completing the session", () => {
    const active = apply(created(), "start", T0);
    const view = progressAt(active, T0 + 60_000);
    expect(view).toMatchObject({
      elapsedMs: 10_000,
      percent: 100,
      currentStepIndex: 1,
      stepPercent: 100,
    });
    expect(active.status).toBe("active");
  });

  it("does not advance while paused, and counts the pause", () => {
    const paused = apply(apply(created(), "start", T0), "pause", T0 + 3_000);
    expect(progressAt(paused, T0 + 50_000).elapsedMs).toBe(3_000);
    expect(progressAt(paused, T0 + 50_000).steps[0]?.status).toBe("paused");
    const resumed = apply(paused, "resume", T0 + 8_000);
    expect(resumed.pausedTotalMs).toBe(5_000);
    expect(progressAt(resumed, T0 + 9_000).elapsedMs).toBe(4_000);
  });

  it("adds up several pauses", () => {
    let state = apply(created(), "start", T0);
    state = apply(state, "pause", T0 + 1_000);
    state = apply(state, "resume", T0 + 2_000);
    state = apply(state, "pause", T0 + 3_000);
    state = apply(state, "resume", T0 + 6_000);
    expect(state.pausedTotalMs).toBe(4_000);
    expect(progressAt(state, T0 + 7_000).elapsedMs).toBe(3_000);
  });

  it("shows every step completed once the session completes, even early", () => {
    const done = apply(apply(created(), "start", T0), "complete", T0 + 1_000);
    const view = progressAt(done, T0 + 1_000);
    expect(view).toMatchObject({ percent: 100, remainingMs: 0 });
    expect(view.steps.map((s) => s.status)).toEqual(["completed", "completed"]);
  });

  it("freezes progress where the session failed", () => {
    const failed = apply(apply(created(), "start", T0), "fail", T0 + 5_000);
    const view = progressAt(failed, T0 + 99_000);
    expect(view).toMatchObject({ elapsedMs: 5_000, currentStepIndex: 1 });
    expect(view.steps.map((s) => s.status)).toEqual(["completed", "failed"]);
  });
});
