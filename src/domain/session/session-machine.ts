/**
 * The crafting session as a pure state machine: `transition(state, input)`
 * returns the next state and the effects to carry out, as plain data.
 * No `cloudflare:*` imports: every rule here is unit-tested in plain Node.
 */
import type { ServiceError } from "../../errors";
import {
  applyMaterialChanges,
  initialMaterials,
  type MaterialChange,
  type MaterialRequirementInput,
  type MaterialState,
  sameRequirements,
} from "../materials/materials";

// ─── State ──────────────────────────────────────────────────────────────────

/** Lifecycle status of a session. */
export type SessionStatus = "queued" | "active" | "paused" | "completed" | "failed" | "cancelled";

/** A lifecycle command, as crafting-service or a bridged event sends it. */
export type LifecycleAction = "start" | "pause" | "resume" | "complete" | "fail" | "cancel";

/** Status of one step, derived from the clock. */
export type StepStatus = "pending" | "active" | "paused" | "completed" | "failed" | "cancelled";

/** A step as planned by crafting-service. */
export interface PlannedStep {
  name: string;
  durationMs: number;
}

/**
 * The session clock. Elapsed crafting time at `now` is
 * `anchorElapsedMs + (running ? rate * (now - anchorAtMs) : 0)`, capped at the
 * total duration. Every transition re-anchors it, so pauses and corrections
 * never need a timer and clients can compute the same value between updates.
 */
export interface SessionClock {
  anchorAtMs: number;
  anchorElapsedMs: number;
  rate: number;
  running: boolean;
}

/** The authoritative state of one crafting session. */
export interface SessionState {
  sessionId: string;
  playerId: string;
  recipeId: string;
  workflowId: string | null;
  status: SessionStatus;
  steps: PlannedStep[];
  createdAtMs: number;
  startedAtMs: number | null;
  endedAtMs: number | null;
  pausedAtMs: number | null;
  pausedTotalMs: number;
  clock: SessionClock;
  failureReason: string | null;
  /** What the recipe requires and how much of it the player has. */
  materials: readonly MaterialState[];
  /** Chosen at creation; a client holding another epoch must resync. */
  epoch: number;
  /** Increases by one with every change, starting at 1 on creation. */
  seq: number;
}

/** What crafting-service sends to create a session. */
export interface CreateSessionParams {
  sessionId: string;
  playerId: string;
  recipeId: string;
  workflowId: string | null;
  steps: PlannedStep[];
  materials: MaterialRequirementInput[];
}

/**
 * An explicit progress correction from crafting-service. Exactly one of
 * `elapsedMs`, `progressPercent` or `stepIndex` (with `stepProgressPercent`)
 * places the clock; `rate` alone changes the crafting speed.
 */
export interface ProgressCorrection {
  elapsedMs?: number;
  progressPercent?: number;
  stepIndex?: number;
  stepProgressPercent?: number;
  rate?: number;
}

/** One input to the state machine; `atMs` is the server clock when it arrived. */
export type SessionInput =
  | { type: "create"; params: CreateSessionParams; epoch: number; atMs: number }
  | { type: "lifecycle"; action: LifecycleAction; reason?: string; atMs: number }
  | { type: "progress"; correction: ProgressCorrection; atMs: number }
  /** Several corrections applied together: all or none, one new seq. */
  | { type: "progress_batch"; corrections: ProgressCorrection[]; atMs: number }
  /** Material availability crafting-service observed at `asOfMs`. */
  | { type: "materials"; changes: MaterialChange[]; asOfMs: number; atMs: number };

/** Work the Durable Object carries out after a transition, in order. */
export type SessionEffect =
  /** Persist the new state and its replay-log entry in one transaction. */
  | { type: "persist" }
  /** Send the update for the new seq to every subscriber. */
  | { type: "broadcast"; cause: string }
  /** Send a material notification of these changes to every subscriber. */
  | { type: "notify_materials"; changes: MaterialChange[] }
  /** Close every subscriber: the session reached a final state. */
  | { type: "close_all"; reason: string };

/** The outcome of a transition: an expected error is data, never thrown. */
export type TransitionResult =
  | { ok: true; state: SessionState; effects: SessionEffect[] }
  | { ok: false; error: ServiceError };

// ─── Rules ──────────────────────────────────────────────────────────────────

const FINAL_STATUSES: ReadonlySet<SessionStatus> = new Set(["completed", "failed", "cancelled"]);

/** The status each lifecycle action leads to, from each status it is legal in. */
const LEGAL: Record<LifecycleAction, { from: readonly SessionStatus[]; to: SessionStatus }> = {
  start: { from: ["queued"], to: "active" },
  pause: { from: ["active"], to: "paused" },
  resume: { from: ["paused"], to: "active" },
  complete: { from: ["active"], to: "completed" },
  fail: { from: ["queued", "active", "paused"], to: "failed" },
  cancel: { from: ["queued", "active", "paused"], to: "cancelled" },
};

/** True once a session can no longer change. */
export function isFinal(status: SessionStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/** Sum of the planned step durations. */
export function totalDurationMs(steps: readonly PlannedStep[]): number {
  let total = 0;
  for (const step of steps) total += step.durationMs;
  return total;
}

/** Elapsed crafting time at `nowMs`, from the clock alone. */
export function elapsedAt(state: SessionState, nowMs: number): number {
  const total = totalDurationMs(state.steps);
  if (state.status === "completed") return total;
  const { anchorAtMs, anchorElapsedMs, rate, running } = state.clock;
  const elapsed = anchorElapsedMs + (running ? rate * Math.max(0, nowMs - anchorAtMs) : 0);
  return Math.min(total, Math.max(0, elapsed));
}

/** Progress of a session at an instant, as a client renders it. */
export interface ProgressView {
  elapsedMs: number;
  remainingMs: number;
  totalMs: number;
  percent: number;
  currentStepIndex: number;
  stepPercent: number;
  steps: { name: string; durationMs: number; status: StepStatus; percent: number }[];
}

/** Computes progress at `nowMs` from the clock, the steps and the status. */
export function progressAt(state: SessionState, nowMs: number): ProgressView {
  const totalMs = totalDurationMs(state.steps);
  const elapsedMs = elapsedAt(state, nowMs);
  // The current step is the first whose end lies after the elapsed time; once
  // everything has elapsed it stays the last step (at 100 %).
  const lastIndex = Math.max(0, state.steps.length - 1);
  let currentStepIndex = lastIndex;
  let stepStart = totalMs - (state.steps[lastIndex]?.durationMs ?? 0);
  let start = 0;
  for (const [i, step] of state.steps.entries()) {
    if (elapsedMs < start + step.durationMs) {
      currentStepIndex = i;
      stepStart = start;
      break;
    }
    start += step.durationMs;
  }
  const currentDuration = state.steps[currentStepIndex]?.durationMs ?? 0;
  const stepPercent =
    currentDuration > 0 ? Math.min(100, ((elapsedMs - stepStart) / currentDuration) * 100) : 100;
  const currentStatus = currentStepStatus(state.status);
  const steps = state.steps.map((step, i) => {
    if (state.status === "completed" || i < currentStepIndex) {
      return { ...step, status: "completed" as const, percent: 100 };
    }
    if (i > currentStepIndex) return { ...step, status: "pending" as const, percent: 0 };
    return { ...step, status: currentStatus, percent: stepPercent };
  });
  return {
    elapsedMs,
    remainingMs: totalMs - elapsedMs,
    totalMs,
    percent: totalMs > 0 ? (elapsedMs / totalMs) * 100 : 100,
    currentStepIndex,
    stepPercent: state.status === "completed" ? 100 : stepPercent,
    steps,
  };
}

function currentStepStatus(status: SessionStatus): StepStatus {
  switch (status) {
    case "queued":
      return "pending";
    case "active":
      return "active";
    case "paused":
      return "paused";
    case "completed":
      return "completed";
    case "failed":
      return "failed";
    case "cancelled":
      return "cancelled";
  }
}

// ─── Transitions ────────────────────────────────────────────────────────────

/** Applies one input to a session (or to no session yet) and says what to do. */
export function transition(state: SessionState | null, input: SessionInput): TransitionResult {
  if (input.type === "create") return create(state, input);
  if (!state) return error("not_found", "no crafting session with this id");
  switch (input.type) {
    case "lifecycle":
      return lifecycle(state, input.action, input.atMs, input.reason);
    case "progress":
      return correct(state, input.correction, input.atMs);
    case "progress_batch":
      return correctAll(state, input.corrections, input.atMs);
    case "materials":
      return materialsChanged(state, input.changes, input.asOfMs);
  }
}

function create(
  state: SessionState | null,
  input: Extract<SessionInput, { type: "create" }>,
): TransitionResult {
  const { params, atMs, epoch } = input;
  if (state) {
    // crafting-service retries a create it did not see answered: the same
    // request is idempotent, a different one under the same id is a conflict.
    if (sameParams(state, params)) return { ok: true, state, effects: [] };
    return error("already_exists", "a different crafting session already has this id");
  }
  return {
    ok: true,
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
    effects: [{ type: "persist" }],
  };
}

function sameParams(state: SessionState, params: CreateSessionParams): boolean {
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
  state: SessionState,
  action: LifecycleAction,
  atMs: number,
  reason: string | undefined,
): TransitionResult {
  const rule = LEGAL[action];
  if (!rule.from.includes(state.status)) {
    return error("failed_precondition", `cannot ${action} a session that is ${state.status}`);
  }
  const elapsedMs = elapsedAt(state, atMs);
  const next: SessionState = { ...state, status: rule.to, seq: state.seq + 1 };
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
  const effects: SessionEffect[] = [{ type: "persist" }, { type: "broadcast", cause: action }];
  if (isFinal(next.status)) effects.push({ type: "close_all", reason: `session ${next.status}` });
  return { ok: true, state: next, effects };
}

function correct(
  state: SessionState,
  correction: ProgressCorrection,
  atMs: number,
): TransitionResult {
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
  const totalMs = totalDurationMs(state.steps);
  let elapsedMs = elapsedAt(state, atMs);
  if (correction.elapsedMs !== undefined) {
    if (correction.elapsedMs < 0 || correction.elapsedMs > totalMs) {
      return error("invalid_argument", `elapsed_ms must be between 0 and ${totalMs}`);
    }
    elapsedMs = correction.elapsedMs;
  } else if (correction.progressPercent !== undefined) {
    if (!(correction.progressPercent >= 0 && correction.progressPercent <= 100)) {
      return error("invalid_argument", "progress_percent must be between 0 and 100");
    }
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
    if (!(stepPercent >= 0 && stepPercent <= 100)) {
      return error("invalid_argument", "step_progress must be between 0 and 100");
    }
    elapsedMs =
      totalDurationMs(state.steps.slice(0, index)) + (step.durationMs * stepPercent) / 100;
  }
  const rate = correction.rate ?? state.clock.rate;
  if (!(rate > 0 && rate <= 100)) {
    return error("invalid_argument", "rate must be greater than 0 and at most 100");
  }
  return {
    ok: true,
    state: {
      ...state,
      seq: state.seq + 1,
      clock: { anchorAtMs: atMs, anchorElapsedMs: elapsedMs, rate, running: state.clock.running },
    },
    effects: [{ type: "persist" }, { type: "broadcast", cause: "progress" }],
  };
}

/**
 * Corrections in order, as one change: the first refused one refuses them
 * all (its index is named), so the session never shows half a batch.
 */
function correctAll(
  state: SessionState,
  corrections: readonly ProgressCorrection[],
  atMs: number,
): TransitionResult {
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
  return {
    ok: true,
    state: { ...next, seq: state.seq + 1 },
    effects: [{ type: "persist" }, { type: "broadcast", cause: "progress" }],
  };
}

/**
 * Material availability changes. A change to what the player has is a new
 * seq with a notification; a restatement only moves the observation time
 * (persisted, nobody told); an ended session takes none.
 */
function materialsChanged(
  state: SessionState,
  changes: MaterialChange[],
  asOfMs: number,
): TransitionResult {
  if (isFinal(state.status)) {
    return error(
      "failed_precondition",
      `cannot change materials of a session that is ${state.status}`,
    );
  }
  const result = applyMaterialChanges(state.materials, changes, asOfMs);
  if (result.materials === state.materials) return { ok: true, state, effects: [] };
  if (result.applied.length === 0) {
    return {
      ok: true,
      state: { ...state, materials: result.materials },
      effects: [{ type: "persist" }],
    };
  }
  return {
    ok: true,
    state: { ...state, materials: result.materials, seq: state.seq + 1 },
    effects: [{ type: "persist" }, { type: "notify_materials", changes: result.applied }],
  };
}

function error(code: ServiceError["code"], message: string): TransitionResult {
  return { ok: false, error: { code, message } };
}
