/**
 * Validation of crafting-service's JSON bodies into domain inputs. Every
 * refusal names the field and the rule, so a caller can fix its request.
 */

import type {
  MaterialChange,
  MaterialOutcome,
  MaterialRequirementInput,
} from "../domain/materials/materials";
import type {
  CreateSessionParams,
  LifecycleAction,
  PlannedStep,
  ProgressCorrection,
} from "../domain/session/session";
import { AppError } from "../errors";

/** Ids of sessions, players, recipes and workflows: UUIDs and similar opaque keys. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
/** Limits on what a session may plan. */
export const SESSION_LIMITS = {
  maxSteps: 64,
  maxStepNameLength: 64,
  maxReasonLength: 256,
  /** The whole session: 7 days, so every duration fits a uint32 of ms on the wire. */
  maxTotalDurationMs: 7 * 24 * 60 * 60 * 1000,
  /** Materials one session may require, and changes in one report. */
  maxMaterials: 64,
  /** Quantities travel as uint32. */
  maxQuantity: 0xffffffff,
  /** How far ahead of the server clock an observation time may be. */
  maxClockSkewMs: 60_000,
} as const;

/** The lifecycle actions, as they appear in routes. */
export const LIFECYCLE_ACTIONS: readonly LifecycleAction[] = [
  "start",
  "pause",
  "resume",
  "complete",
  "fail",
  "cancel",
];

function invalid(message: string): AppError {
  return new AppError("invalid_argument", message);
}

function asObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw invalid(`${what} must be a JSON object`);
  return body as Record<string, unknown>;
}

/** Checks an id from a path or body. */
export function parseId(value: unknown, field: string): string {
  if (typeof value !== "string" || !ID_PATTERN.test(value)) {
    throw invalid(`${field} must be 1-64 characters of letters, digits, '_', '-', '.' or ':'`);
  }
  return value;
}

function quantity(value: unknown, field: string, optional = false): number | undefined {
  if (optional && (value === undefined || value === null)) return undefined;
  if (
    typeof value !== "number" ||
    !Number.isInteger(value) ||
    value < 0 ||
    value > SESSION_LIMITS.maxQuantity
  ) {
    throw invalid(`${field} must be a whole number from 0 to ${SESSION_LIMITS.maxQuantity}`);
  }
  return value;
}

/** A list of at most `maxMaterials` objects with distinct `material_id`s. */
function materialList(value: unknown, field: string): Record<string, unknown>[] {
  if (!Array.isArray(value) || value.length > SESSION_LIMITS.maxMaterials) {
    throw invalid(`${field} must be an array of at most ${SESSION_LIMITS.maxMaterials} materials`);
  }
  const seen = new Set<string>();
  return value.map((raw: unknown, i) => {
    const item = asObject(raw, `${field}[${i}]`);
    const id = parseId(item.material_id ?? item.materialId, `${field}[${i}].material_id`);
    if (seen.has(id)) throw invalid(`${field}[${i}].material_id ${id} appears twice`);
    seen.add(id);
    return { ...item, material_id: id };
  });
}

/** `materials: [{ material_id, required, available? }]` of a new session (camelCase accepted). */
export function parseRequirements(value: unknown): MaterialRequirementInput[] {
  if (value === undefined || value === null) return [];
  return materialList(value, "materials").map((item, i) => {
    const required = quantity(item.required, `materials[${i}].required`) as number;
    const available = quantity(item.available, `materials[${i}].available`, true);
    const requirement: MaterialRequirementInput = {
      materialId: item.material_id as string,
      required,
    };
    if (available !== undefined) requirement.available = available;
    return requirement;
  });
}

/** A material availability report: what changed, observed when. */
export interface MaterialReport {
  changes: MaterialChange[];
  /** When crafting-service observed the inventory (server clock if it did not say). */
  asOfMs: number;
}

/**
 * `POST .../materials` body: `{ changes: [{ material_id, quantity, available? }], as_of_ms? }`.
 * `available` defaults to `quantity > 0`; `as_of_ms` (ms since the epoch)
 * orders reports that arrive out of order, and may not lie more than a
 * minute ahead of the server clock.
 */
export function parseMaterialReport(body: unknown, nowMs: number): MaterialReport {
  const input = asObject(body, "the body");
  const list = materialList(input.changes, "changes");
  if (list.length === 0) throw invalid("changes must hold at least one change");
  const changes = list.map((item, i) => {
    const amount = quantity(item.quantity, `changes[${i}].quantity`) as number;
    const available = item.available ?? amount > 0;
    if (typeof available !== "boolean") throw invalid(`changes[${i}].available must be a boolean`);
    return { materialId: item.material_id as string, quantity: amount, available };
  });
  const asOf = input.as_of_ms ?? input.asOfMs;
  if (asOf === undefined || asOf === null) return { changes, asOfMs: nowMs };
  if (typeof asOf !== "number" || !Number.isSafeInteger(asOf) || asOf < 1) {
    throw invalid("as_of_ms must be a time in milliseconds since the Unix epoch");
  }
  if (asOf > nowMs + SESSION_LIMITS.maxClockSkewMs) {
    throw invalid("as_of_ms lies more than a minute in the future; check the sender's clock");
  }
  return { changes, asOfMs: asOf };
}

/** What became of each change of a report, as the routes answer it. */
export function materialResults(
  materialIds: readonly string[],
  outcomes: readonly MaterialOutcome[],
): { material_id: string; outcome: MaterialOutcome | undefined }[] {
  return materialIds.map((id, i) => ({ material_id: id, outcome: outcomes[i] }));
}

function optionalNumber(body: Record<string, unknown>, field: string): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value))
    throw invalid(`${field} must be a number`);
  return value;
}

/**
 * `POST /v1/sessions` body: `{ player_id, recipe_id, steps: [{ name, duration_ms }],
 * materials?: [{ material_id, required, available? }], session_id?, workflow_id? }`.
 */
export function parseCreateSession(body: unknown, newId: () => string): CreateSessionParams {
  const input = asObject(body, "the body");
  const steps = input.steps;
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > SESSION_LIMITS.maxSteps) {
    throw invalid(`steps must be an array of 1-${SESSION_LIMITS.maxSteps} steps`);
  }
  let total = 0;
  const planned: PlannedStep[] = steps.map((raw: unknown, i) => {
    const step = asObject(raw, `steps[${i}]`);
    const { name, duration_ms: durationMs } = step;
    if (
      typeof name !== "string" ||
      name.length === 0 ||
      name.length > SESSION_LIMITS.maxStepNameLength
    ) {
      throw invalid(
        `steps[${i}].name must be a string of 1-${SESSION_LIMITS.maxStepNameLength} characters`,
      );
    }
    if (typeof durationMs !== "number" || !Number.isInteger(durationMs) || durationMs < 1) {
      throw invalid(`steps[${i}].duration_ms must be a positive whole number of milliseconds`);
    }
    total += durationMs;
    return { name, durationMs };
  });
  if (total > SESSION_LIMITS.maxTotalDurationMs) {
    throw invalid(
      `the steps' durations add up to more than ${SESSION_LIMITS.maxTotalDurationMs} ms (7 days)`,
    );
  }
  return {
    sessionId: input.session_id === undefined ? newId() : parseId(input.session_id, "session_id"),
    playerId: parseId(input.player_id, "player_id"),
    recipeId: parseId(input.recipe_id, "recipe_id"),
    workflowId: input.workflow_id === undefined ? null : parseId(input.workflow_id, "workflow_id"),
    steps: planned,
    materials: parseRequirements(input.materials),
  };
}

/** Lifecycle body: optional `{ reason }` (used by fail and cancel). */
export function parseReason(body: unknown): string | undefined {
  const { reason } = asObject(body, "the body");
  if (reason === undefined || reason === null) return undefined;
  if (typeof reason !== "string" || reason.length > SESSION_LIMITS.maxReasonLength) {
    throw invalid(
      `reason must be a string of at most ${SESSION_LIMITS.maxReasonLength} characters`,
    );
  }
  return reason;
}

/**
 * Progress correction body: one of `elapsed_ms`, `progress_percent`, or
 * `current_step_index` with `step_progress`; and/or `rate`.
 */
export function parseCorrection(body: unknown): ProgressCorrection {
  const input = asObject(body, "the body");
  const correction: ProgressCorrection = {};
  const elapsedMs = optionalNumber(input, "elapsed_ms");
  const progressPercent = optionalNumber(input, "progress_percent");
  const stepIndex = optionalNumber(input, "current_step_index");
  const stepProgressPercent = optionalNumber(input, "step_progress");
  const rate = optionalNumber(input, "rate");
  if (elapsedMs !== undefined) correction.elapsedMs = elapsedMs;
  if (progressPercent !== undefined) correction.progressPercent = progressPercent;
  if (stepIndex !== undefined) correction.stepIndex = stepIndex;
  if (stepProgressPercent !== undefined) {
    if (stepIndex === undefined) throw invalid("step_progress needs current_step_index");
    correction.stepProgressPercent = stepProgressPercent;
  }
  if (rate !== undefined) correction.rate = rate;
  return correction;
}

/** Most updates in one batch. */
export const MAX_BATCH_UPDATES = 1000;

/** One session's share of a progress batch, with the updates' positions in the body. */
export interface SessionBatch {
  sessionId: string;
  corrections: ProgressCorrection[];
  indexes: number[];
}

/**
 * `POST /v1/progress` body: `{ updates: [{ session_id, ...correction }] }`,
 * grouped by session in body order. Any malformed update refuses the whole
 * batch (nothing is applied), naming its index.
 */
export function parseProgressBatch(body: unknown): SessionBatch[] {
  const { updates } = asObject(body, "the body");
  if (!Array.isArray(updates) || updates.length === 0 || updates.length > MAX_BATCH_UPDATES) {
    throw invalid(`updates must be an array of 1-${MAX_BATCH_UPDATES} progress updates`);
  }
  const bySession = new Map<string, SessionBatch>();
  updates.forEach((raw: unknown, i) => {
    try {
      const update = asObject(raw, "the update");
      const sessionId = parseId(update.session_id, "session_id");
      const { session_id: _, ...correction } = update;
      const batch = bySession.get(sessionId) ?? { sessionId, corrections: [], indexes: [] };
      batch.corrections.push(parseCorrection(correction));
      batch.indexes.push(i);
      bySession.set(sessionId, batch);
    } catch (e) {
      throw invalid(`updates[${i}]: ${e instanceof Error ? e.message : String(e)}`);
    }
  });
  return [...bySession.values()];
}
