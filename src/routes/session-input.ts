/**
 * Validation of crafting-service's bodies into domain inputs, as valibot
 * schemas. Every refusal names the field and the rule, so a caller can fix
 * its request (src/http/valid.ts).
 */
import * as v from "valibot";
import type { MaterialChange, MaterialOutcome } from "../domain/materials/materials";
import type { LocationHint } from "../domain/placement/placement";
import {
  type CreateSessionParams,
  type LifecycleAction,
  MAX_CLOCK_SKEW_MS,
  type ProgressCorrection,
} from "../domain/session/session";
import { AppError } from "../errors";
import { fields, finiteNumber, isObject, parse, snakeKeys, wholeNumber } from "../http/valid";
import { regionField } from "./placement";

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
  maxClockSkewMs: MAX_CLOCK_SKEW_MS,
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

const ID_RULE = "must be 1-64 characters of letters, digits, '_', '-', '.' or ':'";
/** An id from a path or a body. */
export const idSchema = v.pipe(v.string(ID_RULE), v.regex(ID_PATTERN, ID_RULE));

const OBJECT_RULE = "must be a JSON object";
const BODY_RULE = "the body must be a JSON object";
const QUANTITY_RULE = `must be a whole number from 0 to ${SESSION_LIMITS.maxQuantity}`;
const quantity = wholeNumber(0, SESSION_LIMITS.maxQuantity, QUANTITY_RULE);

/**
 * A list of at most `maxMaterials` objects (camelCase accepted) with distinct
 * `material_id`s.
 */
function materialList<E extends v.ObjectEntries>(entries: E) {
  const rule = `must be an array of at most ${SESSION_LIMITS.maxMaterials} materials`;
  const item = v.pipe(
    v.unknown(),
    v.transform(snakeKeys),
    fields({ material_id: idSchema, ...entries }, OBJECT_RULE),
  );
  return v.pipe(
    v.array(item, rule),
    v.maxLength(SESSION_LIMITS.maxMaterials, rule),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const seen = new Set<string>();
      for (const [i, material] of dataset.value.entries()) {
        const id = material.material_id as string;
        if (seen.has(id)) {
          addIssue({
            message: `${id} appears twice`,
            path: [
              { type: "array", origin: "value", input: dataset.value, key: i, value: material },
              {
                type: "object",
                origin: "value",
                input: material,
                key: "material_id",
                value: id,
              },
            ],
          });
          return;
        }
        seen.add(id);
      }
    }),
  );
}

const requirements = v.nullish(
  materialList({ required: quantity, available: v.nullish(quantity) }),
  [],
);

const NAME_RULE = `must be a string of 1-${SESSION_LIMITS.maxStepNameLength} characters`;
const STEPS_RULE = `must be an array of 1-${SESSION_LIMITS.maxSteps} steps`;
const step = fields(
  {
    name: v.pipe(
      v.string(NAME_RULE),
      v.minLength(1, NAME_RULE),
      v.maxLength(SESSION_LIMITS.maxStepNameLength, NAME_RULE),
    ),
    duration_ms: wholeNumber(
      1,
      Number.MAX_SAFE_INTEGER,
      "must be a positive whole number of milliseconds",
    ),
  },
  OBJECT_RULE,
);
const steps = v.pipe(
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
    steps,
    session_id: v.optional(idSchema),
    player_id: idSchema,
    recipe_id: idSchema,
    workflow_id: v.optional(idSchema),
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

const number = v.nullish(finiteNumber("must be a number"));
const AS_OF_RULE = "must be a time in milliseconds since the Unix epoch";
/**
 * A time in ms since the epoch: a JSON number, or the decimal string that
 * proto3 JSON writes for a 64-bit integer (`"asOfMs": "1796408233874"`).
 */
const asOfMs = v.nullish(
  v.pipe(
    v.union(
      [v.number(), v.pipe(v.string(), v.regex(/^\d{1,16}$/), v.transform(Number))],
      AS_OF_RULE,
    ),
    v.safeInteger(AS_OF_RULE),
    v.minValue(1, AS_OF_RULE),
  ),
);
const correctionEntries = {
  elapsed_ms: number,
  progress_percent: number,
  current_step_index: number,
  step_progress: number,
  rate: number,
  as_of_ms: asOfMs,
};
/** `step_progress` places the clock within a step: it needs the step. */
function stepProgressNeedsIndex<
  T extends { step_progress?: number | null; current_step_index?: number | null },
>() {
  return v.check<T, string>(
    (body) => body.step_progress == null || body.current_step_index != null,
    "step_progress needs current_step_index",
  );
}
/** Fields under their proto3 JSON names too (`elapsedMs`), as for every body with a proto message. */
const correction = v.pipe(
  v.unknown(),
  v.transform(snakeKeys),
  fields(correctionEntries, BODY_RULE),
  stepProgressNeedsIndex(),
);

const materialReport = v.pipe(
  v.unknown(),
  v.transform(snakeKeys),
  fields(
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
  ),
);

// --- Parsers -----------------------------------------------------------------

/** Checks an id from a path or body. */
export function parseId(value: unknown, field: string): string {
  return parse(idSchema, value, field);
}

/** `materials: [{ material_id, required, available? }]` of a new session (camelCase accepted). */
export function parseRequirements(value: unknown): CreateSessionParams["materials"] {
  return parse(requirements, value, "materials").map((m) =>
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
  const asOf = report.as_of_ms;
  if (asOf == null) return { changes, asOfMs: nowMs };
  if (asOf > nowMs + SESSION_LIMITS.maxClockSkewMs) {
    throw new AppError(
      "invalid_argument",
      "as_of_ms lies more than a minute in the future; check the sender's clock",
    );
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

/**
 * `POST /v1/sessions` body: `{ player_id, recipe_id, steps: [{ name, duration_ms }],
 * materials?: [{ material_id, required, available? }], session_id?, workflow_id?,
 * region? }`: the session to create, and the location hint it names
 * (`region`, for the object's placement; null when none).
 */
export function parseCreateRequest(
  body: unknown,
  newId: () => string,
): { params: CreateSessionParams; region: LocationHint | null } {
  const input = parse(createSession, body);
  return {
    params: {
      sessionId: input.session_id ?? newId(),
      playerId: input.player_id,
      recipeId: input.recipe_id,
      workflowId: input.workflow_id ?? null,
      steps: input.steps.map((step) => ({ name: step.name, durationMs: step.duration_ms })),
      materials: parseRequirements(input.materials),
    },
    region: input.region ?? null,
  };
}

/** A session to create, from a create body (workflows and bridged `start` events: no placement). */
export function parseCreateSession(body: unknown, newId: () => string): CreateSessionParams {
  return parseCreateRequest(body, newId).params;
}

/** Lifecycle body: optional `{ reason }` (used by fail and cancel). */
export function parseReason(body: unknown): string | undefined {
  return parse(reasonBody, body).reason ?? undefined;
}

/**
 * Progress correction body: one of `elapsed_ms`, `progress_percent`, or
 * `current_step_index` with `step_progress`; and/or `rate`.
 */
export function parseCorrection(body: unknown): ProgressCorrection {
  return correctionOf(parse(correction, body));
}

function correctionOf(input: { [K in keyof typeof correctionEntries]?: number | null }) {
  const out: ProgressCorrection = {};
  if (input.elapsed_ms != null) out.elapsedMs = input.elapsed_ms;
  if (input.progress_percent != null) out.progressPercent = input.progress_percent;
  if (input.current_step_index != null) out.stepIndex = input.current_step_index;
  if (input.step_progress != null) out.stepProgressPercent = input.step_progress;
  if (input.rate != null) out.rate = input.rate;
  if (input.as_of_ms != null) out.asOfMs = input.as_of_ms;
  return out;
}

/** Most updates in one batch. */
export const MAX_BATCH_UPDATES = 1000;

/** One session's share of a progress batch, with the updates' positions in the body. */
export interface SessionBatch {
  sessionId: string;
  corrections: ProgressCorrection[];
  indexes: number[];
}

const UPDATES_RULE = `must be an array of 1-${MAX_BATCH_UPDATES} progress updates`;
const batchBody = fields(
  {
    updates: v.pipe(
      v.array(v.unknown(), UPDATES_RULE),
      v.minLength(1, UPDATES_RULE),
      v.maxLength(MAX_BATCH_UPDATES, UPDATES_RULE),
    ),
  },
  BODY_RULE,
);
const batchUpdate = v.pipe(
  v.unknown(),
  v.transform(snakeKeys),
  fields({ session_id: idSchema, ...correctionEntries }, "the update must be a JSON object"),
  stepProgressNeedsIndex(),
);

/**
 * `POST /v1/progress` body: `{ updates: [{ session_id, ...correction }] }`,
 * grouped by session in body order. Any malformed update refuses the whole
 * batch (nothing is applied), naming its index.
 */
export function parseProgressBatch(body: unknown): SessionBatch[] {
  const { updates } = parse(batchBody, body);
  const bySession = new Map<string, SessionBatch>();
  for (const [i, raw] of updates.entries()) {
    let update: v.InferOutput<typeof batchUpdate>;
    try {
      update = parse(batchUpdate, raw);
    } catch (e: unknown) {
      throw new AppError(
        "invalid_argument",
        `updates[${i}]: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const batch = bySession.get(update.session_id) ?? {
      sessionId: update.session_id,
      corrections: [],
      indexes: [],
    };
    batch.corrections.push(correctionOf(update));
    batch.indexes.push(i);
    bySession.set(update.session_id, batch);
  }
  return [...bySession.values()];
}

/** One update of the ingest stream: the caller's reference, the session, the correction. */
export interface StreamUpdate {
  ref: number;
  sessionId: string;
  correction: ProgressCorrection;
}

const REF_RULE = `must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER} (the update's reference)`;
const streamUpdate = v.pipe(
  v.unknown(),
  v.transform(snakeKeys),
  fields(
    {
      ref: wholeNumber(0, Number.MAX_SAFE_INTEGER, REF_RULE),
      session_id: idSchema,
      ...correctionEntries,
    },
    "the update must be a JSON object",
  ),
  stepProgressNeedsIndex(),
);

/**
 * An ingest stream message: `{ ref, session_id, ...correction }`, the
 * fields of a `POST /v1/progress` update plus the caller's `ref`.
 */
export function parseStreamUpdate(body: unknown): StreamUpdate {
  const update = parse(streamUpdate, body);
  return { ref: update.ref, sessionId: update.session_id, correction: correctionOf(update) };
}

/**
 * What can be read of a refused message's `ref` and `session_id`, so its
 * refusal still names them (null where they are missing or malformed).
 */
export function streamUpdateKeys(body: unknown): { ref: number | null; sessionId: string | null } {
  const { ref, session_id: sessionId } = isObject(body) ? (snakeKeys(body) as typeof body) : {};
  return {
    ref: typeof ref === "number" && Number.isSafeInteger(ref) && ref >= 0 ? ref : null,
    sessionId: typeof sessionId === "string" && ID_PATTERN.test(sessionId) ? sessionId : null,
  };
}
