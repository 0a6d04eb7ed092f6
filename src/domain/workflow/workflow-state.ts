/**
 * A multi-step workflow as pure rules: an ordered list of steps, each one
 * crafting session. Finishing the current step's session advances the
 * workflow (its object then creates and starts the next session); a failed
 * or cancelled step fails the workflow; pause and resume follow the current
 * step. Step changes arrive as session summaries, in any order: one older
 * than what a step holds changes nothing.
 */

import type { MaterialRequirementInput } from "../materials/materials";
import type { PlannedStep, SessionStatus } from "../session/session";

/** Status of a workflow (seed 000). */
export type WorkflowStatus = "active" | "paused" | "completed" | "failed";

/** One step as crafting-service plans it. */
export interface WorkflowStepPlan {
  name: string;
  recipeId: string;
  steps: PlannedStep[];
  /** Materials the step's session requires. */
  materials: MaterialRequirementInput[];
}

/** One step as the workflow tracks it. */
export interface WorkflowStep extends WorkflowStepPlan {
  /** `{workflow_id}.{index}`. */
  sessionId: string;
  status: SessionStatus | "pending";
  progressPercent: number;
  /** Seq of the last session summary applied. */
  seq: number;
}

/** The authoritative state of one workflow. */
export interface WorkflowState {
  workflowId: string;
  playerId: string;
  steps: WorkflowStep[];
  currentIndex: number;
  status: WorkflowStatus;
  createdAtMs: number;
  epoch: number;
  seq: number;
}

/** What a step's session reports after a change. */
export interface StepSummary {
  sessionId: string;
  status: SessionStatus;
  progressPercent: number;
  seq: number;
}

/** The session id of step `index`. */
export const stepSessionId = (workflowId: string, index: number) => `${workflowId}.${index}`;

/** A new workflow; its first step's session is to be created and started. */
export function newWorkflow(
  workflowId: string,
  playerId: string,
  plans: readonly WorkflowStepPlan[],
  epoch: number,
  nowMs: number,
): WorkflowState {
  return {
    workflowId,
    playerId,
    steps: plans.map((plan, i) => ({
      ...plan,
      sessionId: stepSessionId(workflowId, i),
      status: "pending",
      progressPercent: 0,
      seq: 0,
    })),
    currentIndex: 0,
    status: "active",
    createdAtMs: nowMs,
    epoch,
    seq: 1,
  };
}

/** Whether a repeated create asks for the workflow that exists (it is then idempotent). */
export function samePlan(
  state: WorkflowState,
  playerId: string,
  plans: readonly WorkflowStepPlan[],
): boolean {
  return (
    state.playerId === playerId &&
    state.steps.length === plans.length &&
    state.steps.every((step, i) => {
      const plan = plans[i];
      return (
        plan !== undefined &&
        step.name === plan.name &&
        step.recipeId === plan.recipeId &&
        JSON.stringify(step.materials) === JSON.stringify(plan.materials) &&
        step.steps.length === plan.steps.length &&
        step.steps.every(
          (s, j) => s.name === plan.steps[j]?.name && s.durationMs === plan.steps[j]?.durationMs,
        )
      );
    })
  );
}

/** The workflow after a step's session changed, and the index of a step to start, if any. */
export function applyStepChange(
  state: WorkflowState,
  summary: StepSummary,
): { state: WorkflowState; changed: boolean; startStep: number | null } {
  const index = state.steps.findIndex((step) => step.sessionId === summary.sessionId);
  const step = state.steps[index];
  if (!step || step.seq >= summary.seq) return { state, changed: false, startStep: null };
  const steps = state.steps.map((s, i) =>
    i === index
      ? { ...s, status: summary.status, progressPercent: summary.progressPercent, seq: summary.seq }
      : s,
  );
  let { currentIndex, status } = state;
  let startStep: number | null = null;
  if (state.status !== "completed" && state.status !== "failed") {
    if (summary.status === "failed" || summary.status === "cancelled") {
      status = "failed";
    } else if (summary.status === "completed" && index === currentIndex) {
      if (index === steps.length - 1) status = "completed";
      else {
        currentIndex = index + 1;
        startStep = currentIndex;
        status = "active";
      }
    } else if (index === currentIndex) {
      status = summary.status === "paused" ? "paused" : "active";
    }
  }
  return {
    state: { ...state, steps, currentIndex, status, seq: state.seq + 1 },
    changed: true,
    startStep,
  };
}

/** Overall progress (0–100), weighted by each step's planned time. */
export function overallProgress(state: WorkflowState): number {
  const weight = (step: WorkflowStep) => step.steps.reduce((sum, s) => sum + s.durationMs, 0);
  const total = state.steps.reduce((sum, step) => sum + weight(step), 0);
  if (total === 0) return 0;
  const done = state.steps.reduce(
    (sum, step) =>
      sum +
      (step.status === "completed" ? weight(step) : (weight(step) * step.progressPercent) / 100),
    0,
  );
  return Math.min(100, (done / total) * 100);
}

/** Whether the workflow can no longer change. */
export const workflowEnded = (state: WorkflowState) =>
  state.status === "completed" || state.status === "failed";
