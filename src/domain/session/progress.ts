/**
 * The session clock: progress at any instant, computed from the clock, the
 * planned steps and the status, so nothing needs to tick between updates.
 */
import type { PlannedStep, Session, SessionClock, SessionStatus, StepStatus } from "./session";

/** Sum of the planned step durations. */
export function totalDurationMs(steps: readonly PlannedStep[]): number {
  let total = 0;
  for (const step of steps) total += step.durationMs;
  return total;
}

/** Crafting time a clock says has elapsed at `nowMs` (not capped at the plan). */
export function clockElapsedMs(clock: SessionClock, nowMs: number): number {
  const { anchorAtMs, anchorElapsedMs, rate, running } = clock;
  return anchorElapsedMs + (running ? rate * Math.max(0, nowMs - anchorAtMs) : 0);
}

/** Elapsed crafting time at `nowMs`, from the clock alone. */
export function elapsedAt(state: Session, nowMs: number): number {
  const total = totalDurationMs(state.steps);
  if (state.status === "completed") return total;
  return Math.min(total, Math.max(0, clockElapsedMs(state.clock, nowMs)));
}

/**
 * How far a session's expected finish may move before a view that follows
 * its clock (the player's queue, a workflow's steps) takes the change: a
 * correction within this agrees with the plan, so it changes nothing such
 * a view shows, and its object stores and sends nothing for it.
 */
export const CLOCK_TOLERANCE_MS = 1000;

/** Crafting time still to go on `clock` at `nowMs` (ms of wall time at its rate), of `plannedMs`. */
export function remainingWallMs(clock: SessionClock, plannedMs: number, nowMs: number): number {
  const elapsed = clockElapsedMs(clock, nowMs);
  return Math.max(0, plannedMs - Math.min(plannedMs, elapsed)) / (clock.rate > 0 ? clock.rate : 1);
}

/**
 * Whether two clocks of one session keep the same course: both running or
 * both not, at one rate, and their expected finishes at `nowMs` less than
 * `CLOCK_TOLERANCE_MS` apart (so they stay that close from then on).
 */
export function sameCourse(
  held: SessionClock,
  next: SessionClock,
  plannedMs: number,
  nowMs: number,
): boolean {
  return (
    held.running === next.running &&
    held.rate === next.rate &&
    Math.abs(remainingWallMs(held, plannedMs, nowMs) - remainingWallMs(next, plannedMs, nowMs)) <
      CLOCK_TOLERANCE_MS
  );
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
export function progressAt(state: Session, nowMs: number): ProgressView {
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
