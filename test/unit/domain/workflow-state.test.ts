/** Workflow advancement rules. */
import { describe, expect, it } from "vitest";
import { CLOCK_TOLERANCE_MS } from "../../../src/domain/session/progress";
import {
  applyStepChange,
  movesStep,
  newWorkflow,
  overallProgress,
  samePlan,
  stepProgressAt,
  stepSessionId,
  stepToStart,
  type WorkflowState,
  type WorkflowStep,
  workflowFailureReason,
} from "../../../src/domain/workflow/workflow-state";

const plans = [60, 30, 10].map((s, i) => ({
  name: `step-${i}`,
  recipeId: `r-${i}`,
  steps: [{ name: "work", durationMs: s * 1000 }],
  materials: [] as { materialId: string; required: number }[],
}));
const start = () => newWorkflow("w1", "p1", plans, 7, 0);
const change = (
  state: WorkflowState,
  index: number,
  status: "queued" | "active" | "paused" | "completed" | "failed" | "cancelled",
  seq: number,
  progressPercent = 0,
) =>
  applyStepChange(
    state,
    { sessionId: stepSessionId("w1", index), status, progressPercent, seq },
    0,
  );

describe("why a workflow failed", () => {
  const ended = (status: "failed" | "cancelled", failureReason?: string) =>
    applyStepChange(
      change(start(), 0, "completed", 2, 100).state,
      { sessionId: stepSessionId("w1", 1), status, progressPercent: 0, seq: 3, failureReason },
      0,
    ).state;

  it("is the reason its failed or cancelled step's session was given, and nothing before", () => {
    expect(workflowFailureReason(start())).toBe("");
    for (const status of ["failed", "cancelled"] as const) {
      const w = ended(status, "out of coal");
      expect(w.status).toBe("failed");
      expect(w.steps[1]?.failureReason).toBe("out of coal");
      expect(workflowFailureReason(w)).toBe("out of coal");
    }
    expect(workflowFailureReason(ended("failed"))).toBe("");
  });
});

describe("workflow advancement", () => {
  it("advances on each step's completion, starting the next, and completes after the last", () => {
    let w = start();
    let r = change(w, 0, "active", 2);
    expect(r).toMatchObject({
      changed: true,
      startStep: null,
      state: { status: "active", currentIndex: 0 },
    });
    r = change(r.state, 0, "completed", 3, 100);
    expect(r).toMatchObject({ startStep: 1, state: { currentIndex: 1, status: "active" } });
    w = change(r.state, 1, "completed", 3, 100).state;
    expect(w.currentIndex).toBe(2);
    r = change(w, 2, "completed", 3, 100);
    expect(r).toMatchObject({ startStep: null, state: { status: "completed", currentIndex: 2 } });
    expect(overallProgress(r.state, 0)).toBe(100);
  });

  it("owes a start to the current step until its session says it started", () => {
    let w = start();
    expect(stepToStart(w)).toBe(0);
    w = change(w, 0, "queued", 1).state;
    expect(stepToStart(w)).toBe(0);
    w = change(w, 0, "active", 2).state;
    expect(stepToStart(w)).toBeNull();
    w = change(w, 0, "completed", 3, 100).state;
    expect(stepToStart(w)).toBe(1);
    w = change(w, 1, "active", 2).state;
    expect(stepToStart(w)).toBeNull();
    // A workflow that failed or completed owes nothing.
    expect(stepToStart(change(w, 1, "failed", 3).state)).toBeNull();
    expect(stepToStart({ ...start(), status: "failed" })).toBeNull();
  });

  it("fails when a step fails or is cancelled, and then stays failed", () => {
    const w = change(change(start(), 0, "completed", 3).state, 1, "failed", 3).state;
    expect(w).toMatchObject({ status: "failed", currentIndex: 1 });
    expect(change(w, 2, "completed", 5).state.status).toBe("failed");
    expect(change(start(), 0, "cancelled", 2).state.status).toBe("failed");
  });

  it("follows the current step's pause and resume", () => {
    const paused = change(change(start(), 0, "active", 2).state, 0, "paused", 3).state;
    expect(paused.status).toBe("paused");
    expect(change(paused, 0, "active", 4).state.status).toBe("active");
  });

  it("ignores an older summary than the one a step holds", () => {
    const w = change(start(), 0, "paused", 5).state;
    expect(change(w, 0, "active", 4).changed).toBe(false);
    expect(change(w, 9, "active", 9).changed).toBe(false);
  });

  it("weights overall progress by planned time", () => {
    const w = change(change(start(), 0, "completed", 3, 100).state, 1, "active", 2, 50).state;
    // (60 + 15) of 100 s.
    expect(overallProgress(w, 0)).toBeCloseTo(75);
  });
});

describe("a step's clock", () => {
  const clock = (atMs: number, elapsedMs: number, running = true) => ({
    anchorAtMs: atMs,
    anchorElapsedMs: elapsedMs,
    rate: 1,
    running,
  });
  const report = (
    state: WorkflowState,
    seq: number,
    atMs: number,
    elapsedMs: number,
    status: "active" | "paused" = "active",
  ) =>
    applyStepChange(
      state,
      {
        sessionId: stepSessionId("w1", 0),
        status,
        progressPercent: (elapsedMs / 60_000) * 100,
        seq,
        clock: clock(atMs, elapsedMs, status === "active"),
      },
      atMs,
    );

  it("gives the step's and the workflow's progress at any instant", () => {
    const w = report(start(), 2, 0, 0).state;
    // 30 s into the 60 s first step: 50 % of it, 30 of 100 s overall.
    expect(stepProgressAt(w.steps[0] as WorkflowStep, 30_000)).toBeCloseTo(50);
    expect(overallProgress(w, 30_000)).toBeCloseTo(30);
    // Capped at the step's plan; a step without a clock keeps what it reported.
    expect(stepProgressAt(w.steps[0] as WorkflowStep, 90_000)).toBe(100);
    expect(stepProgressAt(w.steps[1] as WorkflowStep, 30_000)).toBe(0);
  });

  it("takes no report that keeps the step on its course, and measures moves from the clock held", () => {
    let w = report(start(), 2, 0, 0).state;
    // Each report agrees with the plan within the tolerance: nothing changes.
    for (let i = 1; i <= 10; i++) {
      const r = report(w, 2 + i, i * 1000, i * 1000 + 900);
      expect(r.changed).toBe(false);
      w = r.state;
    }
    expect(w.steps[0]?.seq).toBe(2);
    // Small moves do not add up unseen: 1 s ahead of the clock held is taken.
    const ahead = report(w, 13, 11_000, 11_000 + CLOCK_TOLERANCE_MS);
    expect(ahead.changed).toBe(true);
    expect(ahead.state.steps[0]?.clock).toEqual(clock(11_000, 12_000));
    // A new status is taken however close the clock.
    const paused = report(ahead.state, 14, 12_000, 13_000, "paused");
    expect(paused).toMatchObject({ changed: true, state: { status: "paused" } });
  });

  it("takes a report without a clock (from a version before clocks), and one onto a step without one", () => {
    expect(
      movesStep(
        { status: "active" },
        { sessionId: "x", status: "active", progressPercent: 5, seq: 3, clock: clock(0, 0) },
        60_000,
        0,
      ),
    ).toBe(true);
    expect(
      movesStep(
        { status: "active", clock: clock(0, 0) },
        { sessionId: "x", status: "active", progressPercent: 5, seq: 3 },
        60_000,
        0,
      ),
    ).toBe(true);
  });
});

describe("repeating a create", () => {
  it("is the same workflow only for the same player and the same plan", () => {
    expect(samePlan(start(), "p1", plans)).toBe(true);
    expect(samePlan(start(), "p2", plans)).toBe(false);
    expect(samePlan(start(), "p1", plans.slice(1))).toBe(false);
    const slower = plans.map((p, i) =>
      i === 2 ? { ...p, steps: [{ name: "work", durationMs: 1 }] } : p,
    );
    expect(samePlan(start(), "p1", slower)).toBe(false);
    const needsOre = plans.map((p, i) =>
      i === 1 ? { ...p, materials: [{ materialId: "ore", required: 2 }] } : p,
    );
    expect(samePlan(start(), "p1", needsOre)).toBe(false);
  });
});
