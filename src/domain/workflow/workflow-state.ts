/**
 * A multi-step workflow as pure rules: an ordered list of steps, each one
 * crafting session. Finishing the current step's session advances the
 * workflow (its object then creates and starts the next session); a failed
 * or cancelled step fails the workflow; pause and resume follow the current
 * step. Step changes arrive as session summaries, in any order: one older
 * than what a step holds changes nothing. Each step keeps its session's
 * clock, so its progress (and the workflow's) is known at any instant; a
 * correction that keeps the step on its course changes nothing either.
 */

import type { MaterialRequirementInput } from "../materials/materials";
import { clockElapsedMs, sameCourse, totalDurationMs } from "../session/progress";
import type { PlannedStep, SessionClock, SessionStatus } from "../session/session";
import { type WorkflowStatus, workflowStatusEnded } from "./status";

/** What crafting-service may ask of a workflow: done to its current step's session. */
export const WORKFLOW_ACTIONS = ["pause", "resume", "cancel", "fail"] as const;
export type WorkflowAction = (typeof WORKFLOW_ACTIONS)[number];

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
  /** Progress when the summary held was sent (the clock says where it is since). */
  progressPercent: number;
  /** The session's clock as of the summary held (absent until its first, and in workflows stored before clocks). */
  clock?: SessionClock;
  /** Seq of the last session summary applied. */
  seq: number;
  /** Why the step's session failed or was cancelled, when it was given a reason. */
  failureReason?: string;
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
  /** The session's clock (absent in notices from a version before clocks). */
  clock?: SessionClock;
  /** Why the session failed or was cancelled, when it was given a reason. */
  failureReason?: string;
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

/**
 * Whether a newer summary of a step's session changes the workflow: a new
 * status does; a clock on the same course (`sameCourse`: a correction that
 * agrees with the plan, as crafting-service's regular reports do) does
 * not, since clients compute the step's progress from the clock held. The
 * held summary stays, so small moves are measured from it and cannot add
 * up unseen.
 */
export function movesStep(
  held: { status: WorkflowStep["status"]; clock?: SessionClock },
  next: StepSummary,
  plannedMs: number,
  nowMs: number,
): boolean {
  if (held.status !== next.status || !held.clock || !next.clock) return true;
  return !sameCourse(held.clock, next.clock, plannedMs, nowMs);
}

/** What the workflow holds for a step's session, as a summary (null: not one of its steps). */
export function heldStep(state: WorkflowState, sessionId: string): StepSummary | null {
  const step = state.steps.find((s) => s.sessionId === sessionId);
  if (!step || step.status === "pending") return null;
  const { status, progressPercent, seq, clock } = step;
  return { sessionId, status, progressPercent, seq, ...(clock ? { clock } : {}) };
}

/** A step whose session failed or was cancelled fails its workflow. */
const failsWorkflow = (status: WorkflowStep["status"]) =>
  status === "failed" || status === "cancelled";

/** Why a failed workflow failed: the reason its failing step's session was given ("" if none). */
export function workflowFailureReason(state: WorkflowState): string {
  if (state.status !== "failed") return "";
  return state.steps.find((step) => failsWorkflow(step.status))?.failureReason ?? "";
}

/** The workflow after a step's session changed, and the index of a step to start, if any. */
export function applyStepChange(
  state: WorkflowState,
  summary: StepSummary,
  nowMs: number,
): { state: WorkflowState; changed: boolean; startStep: number | null } {
  const index = state.steps.findIndex((step) => step.sessionId === summary.sessionId);
  const step = state.steps[index];
  if (
    !step ||
    step.seq >= summary.seq ||
    !movesStep(step, summary, totalDurationMs(step.steps), nowMs)
  )
    return { state, changed: false, startStep: null };
  const steps = state.steps.map((s, i) =>
    i === index
      ? {
          ...s,
          status: summary.status,
          progressPercent: summary.progressPercent,
          seq: summary.seq,
          ...(summary.clock ? { clock: summary.clock } : {}),
          ...(summary.failureReason ? { failureReason: summary.failureReason } : {}),
        }
      : s,
  );
  let { currentIndex, status } = state;
  let startStep: number | null = null;
  if (state.status !== "completed" && state.status !== "failed") {
    if (failsWorkflow(summary.status)) {
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

/**
 * The step whose session the workflow still owes a start (its object
 * creates and starts it): the current one, while the workflow is active and
 * has not heard that its session started. Null: none is owed.
 */
export function stepToStart(state: WorkflowState): number | null {
  const step = state.steps[state.currentIndex];
  if (state.status !== "active" || !step) return null;
  return step.status === "pending" || step.status === "queued" ? state.currentIndex : null;
}

/**
 * The clock a step's progress follows: its session's as last taken, or,
 * for a step not started (or stored before clocks), one stopped where the
 * step was last reported.
 */
export function stepClock(step: WorkflowStep): SessionClock {
  if (step.clock) return step.clock;
  const planned = totalDurationMs(step.steps);
  return {
    anchorAtMs: 0,
    anchorElapsedMs: (step.progressPercent / 100) * planned,
    rate: 1,
    running: false,
  };
}

/** A step's progress (0–100) at `nowMs`, from its clock. */
export function stepProgressAt(step: WorkflowStep, nowMs: number): number {
  if (step.status === "completed") return 100;
  const planned = totalDurationMs(step.steps);
  if (planned === 0) return 0;
  const elapsed = clockElapsedMs(stepClock(step), nowMs);
  return (Math.min(planned, Math.max(0, elapsed)) / planned) * 100;
}

/** Overall progress (0–100) at `nowMs`, weighted by each step's planned time. */
export function overallProgress(state: WorkflowState, nowMs: number): number {
  const total = state.steps.reduce((sum, step) => sum + totalDurationMs(step.steps), 0);
  if (total === 0) return 0;
  const done = state.steps.reduce(
    (sum, step) => sum + (totalDurationMs(step.steps) * stepProgressAt(step, nowMs)) / 100,
    0,
  );
  return Math.min(100, (done / total) * 100);
}

/** Whether the workflow can no longer change. */
export const workflowEnded = (state: WorkflowState) => workflowStatusEnded(state.status);
