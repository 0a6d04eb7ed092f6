/**
 * Validation of bridged Kafka events, and the request shapes a Kafka
 * Connect HTTP sink sends: one event, a JSON array of events (of objects or
 * of JSON strings, as the StringConverter leaves them), or one event per
 * line. Every refusal names the field and the rule.
 */

import * as v from "valibot";
import { EVENT_TYPES, type SessionEvent } from "../domain/events/session-events";
import { ID_PATTERN } from "../domain/ids";
import { AppError } from "../errors";
import {
  check,
  faultsIn,
  fields,
  int64Number,
  isObject,
  protoName,
  refusal,
  saidFor,
} from "../http/valid";
import { idSchema, parseCreateRequest, parseReason } from "../routes/session-input";

/** Limits of `POST /v1/events`. */
export const EVENT_LIMITS = {
  /** Body of one request. */
  maxBodyBytes: 1024 * 1024,
  /** Records in one request. */
  maxRecords: 1000,
  /** One record, as JSON. Queue messages may be 128 KB; a planned session is far smaller. */
  maxRecordBytes: 32 * 1024,
} as const;

/** One record's verdict. */
export type RecordResult = { ok: true; event: SessionEvent } | { ok: false; message: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * The records of a request body: a JSON object, a JSON array, or
 * newline-delimited JSON. A line that is not JSON is kept as an error at
 * its index, so its neighbours still go through.
 */
export function recordsOf(text: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed.length === 0) throw new AppError("invalid_argument", "the body holds no events");
  try {
    const parsed: unknown = JSON.parse(trimmed);
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    const lines = trimmed.split(/\r?\n/).filter((line) => line.trim().length > 0);
    if (lines.length < 2)
      throw new AppError("invalid_argument", "the body is not JSON, a JSON array or JSON lines");
    return lines.map((line) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        return new NotJson(line);
      }
    });
  }
}

/** A line of JSON lines that did not parse (kept for the dead-letter log). */
class NotJson {
  constructor(readonly line: string) {}
}

/** Reads a field by its JSON name or its proto3 JSON (lowerCamelCase) name. */
function field(record: Record<string, unknown>, name: string): unknown {
  if (name in record) return record[name];
  return record[protoName(name)];
}

/** Validates one record into an event, or says what is wrong with it. */
export function parseEventRecord(
  raw: unknown,
  acceptedAtMs: number,
  traceId?: string,
): RecordResult {
  try {
    const event = parseEvent(raw, acceptedAtMs);
    if (traceId) event.traceId = traceId;
    return { ok: true, event };
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}

const EVENT_TYPE_RULE = `must be one of ${Object.keys(EVENT_TYPES).join(", ")}`;
const OCCURRED_RULE = "must be an RFC 3339 timestamp";
const VERSION_RULE = "must be a positive whole number";

/** The envelope every record carries (snake_case or proto3 JSON names). */
const envelope = fields(
  {
    event_id: v.pipe(v.string("must be a UUID"), v.regex(UUID, "must be a UUID")),
    event_type: v.picklist(
      Object.keys(EVENT_TYPES) as (keyof typeof EVENT_TYPES)[],
      EVENT_TYPE_RULE,
    ),
    occurred_at: v.pipe(
      v.string(OCCURRED_RULE),
      v.regex(RFC3339, OCCURRED_RULE),
      v.transform(Date.parse),
      v.finite(OCCURRED_RULE),
    ),
    session_id: idSchema,
    player_id: idSchema,
    // int64 travels as a decimal string in proto3 JSON.
    version: int64Number(VERSION_RULE),
    payload: v.optional(v.unknown()),
  },
  "an event must be a JSON object",
  // Records carry more than the envelope (the proto3 form's payload under
  // its type's name, producers' own metadata): ignored, not refused.
  { unknownFields: "drop" },
);

function parseEvent(raw: unknown, acceptedAtMs: number): SessionEvent {
  if (raw instanceof NotJson) throw invalid("the line is not valid JSON");
  const value = typeof raw === "string" ? parseString(raw) : raw;
  if (isObject(value) && JSON.stringify(value).length > EVENT_LIMITS.maxRecordBytes) {
    throw invalid(`an event may not exceed ${EVENT_LIMITS.maxRecordBytes} bytes`);
  }
  const checked = check(envelope, value);
  if (!checked.ok) throw refusal([...checked.faults, ...payloadFaults(value)]);
  const record = checked.value;
  const event: SessionEvent = {
    eventId: record.event_id.toLowerCase(),
    kind: EVENT_TYPES[record.event_type],
    occurredAtMs: record.occurred_at,
    sessionId: record.session_id,
    playerId: record.player_id,
    version: record.version,
    acceptedAtMs,
  };
  readPayload(event, value as Record<string, unknown>);
  return event;
}

/** Fills `event` from its record's payload, or throws naming what is wrong with it. */
function readPayload(event: SessionEvent, record: Record<string, unknown>): void {
  const at = payloadPlace(event.kind, record);
  const payloadValue = record[at] ?? {};
  if (!isObject(payloadValue)) throw invalid(`${at} must be a JSON object`);
  try {
    fillPayload(event, payloadValue, at);
  } catch (e: unknown) {
    if (!(e instanceof AppError)) throw e;
    // Worded as the payload was written, or (left out) as the envelope was.
    const written = Object.keys(payloadValue).length > 0 ? payloadValue : record;
    throw refusal(faultsIn(e).map((fault) => saidFor(written, fault, PAYLOAD_FIELDS)));
  }
}

/**
 * The payload's place in a record: `payload`, or in the proto3 form the
 * type's name (`start`). A payload left out is named where the envelope's
 * form puts it (`payload.recipe_id`; `start.recipeId` after `eventType`).
 */
function payloadPlace(kind: SessionEvent["kind"], record: Record<string, unknown>): string {
  if (record.payload !== undefined) return "payload";
  if (record[kind] !== undefined) return kind;
  const protoForm = "eventType" in record && !("event_type" in record);
  return protoForm ? kind : "payload";
}

/**
 * What is wrong with the payload of a record whose envelope is refused,
 * when its type can still be read: said with the envelope's faults, so a
 * producer fixes the event in one try. The payload is read into a scratch
 * event whose ids are placeholders (a start's session is created under
 * them), so only the payload's own faults are said.
 */
function payloadFaults(record: unknown): readonly string[] {
  if (!isObject(record)) return [];
  const type = field(record, "event_type");
  if (typeof type !== "string" || !Object.hasOwn(EVENT_TYPES, type)) return [];
  const scratch: SessionEvent = {
    eventId: "",
    kind: EVENT_TYPES[type as keyof typeof EVENT_TYPES],
    occurredAtMs: 0,
    sessionId: "placeholder",
    playerId: "placeholder",
    version: 1,
    acceptedAtMs: 0,
  };
  try {
    readPayload(scratch, record);
    return [];
  } catch (e: unknown) {
    if (!(e instanceof AppError)) throw e;
    return faultsIn(e);
  }
}

/** The payload's fields a refusal names, worded as the producer wrote them (`saidFor`). */
const PAYLOAD_FIELDS = [
  "recipe_id",
  "duration_ms",
  "workflow_id",
  "material_id",
  "elapsed_seconds",
  "progress_percent",
];

function parseString(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw invalid("a string record must hold a JSON event");
  }
}

function fillPayload(event: SessionEvent, payload: Record<string, unknown>, at: string): void {
  switch (event.kind) {
    case "start": {
      // Its refusal names each field under the payload's place (`payload.steps[0]…`).
      const { params, region } = parseCreateRequest(
        {
          session_id: event.sessionId,
          player_id: event.playerId,
          recipe_id: field(payload, "recipe_id"),
          steps: normaliseSteps(field(payload, "steps")),
          materials: field(payload, "materials"),
          // proto3 leaves an unset string empty.
          ...(field(payload, "workflow_id") ? { workflow_id: field(payload, "workflow_id") } : {}),
          ...(field(payload, "region") ? { region: field(payload, "region") } : {}),
        },
        () => event.sessionId,
        at,
      );
      event.start = {
        recipeId: params.recipeId,
        workflowId: params.workflowId,
        steps: params.steps,
        materials: params.materials,
        ...(region ? { region } : {}),
      };
      return;
    }
    case "fail":
    case "cancel": {
      const reason = parseReason({ reason: field(payload, "reason") }, at);
      if (reason !== undefined) event.reason = reason;
      return;
    }
    case "progress": {
      const elapsedSeconds = field(payload, "elapsed_seconds");
      const percent = field(payload, "progress_percent");
      if (
        typeof elapsedSeconds === "number" &&
        Number.isFinite(elapsedSeconds) &&
        elapsedSeconds >= 0
      ) {
        event.progress = { elapsedMs: Math.round(elapsedSeconds * 1000) };
      } else if (typeof percent === "number" && percent >= 0 && percent <= 100) {
        event.progress = { progressPercent: percent };
      } else {
        throw invalid(`${at} needs elapsed_seconds (≥ 0) or progress_percent (0-100)`);
      }
      return;
    }
    default:
      return;
  }
}

/** Steps as `{ name, duration_ms }`, also from proto3 JSON (`durationMs`). */
function normaliseSteps(steps: unknown): unknown {
  if (!Array.isArray(steps)) return steps;
  return steps.map((step: unknown) =>
    typeof step === "object" && step !== null
      ? {
          name: field(step as Record<string, unknown>, "name"),
          duration_ms: field(step as Record<string, unknown>, "duration_ms"),
        }
      : step,
  );
}

function invalid(message: string): AppError {
  return new AppError("invalid_argument", message);
}

/** Whether a queue message body is an event this service queued (the consumer re-checks). */
export function isSessionEvent(body: unknown): body is SessionEvent {
  if (typeof body !== "object" || body === null) return false;
  const event = body as Partial<SessionEvent>;
  return (
    typeof event.eventId === "string" &&
    UUID.test(event.eventId) &&
    typeof event.kind === "string" &&
    Object.values(EVENT_TYPES).includes(event.kind) &&
    typeof event.sessionId === "string" &&
    ID_PATTERN.test(event.sessionId) &&
    typeof event.playerId === "string" &&
    ID_PATTERN.test(event.playerId) &&
    typeof event.version === "number" &&
    Number.isSafeInteger(event.version) &&
    event.version > 0 &&
    typeof event.occurredAtMs === "number" &&
    Number.isFinite(event.occurredAtMs) &&
    typeof event.acceptedAtMs === "number" &&
    (event.kind !== "start" ||
      (typeof event.start === "object" && Array.isArray(event.start?.steps))) &&
    (event.kind !== "progress" || typeof event.progress === "object")
  );
}
