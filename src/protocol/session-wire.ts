/**
 * Maps the session's domain state to its wire messages (generated from
 * proto/), so JSON and binary frames carry exactly the same information.
 */
import { create } from "@bufbuild/protobuf";
import { allAvailable, type MaterialChange } from "../domain/materials/materials";
import { progressAt, totalDurationMs } from "../domain/session/progress";
import {
  isFinal,
  type PlannedStep,
  type Session,
  type SessionClock,
  type SessionStatus,
  type StepStatus,
} from "../domain/session/session";
import {
  MaterialChangeSchema,
  type MaterialNotification,
  MaterialNotificationSchema,
} from "../gen/crafting/v1/materials_pb";
import {
  type CraftingProgressUpdate,
  CraftingProgressUpdateSchema,
  CraftingStepSchema,
  MaterialRequirementSchema,
  type ProgressClock,
  ProgressClockSchema,
  type SessionState as SessionStateMessage,
  SessionStateSchema,
  SessionStatus as SessionStatusEnum,
  type SessionUpdate,
  SessionUpdateSchema,
  StepStatus as StepStatusEnum,
} from "../gen/crafting/v1/session_pb";

const sessionStatusToWire: Record<SessionStatus, SessionStatusEnum> = {
  queued: SessionStatusEnum.QUEUED,
  active: SessionStatusEnum.ACTIVE,
  paused: SessionStatusEnum.PAUSED,
  completed: SessionStatusEnum.COMPLETED,
  failed: SessionStatusEnum.FAILED,
  cancelled: SessionStatusEnum.CANCELLED,
};

const stepStatusToWire: Record<StepStatus, StepStatusEnum> = {
  pending: StepStatusEnum.PENDING,
  active: StepStatusEnum.ACTIVE,
  paused: StepStatusEnum.PAUSED,
  completed: StepStatusEnum.COMPLETED,
  failed: StepStatusEnum.FAILED,
  cancelled: StepStatusEnum.CANCELLED,
};

/** The wire enum of a session status. */
export function sessionStatusMessage(status: SessionStatus): SessionStatusEnum {
  return sessionStatusToWire[status];
}

const sessionStatusFromWire = new Map(
  Object.entries(sessionStatusToWire).map(([status, wire]) => [wire, status as SessionStatus]),
);

/** The session status of a wire enum (unspecified: none). */
export function sessionStatusOf(wire: SessionStatusEnum): SessionStatus | undefined {
  return sessionStatusFromWire.get(wire);
}

/** Whether a session in this wire status can no longer change (the domain's `isFinal`). */
export function sessionEndedOnWire(wire: SessionStatusEnum): boolean {
  const status = sessionStatusOf(wire);
  return status !== undefined && isFinal(status);
}

/**
 * A percentage as sent: to a hundredth of a percent. The wire's percentages
 * are `float`s, which the binary form carries to ~7 digits anyway, and JSON
 * would otherwise carry every digit of a double (`40.05866666666667`).
 */
export const percentOnWire = (percent: number) => Math.round(percent * 100) / 100;

/** Milliseconds as the wire's seconds, to the millisecond (a clock at a rate makes fractions). */
const secondsOnWire = (ms: number) => Math.round(ms) / 1000;

/** Seed 000's progress fields at `nowMs`. */
export function progressMessage(state: Session, nowMs: number): CraftingProgressUpdate {
  const view = progressAt(state, nowMs);
  return create(CraftingProgressUpdateSchema, {
    sessionId: state.sessionId,
    progressPercent: percentOnWire(view.percent),
    elapsedSeconds: secondsOnWire(view.elapsedMs),
    remainingSeconds: secondsOnWire(view.remainingMs),
    currentStep: state.steps[view.currentStepIndex]?.name ?? "",
    currentStepIndex: view.currentStepIndex,
    stepProgress: percentOnWire(view.stepPercent),
    steps: view.steps.map((step) =>
      create(CraftingStepSchema, {
        name: step.name,
        durationMs: step.durationMs,
        status: stepStatusToWire[step.status],
        progressPercent: percentOnWire(step.percent),
      }),
    ),
    timestampMs: BigInt(Math.floor(nowMs)),
  });
}

/**
 * The clock a client extrapolates progress from between frames; with the
 * planned steps, its total too (an update's clock leaves the total to the
 * snapshot).
 */
export function clockMessage(clock: SessionClock, steps?: readonly PlannedStep[]): ProgressClock {
  return create(ProgressClockSchema, {
    anchorAtMs: BigInt(Math.floor(clock.anchorAtMs)),
    anchorElapsedMs: Math.round(clock.anchorElapsedMs),
    rate: clock.rate,
    running: clock.running,
    totalDurationMs: steps ? totalDurationMs(steps) : 0,
  });
}

/** The full session state, with progress computed at `nowMs`. */
export function sessionStateMessage(state: Session, nowMs: number): SessionStateMessage {
  const progress = progressMessage(state, nowMs);
  return create(SessionStateSchema, {
    sessionId: state.sessionId,
    playerId: state.playerId,
    recipeId: state.recipeId,
    workflowId: state.workflowId ?? "",
    status: sessionStatusToWire[state.status],
    steps: progress.steps,
    createdAtMs: BigInt(state.createdAtMs),
    startedAtMs: BigInt(state.startedAtMs ?? 0),
    endedAtMs: BigInt(state.endedAtMs ?? 0),
    pausedAtMs: BigInt(state.pausedAtMs ?? 0),
    pausedTotalMs: BigInt(state.pausedTotalMs),
    clock: clockMessage(state.clock, state.steps),
    progress,
    failureReason: state.failureReason ?? "",
    materials: state.materials.map((m) =>
      create(MaterialRequirementSchema, {
        materialId: m.materialId,
        required: m.required,
        available: m.available,
      }),
    ),
    epoch: state.epoch,
    seq: state.seq,
  });
}

/**
 * The update subscribers get when the session changes: only what a change
 * can move — the status (when it changed), the clock, the cause, a failure reason. The plan
 * (steps, total duration) and the progress view are in the snapshot; a
 * client computes progress from the clock (session-merge.ts), so an update
 * is ~180 bytes of JSON and ~50 of binary instead of the whole view.
 */
export function sessionUpdateMessage(
  state: Session,
  cause: string,
  statusChanged = true,
): SessionUpdate {
  return create(SessionUpdateSchema, {
    // Unspecified (left out) when the status did not change: a correction moves the clock only.
    status: statusChanged ? sessionStatusToWire[state.status] : SessionStatusEnum.UNSPECIFIED,
    clock: clockMessage(state.clock),
    cause,
    failureReason: state.failureReason ?? "",
  });
}

/** The notification subscribers get when the session's materials change. */
export function materialNotificationMessage(
  state: Session,
  changes: readonly MaterialChange[],
  nowMs: number,
): MaterialNotification {
  return create(MaterialNotificationSchema, {
    sessionId: state.sessionId,
    playerId: state.playerId,
    changes: changes.map((change) => create(MaterialChangeSchema, change)),
    allAvailable: allAvailable(state.materials),
    timestampMs: BigInt(Math.floor(nowMs)),
  });
}

/** Where a session stands, as a minimal answer: `{"sessionId","epoch","seq"}` (proto3 JSON names). */
export function minimalJson(state: Session, changed = true): string {
  const where = `"sessionId":${JSON.stringify(state.sessionId)},"epoch":${state.epoch},"seq":${state.seq}`;
  return changed ? `{${where}}` : `{${where},"changed":false}`;
}
