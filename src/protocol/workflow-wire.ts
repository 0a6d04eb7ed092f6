/** A workflow, domain → wire (`crafting.v1.WorkflowUpdate`). */
import { create } from "@bufbuild/protobuf";
import { workflowStatusEnded } from "../domain/workflow/status";
import {
  overallProgress,
  stepClock,
  stepProgressAt,
  type WorkflowState,
  workflowFailureReason,
} from "../domain/workflow/workflow-state";
import {
  WorkflowStatus,
  WorkflowStepSchema,
  type WorkflowUpdate,
  WorkflowUpdateSchema,
} from "../gen/crafting/v1/workflow_pb";
import { clockMessage, percentOnWire } from "./session-wire";

const WORKFLOW_STATUS = {
  active: WorkflowStatus.ACTIVE,
  paused: WorkflowStatus.PAUSED,
  completed: WorkflowStatus.COMPLETED,
  failed: WorkflowStatus.FAILED,
} as const;

const ENDED_ON_WIRE: ReadonlySet<WorkflowStatus> = new Set(
  Object.entries(WORKFLOW_STATUS)
    .filter(([status]) => workflowStatusEnded(status as WorkflowState["status"]))
    .map(([, wire]) => wire),
);

/** Whether a workflow in this wire status can no longer change (the domain's `workflowEnded`). */
export function workflowEndedOnWire(wire: WorkflowStatus): boolean {
  return ENDED_ON_WIRE.has(wire);
}

/** A step's status as a workflow status (a pending or queued step is not started: unspecified). */
function stepStatus(status: WorkflowState["steps"][number]["status"]): WorkflowStatus {
  switch (status) {
    case "active":
      return WorkflowStatus.ACTIVE;
    case "paused":
      return WorkflowStatus.PAUSED;
    case "completed":
      return WorkflowStatus.COMPLETED;
    case "failed":
    case "cancelled":
      return WorkflowStatus.FAILED;
    default:
      return WorkflowStatus.UNSPECIFIED;
  }
}

/** Seed 000's workflow fields for `state` at `nowMs`, with each running step's clock. */
export function workflowMessage(state: WorkflowState, nowMs: number): WorkflowUpdate {
  return create(WorkflowUpdateSchema, {
    workflowId: state.workflowId,
    playerId: state.playerId,
    overallProgress: percentOnWire(overallProgress(state, nowMs)),
    currentStepIndex: state.currentIndex,
    totalSteps: state.steps.length,
    currentStepName: state.steps[state.currentIndex]?.name ?? "",
    steps: state.steps.map((step) =>
      create(WorkflowStepSchema, {
        name: step.name,
        sessionId: step.sessionId,
        recipeId: step.recipeId,
        status: stepStatus(step.status),
        progressPercent: percentOnWire(stepProgressAt(step, nowMs)),
        // Every step's: its total weighs it in the overall progress.
        clock: clockMessage(stepClock(step), step.steps),
        failureReason: step.failureReason ?? "",
      }),
    ),
    status: WORKFLOW_STATUS[state.status],
    timestampMs: BigInt(nowMs),
    failureReason: workflowFailureReason(state),
  });
}
