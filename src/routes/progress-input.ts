/**
 * Validation of progress corrections — one (`POST /udp/sessions/{id}/progress`),
 * a batch (`POST /v1/progress`) or the ingest stream's updates — into domain
 * inputs, as valibot schemas (src/http/valid.ts); the session's other
 * bodies are in session-input.ts.
 */
import * as v from "valibot";
import { ID_PATTERN } from "../domain/ids";
import {
  CORRECTION_RANGES,
  type FieldRule,
  type ProgressCorrection,
} from "../domain/session/session";
import { AppError } from "../errors";
import {
  check,
  fields,
  finiteNumber,
  isObject,
  parse,
  refusal,
  saidFor,
  snakeKeys,
  wholeNumber,
} from "../http/valid";
import { asOfMs, BODY_RULE, idSchema } from "./session-input";

/**
 * A number within the range the field keeps whatever the session (the
 * domain's `CORRECTION_RANGES`), so a refusal names every field out of range
 * with the rest; the session's own bounds are judged when it applies it.
 */
function ranged({ holds, rule }: FieldRule) {
  return v.nullish(v.pipe(finiteNumber("must be a number"), v.check(holds, rule)));
}
const correctionEntries = {
  elapsed_ms: ranged(CORRECTION_RANGES.elapsedMs),
  progress_percent: ranged(CORRECTION_RANGES.progressPercent),
  current_step_index: ranged(CORRECTION_RANGES.stepIndex),
  step_progress: ranged(CORRECTION_RANGES.stepProgressPercent),
  rate: ranged(CORRECTION_RANGES.rate),
  as_of_ms: asOfMs,
};
/**
 * The fields a refusal of a correction may name, also after parsing (the
 * session's own rules: `elapsed_ms must be between 0 and …`): worded as
 * the client wrote them (`saidFor`).
 */
export const CORRECTION_FIELDS = ["session_id", ...Object.keys(correctionEntries)];

/** `step_progress` places the clock within a step: it needs the step. */
function stepProgressNeedsIndex<
  T extends { step_progress?: number | null; current_step_index?: number | null },
>() {
  return v.check<T, string>(
    (body) => body.step_progress == null || body.current_step_index != null,
    "step_progress needs current_step_index",
  );
}
/**
 * Fields under their proto3 JSON names too (`elapsedMs`), as for every body
 * with a proto message; `session_id` may repeat the path's session, as a
 * `POST /v1/progress` update names it (one payload for either route).
 */
const correction = v.pipe(
  fields({ session_id: v.nullish(idSchema), ...correctionEntries }, BODY_RULE),
  stepProgressNeedsIndex(),
);

/**
 * Progress correction body for the session `sessionId`: one of
 * `elapsed_ms`, `progress_percent`, or `current_step_index` with
 * `step_progress`; and/or `rate`. A `session_id` naming another session is
 * refused: the update was meant for it.
 */
export function parseCorrection(body: unknown, sessionId: string): ProgressCorrection {
  const input = parse(correction, body);
  if (input.session_id != null && input.session_id !== sessionId) {
    throw new AppError(
      "invalid_argument",
      `session_id is ${input.session_id}, another session than the path's ${sessionId}: post it to that session's path (or to /v1/progress)`,
    );
  }
  return correctionOf(input);
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
  /** The updates as sent, to word a refusal as they were written. */
  bodies: unknown[];
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
  'the body must be a JSON object: {"updates": [{"session_id": …, …}, …]}',
);
const batchUpdate = v.pipe(
  fields({ session_id: idSchema, ...correctionEntries }, "the update must be a JSON object"),
  stepProgressNeedsIndex(),
);

/**
 * `POST /v1/progress` body: `{ updates: [{ session_id, ...correction }] }`,
 * grouped by session in body order. Any malformed update refuses the whole
 * batch (nothing is applied); the refusal names every fault, each with its
 * update's index.
 */
export function parseProgressBatch(body: unknown): SessionBatch[] {
  const { updates } = parse(batchBody, body);
  const bySession = new Map<string, SessionBatch>();
  const faults: string[] = [];
  for (const [i, raw] of updates.entries()) {
    const checked = check(batchUpdate, raw);
    if (!checked.ok) {
      for (const fault of checked.faults)
        faults.push(`updates[${i}]: ${saidFor(raw, fault, CORRECTION_FIELDS)}`);
      continue;
    }
    const update = checked.value;
    const batch = bySession.get(update.session_id) ?? {
      sessionId: update.session_id,
      corrections: [],
      indexes: [],
      bodies: [],
    };
    batch.corrections.push(correctionOf(update));
    batch.indexes.push(i);
    batch.bodies.push(raw);
    bySession.set(update.session_id, batch);
  }
  if (faults.length > 0) throw refusal(faults);
  return [...bySession.values()];
}

/** One update of the ingest stream: the caller's reference, the session, the correction. */
export interface StreamUpdate {
  ref: number;
  sessionId: string;
  correction: ProgressCorrection;
  /** The update as sent, to word a refusal as it was written. */
  body: unknown;
}

const REF_RULE = `must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER} (the update's reference)`;
const streamUpdate = v.pipe(
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
  return {
    ref: update.ref,
    sessionId: update.session_id,
    correction: correctionOf(update),
    body,
  };
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
