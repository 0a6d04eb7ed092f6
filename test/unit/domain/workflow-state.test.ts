/** Workflow advancement rules. */
import { describe, expect, it } from "vitest";
import {
  applyStepChange,
  newWorkflow,
  overallProgress,
  samePlan,
  stepSessionId,
  type WorkflowState,
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
  status: "active" | "paused" | "completed" | "failed" | "cancelled",
  seq: number,
  progressPercent = 0,
) =>
  applyStepChange(state, { sessionId: stepSessionId("w1", index), status, progressPercent, seq });

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
    expect(overallProgress(r.state)).toBe(100);
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
    expect(overallProgress(w)).toBeCloseTo(75);
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
