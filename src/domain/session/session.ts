/**
 * A crafting session as plain data: its plan, its status, the clock its
 * progress is computed from, its materials, and the (epoch, seq) a client
 * uses to tell "I missed nothing" from "I must resync".
 */
import type { MaterialRequirementInput, MaterialState } from "../materials/materials";

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
export interface Session {
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

/** How far ahead of the server clock a sender's observation time may be (its clock's drift). */
export const MAX_CLOCK_SKEW_MS = 60_000;

/**
 * A reading's time (`as_of_ms`) taken further ahead of `nowMs` than the
 * sender's clock may drift: refused, worded `as_of_ms` + `FUTURE_READING`.
 */
export function fromTheFuture(asOfMs: number, nowMs: number): boolean {
  return asOfMs > nowMs + MAX_CLOCK_SKEW_MS;
}
export const FUTURE_READING = "lies more than a minute in the future; check the sender's clock";

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
  /**
   * When the reading was taken (ms since the epoch), if the sender said:
   * the clock is placed then, and a reading older than the clock's anchor
   * is stale (a retry or a reordered update) and changes nothing.
   */
  asOfMs?: number;
}

/** A rule a correction's field keeps, and how a refusal words it after the field's name. */
export interface FieldRule {
  holds(value: number): boolean;
  rule: string;
}

/** A percentage: of the whole session, or of a step. */
const PERCENT: FieldRule = {
  holds: (percent) => percent >= 0 && percent <= 100,
  rule: "must be between 0 and 100",
};

/**
 * The range each number of a correction keeps whatever the session: a
 * sender's input is checked against these with its other fields, before
 * the session is asked (so one refusal names them all); the session's own
 * bounds (an index among its steps, a time within its plan) are judged
 * after, by the session (`correct`).
 */
export const CORRECTION_RANGES = {
  elapsedMs: { holds: (ms) => ms >= 0, rule: "must not be negative" },
  progressPercent: PERCENT,
  stepIndex: {
    holds: (index) => Number.isInteger(index) && index >= 0,
    rule: "must be a whole number, 0 or more (the step's index)",
  },
  stepProgressPercent: PERCENT,
  rate: {
    holds: (rate) => rate > 0 && rate <= 100,
    rule: "must be greater than 0 and at most 100",
  },
} as const satisfies Record<Exclude<keyof ProgressCorrection, "asOfMs">, FieldRule>;

const FINAL_STATUSES: ReadonlySet<SessionStatus> = new Set(["completed", "failed", "cancelled"]);

/** True once a session can no longer change. */
export function isFinal(status: SessionStatus): boolean {
  return FINAL_STATUSES.has(status);
}

/**
 * Whether two sessions hold the same thing, seq aside (a re-fold may rebuild
 * what is held). Field by field over the plain data, so a field added to
 * `Session` is compared without anyone remembering to.
 */
export function sameSession(a: Session, b: Session): boolean {
  return samePlainData({ ...a, seq: 0 }, { ...b, seq: 0 });
}

/** Deep equality of plain data (objects, arrays, primitives). */
function samePlainData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  return keysA.every(
    (key) =>
      Object.hasOwn(b, key) &&
      samePlainData((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
  );
}
