/**
 * A session as a client holds it: the snapshot, with every update merged in
 * and the progress view recomputed from the clock at the frame's server
 * time — exactly as the server computes it (src/domain/session/progress.ts).
 * Used by the SDK and by the streaming RPCs, which answer seed 000's
 * progress fields with every update. Pure; no server code.
 */
import { create } from "@bufbuild/protobuf";
import { progressAt } from "../domain/session/progress";
import type { Session, SessionStatus, StepStatus } from "../domain/session/session";
import {
  type CraftingProgressUpdate,
  CraftingProgressUpdateSchema,
  CraftingStepSchema,
  type SessionState,
  SessionStateSchema,
  SessionStatus as SessionStatusEnum,
  type SessionUpdate,
  StepStatus as StepStatusEnum,
} from "../gen/crafting/v1/session_pb";

const STATUS: Partial<Record<SessionStatusEnum, SessionStatus>> = {
  [SessionStatusEnum.QUEUED]: "queued",
  [SessionStatusEnum.ACTIVE]: "active",
  [SessionStatusEnum.PAUSED]: "paused",
  [SessionStatusEnum.COMPLETED]: "completed",
  [SessionStatusEnum.FAILED]: "failed",
  [SessionStatusEnum.CANCELLED]: "cancelled",
};

const STEP_STATUS: Record<StepStatus, StepStatusEnum> = {
  pending: StepStatusEnum.PENDING,
  active: StepStatusEnum.ACTIVE,
  paused: StepStatusEnum.PAUSED,
  completed: StepStatusEnum.COMPLETED,
  failed: StepStatusEnum.FAILED,
  cancelled: StepStatusEnum.CANCELLED,
};

/** Seed 000's progress fields of a wire session at `serverTimeMs`, from its clock. */
export function progressOf(state: SessionState, serverTimeMs: number): CraftingProgressUpdate {
  const clock = state.clock;
  const session = {
    status: STATUS[state.status] ?? "queued",
    steps: state.steps.map((step) => ({ name: step.name, durationMs: step.durationMs })),
    clock: {
      anchorAtMs: Number(clock?.anchorAtMs ?? 0n),
      anchorElapsedMs: clock?.anchorElapsedMs ?? 0,
      rate: clock?.rate ?? 1,
      running: clock?.running ?? false,
    },
  } as Pick<Session, "status" | "steps" | "clock"> as Session;
  const view = progressAt(session, serverTimeMs);
  return create(CraftingProgressUpdateSchema, {
    sessionId: state.sessionId,
    progressPercent: view.percent,
    elapsedSeconds: view.elapsedMs / 1000,
    remainingSeconds: view.remainingMs / 1000,
    currentStep: session.steps[view.currentStepIndex]?.name ?? "",
    currentStepIndex: view.currentStepIndex,
    stepProgress: view.stepPercent,
    steps: view.steps.map((step) =>
      create(CraftingStepSchema, {
        name: step.name,
        durationMs: step.durationMs,
        status: STEP_STATUS[step.status],
        progressPercent: step.percent,
      }),
    ),
    timestampMs: BigInt(Math.floor(serverTimeMs)),
  });
}

/**
 * The session after `update` (a frame at `seq`, `serverTimeMs`): what the
 * update carries replaces what was held; the plan stays; progress and the
 * steps' statuses are recomputed.
 */
export function mergeUpdate(
  state: SessionState,
  update: SessionUpdate,
  seq: number,
  serverTimeMs: number,
): SessionState {
  const clock = update.clock
    ? {
        ...update.clock,
        // The plan's total is in the snapshot; updates leave it out (0).
        totalDurationMs: update.clock.totalDurationMs || state.clock?.totalDurationMs || 0,
      }
    : state.clock;
  const merged = create(SessionStateSchema, {
    ...state,
    status: update.status || state.status,
    failureReason: update.failureReason,
    seq,
    ...(clock ? { clock } : {}),
  });
  const progress = progressOf(merged, serverTimeMs);
  return { ...merged, progress, steps: progress.steps };
}
