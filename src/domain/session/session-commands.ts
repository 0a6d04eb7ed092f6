/**
 * The rules of each command on a session — create, lifecycle, progress
 * corrections, material reports — as pure functions. A command says what it
 * changed; it never assigns `seq` nor decides effects: `transition`
 * (session-machine.ts) does both, the same way for every input.
 */
import type { ServiceError } from "../../errors";
import {
  applyMaterialChanges,
  initialMaterials,
  type MaterialChange,
  type MaterialOutcome,
  sameRequirements,
} from "../materials/materials";
import { elapsedAt, totalDurationMs } from "./progress";
import {
  CORRECTION_RANGES,
  type CreateSessionParams,
  FUTURE_READING,
  fromTheFuture,
  isFinal,
  type LifecycleAction,
  type ProgressCorrection,
  type Session,
  type SessionStatus,
} from "./session";

/** A command, as crafting-service (HTTP) or a bridged event asks it; `atMs` is when it takes effect. */
export type SessionCommand =
  | { type: "create"; params: CreateSessionParams; epoch: number; atMs: number }
  | { type: "lifecycle"; action: LifecycleAction; reason?: string; atMs: number }
  | { type: "progress"; correction: ProgressCorrection; atMs: number }
  /** Several corrections applied together: all or none, one change. */
  | { type: "progress_batch"; corrections: ProgressCorrection[]; atMs: number }
  /** Material availability crafting-service observed at `asOfMs`. */
  | { type: "materials"; changes: MaterialChange[]; asOfMs: number; atMs: number };

/**
 * What a command changed: nothing (a repeated create, a report of nothing
 * new); something only stored (a restated material moves its observation
 * time); the session's creation; what clients see (an update, with its
 * cause); or the player's materials (a notification of these changes).
 */
export type Change =
  | { kind: "none" }
  | { kind: "stored" }
  | { kind: "created" }
  | { kind: "update"; cause: string }
  | { kind: "materials"; changes: MaterialChange[] };

/** A command's result: the next session and its change, or the expected error as data. */
export type CommandResult =
  | { ok: true; state: Session; change: Change; outcomes?: MaterialOutcome[] }
  | { ok: false; error: ServiceError };

/** The status each lifecycle action leads to, from each status it is legal in. */
const LEGAL: Record<LifecycleAction, { from: readonly SessionStatus[]; to: SessionStatus }> = {
  start: { from: ["queued"], to: "active" },
  pause: { from: ["active"], to: "paused" },
  resume: { from: ["paused"], to: "active" },
  complete: { from: ["active"], to: "completed" },
  fail: { from: ["queued", "active", "paused"], to: "failed" },
  cancel: { from: ["queued", "active", "paused"], to: "cancelled" },
};

/** Applies one command to a session (or to no session yet). */
export function applyCommand(state: Session | null, command: SessionCommand): CommandResult {
  if (command.type === "create") return create(state, command);
  if (!state) return error("not_found", "no crafting session with this id");
  switch (command.type) {
    case "lifecycle":
      return lifecycle(state, command.action, command.atMs, command.reason);
    case "progress":
      return correct(state, command.correction, command.atMs);
    case "progress_batch":
      return correctAll(state, command.corrections, command.atMs);
    case "materials":
      return materialsChanged(state, command.changes, command.asOfMs);
  }
}

function create(
  state: Session | null,
  command: Extract<SessionCommand, { type: "create" }>,
): CommandResult {
  const { params, atMs, epoch } = command;
  if (state) {
    // crafting-service retries a create it did not see answered: the same
    // request is idempotent, a different one under the same id is a conflict.
    if (sameParams(state, params)) return { ok: true, state, change: { kind: "none" } };
    return error("already_exists", "a different crafting session already has this id");
  }
  return {
    ok: true,
    change: { kind: "created" },
    state: {
      sessionId: params.sessionId,
      playerId: params.playerId,
      recipeId: params.recipeId,
      workflowId: params.workflowId,
      status: "queued",
      steps: params.steps.map((step) => ({ name: step.name, durationMs: step.durationMs })),
      createdAtMs: atMs,
      startedAtMs: null,
      endedAtMs: null,
      pausedAtMs: null,
      pausedTotalMs: 0,
      clock: { anchorAtMs: atMs, anchorElapsedMs: 0, rate: 1, running: false },
      failureReason: null,
      materials: initialMaterials(params.materials),
      epoch,
      seq: 1,
    },
  };
}

function sameParams(state: Session, params: CreateSessionParams): boolean {
  return (
    state.playerId === params.playerId &&
    state.recipeId === params.recipeId &&
    state.workflowId === params.workflowId &&
    sameRequirements(state.materials, params.materials) &&
    state.steps.length === params.steps.length &&
    state.steps.every(
      (step, i) =>
        step.name === params.steps[i]?.name && step.durationMs === params.steps[i]?.durationMs,
    )
  );
}

function lifecycle(
  state: Session,
  action: LifecycleAction,
  atMs: number,
  reason: string | undefined,
): CommandResult {
  const rule = LEGAL[action];
  // Already where the action leads (a retry whose answer was lost, or a
  // second caller): the same answer, and nothing changes — no seq, no
  // update, the first reason kept. Like a repeated create.
  if (state.status === rule.to) return { ok: true, state, change: { kind: "none" } };
  if (!rule.from.includes(state.status)) {
    return error("failed_precondition", `cannot ${action} a session that is ${state.status}`);
  }
  const elapsedMs = elapsedAt(state, atMs);
  const next: Session = { ...state, status: rule.to };
  switch (action) {
    case "start":
      next.startedAtMs = atMs;
      next.clock = { ...state.clock, anchorAtMs: atMs, anchorElapsedMs: 0, running: true };
      break;
    case "pause":
      next.pausedAtMs = atMs;
      next.clock = { ...state.clock, anchorAtMs: atMs, anchorElapsedMs: elapsedMs, running: false };
      break;
    case "resume":
      next.pausedTotalMs = state.pausedTotalMs + Math.max(0, atMs - (state.pausedAtMs ?? atMs));
      next.pausedAtMs = null;
      next.clock = { ...state.clock, anchorAtMs: atMs, anchorElapsedMs: elapsedMs, running: true };
      break;
    case "complete":
    case "fail":
    case "cancel": {
      if (state.pausedAtMs !== null) {
        next.pausedTotalMs = state.pausedTotalMs + Math.max(0, atMs - state.pausedAtMs);
        next.pausedAtMs = null;
      }
      const finalElapsed = action === "complete" ? totalDurationMs(state.steps) : elapsedMs;
      next.endedAtMs = atMs;
      next.clock = {
        ...state.clock,
        anchorAtMs: atMs,
        anchorElapsedMs: finalElapsed,
        running: false,
      };
      if (action !== "complete") next.failureReason = reason ?? null;
      break;
    }
  }
  return { ok: true, state: next, change: { kind: "update", cause: action } };
}

function correct(state: Session, correction: ProgressCorrection, atMs: number): CommandResult {
  if (state.status !== "active" && state.status !== "paused") {
    return error(
      "failed_precondition",
      `cannot correct progress of a session that is ${state.status}`,
    );
  }
  const placed = [correction.elapsedMs, correction.progressPercent, correction.stepIndex].filter(
    (value) => value !== undefined,
  ).length;
  if (placed > 1) {
    return error(
      "invalid_argument",
      "give at most one of elapsed_ms, progress_percent or current_step_index",
    );
  }
  if (placed === 0 && correction.rate === undefined) {
    return error(
      "invalid_argument",
      "a progress correction needs elapsed_ms, progress_percent, current_step_index or rate",
    );
  }
  // A reading taken before the clock's anchor (a newer reading or a
  // transition came first): stale, the session stays as it is. One taken
  // "after now" (the sender's clock runs a little ahead) is placed now.
  if (correction.asOfMs !== undefined) {
    if (fromTheFuture(correction.asOfMs, atMs))
      return error("invalid_argument", `as_of_ms ${FUTURE_READING}`);
    if (correction.asOfMs < state.clock.anchorAtMs)
      return { ok: true, state, change: { kind: "none" } };
  }
  const takenAtMs = Math.min(correction.asOfMs ?? atMs, atMs);
  const totalMs = totalDurationMs(state.steps);
  let elapsedMs = elapsedAt(state, takenAtMs);
  if (correction.elapsedMs !== undefined) {
    if (correction.elapsedMs < 0 || correction.elapsedMs > totalMs) {
      return error("invalid_argument", `elapsed_ms must be between 0 and ${totalMs}`);
    }
    elapsedMs = correction.elapsedMs;
  } else if (correction.progressPercent !== undefined) {
    const { holds, rule } = CORRECTION_RANGES.progressPercent;
    if (!holds(correction.progressPercent))
      return error("invalid_argument", `progress_percent ${rule}`);
    elapsedMs = (totalMs * correction.progressPercent) / 100;
  } else if (correction.stepIndex !== undefined) {
    const index = correction.stepIndex;
    const step = state.steps[index];
    if (!Number.isInteger(index) || !step) {
      return error(
        "invalid_argument",
        `current_step_index must be between 0 and ${state.steps.length - 1}`,
      );
    }
    const stepPercent = correction.stepProgressPercent ?? 0;
    const { holds, rule } = CORRECTION_RANGES.stepProgressPercent;
    if (!holds(stepPercent)) return error("invalid_argument", `step_progress ${rule}`);
    elapsedMs =
      totalDurationMs(state.steps.slice(0, index)) + (step.durationMs * stepPercent) / 100;
  }
  const rate = correction.rate ?? state.clock.rate;
  if (!CORRECTION_RANGES.rate.holds(rate))
    return error("invalid_argument", `rate ${CORRECTION_RANGES.rate.rule}`);
  return {
    ok: true,
    state: {
      ...state,
      clock: {
        anchorAtMs: takenAtMs,
        anchorElapsedMs: elapsedMs,
        rate,
        running: state.clock.running,
      },
    },
    change: { kind: "update", cause: "progress" },
  };
}

/**
 * Corrections in order, as one change: the first refused one refuses them
 * all (its index is named), so the session never shows half a batch.
 */
function correctAll(
  state: Session,
  corrections: readonly ProgressCorrection[],
  atMs: number,
): CommandResult {
  if (corrections.length === 0)
    return error("invalid_argument", "a batch needs at least one update");
  let next = state;
  for (const [i, correction] of corrections.entries()) {
    const result = correct(next, correction, atMs);
    if (!result.ok) {
      const { code, message } = result.error;
      return error(
        code,
        `update ${i + 1} of ${corrections.length} for this session: ${message}; none of them were applied`,
      );
    }
    next = result.state;
  }
  // Every one stale: nothing changed.
  if (next === state) return { ok: true, state, change: { kind: "none" } };
  return { ok: true, state: next, change: { kind: "update", cause: "progress" } };
}

/**
 * Material availability changes. A change to what the player has is a
 * notification; a restatement only moves the observation time (stored,
 * nobody told); an ended session takes none. Each change's outcome is
 * returned in the order given.
 */
function materialsChanged(
  state: Session,
  changes: MaterialChange[],
  asOfMs: number,
): CommandResult {
  if (isFinal(state.status)) {
    return error(
      "failed_precondition",
      `cannot change materials of a session that is ${state.status}`,
    );
  }
  const result = applyMaterialChanges(state.materials, changes, asOfMs);
  const { outcomes } = result;
  if (result.materials === state.materials)
    return { ok: true, state, change: { kind: "none" }, outcomes };
  const next = { ...state, materials: result.materials };
  if (result.applied.length === 0)
    return { ok: true, state: next, change: { kind: "stored" }, outcomes };
  return {
    ok: true,
    state: next,
    change: { kind: "materials", changes: result.applied },
    outcomes,
  };
}

function error(code: ServiceError["code"], message: string): CommandResult {
  return { ok: false, error: { code, message } };
}
