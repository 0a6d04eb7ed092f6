/**
 * Validation of crafting-service's bodies into domain inputs, as valibot
 * schemas. Every refusal names the field and the rule, so a caller can fix
 * its request (src/http/valid.ts).
 */
import * as v from "valibot";
import { ID_PATTERN, ID_RULE } from "../domain/ids";
import type { MaterialChange, MaterialOutcome } from "../domain/materials/materials";
import type { LocationHint } from "../domain/placement/placement";
import {
  type CreateSessionParams,
  FUTURE_READING,
  fromTheFuture,
  type LifecycleAction,
  type PlannedStep,
} from "../domain/session/session";
import { EVERY_FIELD, fields, int64Number, isObject, parse, wholeNumber } from "../http/valid";
import { regionField } from "./placement";

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

// --- Schemas -----------------------------------------------------------------

/** An id from a path or a body. */
export const idSchema = v.pipe(v.string(ID_RULE), v.regex(ID_PATTERN, ID_RULE));

const OBJECT_RULE = "must be a JSON object";
export const BODY_RULE = "the body must be a JSON object";
const QUANTITY_RULE = `must be a whole number from 0 to ${SESSION_LIMITS.maxQuantity}`;
const quantity = wholeNumber(0, SESSION_LIMITS.maxQuantity, QUANTITY_RULE);

/**
 * A list of at most `maxMaterials` objects (camelCase accepted) with distinct
 * `material_id`s.
 */
function materialList<E extends v.ObjectEntries>(entries: E) {
  const rule = `must be an array of at most ${SESSION_LIMITS.maxMaterials} materials`;
  // Each item says its first broken rule only, as every field does
  // (src/http/valid.ts); the list's own pipe goes on past a refused item,
  // so a repeated material is said beside the items' faults.
  const item = v.config(fields({ material_id: idSchema, ...entries }, OBJECT_RULE), EVERY_FIELD);
  const list = v.pipe(
    v.array(item, rule),
    v.maxLength(SESSION_LIMITS.maxMaterials, rule),
    v.rawCheck(({ dataset, addIssue }) => {
      // Not typed when an item is refused: its id is read if it is a string.
      if (!Array.isArray(dataset.value)) return;
      const seen = new Set<string>();
      for (const [i, material] of (dataset.value as unknown[]).entries()) {
        const id = isObject(material) ? material.material_id : undefined;
        if (typeof id !== "string") continue;
        if (seen.has(id)) {
          addIssue({
            message: `${id} appears twice`,
            path: [
              { type: "array", origin: "value", input: dataset.value, key: i, value: material },
              // Not the parsed item (valibot's copy, which no longer knows the
              // names it was sent under): an object without the field, so the
              // field is named as the body writes its fields (`materialId`).
              { type: "object", origin: "value", input: {}, key: "material_id", value: id },
            ],
          });
          return;
        }
        seen.add(id);
      }
    }),
  );
  return v.config(list, { abortPipeEarly: false });
}

/** A session's material requirements, left out as none. */
export const requirements = v.nullish(
  materialList({ required: quantity, available: v.nullish(quantity) }),
  [],
);

const NAME_RULE = `must be a string of 1-${SESSION_LIMITS.maxStepNameLength} characters`;
/** A step's name: a session's, or a workflow's. */
export const stepName = v.pipe(
  v.string(NAME_RULE),
  v.minLength(1, NAME_RULE),
  v.maxLength(SESSION_LIMITS.maxStepNameLength, NAME_RULE),
);
const STEPS_RULE = `must be an array of 1-${SESSION_LIMITS.maxSteps} steps`;
const step = fields(
  {
    name: stepName,
    duration_ms: wholeNumber(
      1,
      Number.MAX_SAFE_INTEGER,
      "must be a positive whole number of milliseconds",
    ),
  },
  OBJECT_RULE,
);
/** A session's planned steps, within the session's limits. */
export const sessionSteps = v.pipe(
  v.array(step, STEPS_RULE),
  v.minLength(1, STEPS_RULE),
  v.maxLength(SESSION_LIMITS.maxSteps, STEPS_RULE),
  v.check(
    (list) =>
      list.reduce((total, s) => total + s.duration_ms, 0) <= SESSION_LIMITS.maxTotalDurationMs,
    `must not add up to more than ${SESSION_LIMITS.maxTotalDurationMs} ms (7 days)`,
  ),
);

const createSession = fields(
  {
    session_id: v.nullish(idSchema),
    player_id: idSchema,
    recipe_id: idSchema,
    steps: sessionSteps,
    workflow_id: v.nullish(idSchema),
    materials: requirements,
    region: regionField,
  },
  BODY_RULE,
);

const REASON_RULE = `must be a string of at most ${SESSION_LIMITS.maxReasonLength} characters`;
const reasonBody = fields(
  {
    reason: v.nullish(
      v.pipe(v.string(REASON_RULE), v.maxLength(SESSION_LIMITS.maxReasonLength, REASON_RULE)),
    ),
  },
  BODY_RULE,
);

const AS_OF_RULE = "must be a time in milliseconds since the Unix epoch";
/**
 * When a reading was taken: ms since the epoch, a number or proto3 JSON's
 * int64 string, not further ahead of this clock than a sender's may drift
 * (said with the body's other faults; the session judges it again by its own).
 */
export const asOfMs = v.nullish(
  v.pipe(
    int64Number(AS_OF_RULE),
    v.check((ms) => !fromTheFuture(ms, Date.now()), FUTURE_READING),
  ),
);
const materialReport = fields(
  {
    changes: v.pipe(
      materialList({
        quantity,
        available: v.nullish(v.boolean("must be a boolean")),
      }),
      v.minLength(1, "must hold at least one change"),
    ),
    as_of_ms: asOfMs,
  },
  BODY_RULE,
);

// --- Parsers -----------------------------------------------------------------

/** Checks an id from a path or body. */
export function parseId(value: unknown, field: string): string {
  return parse(idSchema, value, field);
}

/** A new session's requirements, as the domain takes them, from `requirements`. */
export function requirementsOf(
  list: v.InferOutput<typeof requirements>,
): CreateSessionParams["materials"] {
  return list.map((m) =>
    m.available == null
      ? { materialId: m.material_id, required: m.required }
      : { materialId: m.material_id, required: m.required, available: m.available },
  );
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
  const report = parse(materialReport, body);
  const changes = report.changes.map((item) => ({
    materialId: item.material_id,
    quantity: item.quantity,
    available: item.available ?? item.quantity > 0,
  }));
  return { changes, asOfMs: report.as_of_ms ?? nowMs };
}

/** What became of each change of a report, as the routes answer it. */
export function materialResults(
  materialIds: readonly string[],
  outcomes: readonly MaterialOutcome[],
): { material_id: string; outcome: MaterialOutcome | undefined }[] {
  return materialIds.map((id, i) => ({ material_id: id, outcome: outcomes[i] }));
}

/**
 * `POST /v1/sessions` body: `{ player_id, recipe_id, steps: [{ name, duration_ms }],
 * materials?: [{ material_id, required, available? }], session_id?, workflow_id?,
 * region? }` (or proto3 JSON's camelCase names): the session to create, and the location hint it names
 * (`region`, for the object's placement; null when none). `at`: where the
 * body sits in a larger record (a bridged event's `payload`), its fields named from there.
 */
export function parseCreateRequest(
  body: unknown,
  newId: () => string,
  at?: string,
): { params: CreateSessionParams; region: LocationHint | null } {
  const input = parse(createSession, body, at);
  return {
    params: {
      sessionId: input.session_id ?? newId(),
      playerId: input.player_id,
      recipeId: input.recipe_id,
      workflowId: input.workflow_id ?? null,
      steps: plannedSteps(input.steps),
      materials: requirementsOf(input.materials),
    },
    region: input.region ?? null,
  };
}

/** A session's steps, as the domain plans them, from `sessionSteps`. */
export function plannedSteps(list: v.InferOutput<typeof sessionSteps>): PlannedStep[] {
  return list.map((step) => ({ name: step.name, durationMs: step.duration_ms }));
}

/** Lifecycle body: optional `{ reason }` (used by fail and cancel). */
export function parseReason(body: unknown, at?: string): string | undefined {
  return parse(reasonBody, body, at).reason ?? undefined;
}
