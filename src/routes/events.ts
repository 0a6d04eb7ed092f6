/**
 * `POST /v1/events`: the Kafka bridge's ingest. Validates every record,
 * applies the good ones at once (src/events/apply-now.ts; the Queues take
 * what cannot be applied), and answers only once every good record is
 * stored in its session or queued; each bad record is reported by index
 * and reason.
 */
import { Hono } from "hono";
import * as v from "valibot";
import type { DeadLetter } from "../domain/events/dead-letter";
import { type SessionEvent, topicOf } from "../domain/events/session-events";
import { deadLetterStub } from "../durable";
import { AppError } from "../errors";
import { applyNow } from "../events/apply-now";
import { EVENT_LIMITS, isSessionEvent, parseEventRecord, recordsOf } from "../events/event-input";
import { readBodyText, readJsonBody } from "../http/body";
import { fields, parse, parseQuery, queryWholeNumber, wholeNumber } from "../http/valid";
import { log } from "../log";
import { type AuthVariables, requireServiceOrOperatorReads } from "../middleware/auth";
import { rateLimit, subject } from "../middleware/limits";
import { readsQuery } from "../middleware/query";
import { frameTraceId, type TraceVariables } from "../middleware/trace";

/** Queue limits of one `sendBatch`: 100 messages, 256 KB. */
const SEND_BATCH = { maxMessages: 100, maxBytes: 200 * 1024 } as const;

/** A record refused at ingest. */
interface Rejection {
  index: number;
  error: { code: "invalid_argument"; message: string };
}

/** Sends events in chunks that fit one `sendBatch`. */
async function enqueue(queue: Queue, events: readonly SessionEvent[]): Promise<void> {
  let chunk: MessageSendRequest[] = [];
  let bytes = 0;
  for (const event of events) {
    const size = JSON.stringify(event).length;
    if (chunk.length === SEND_BATCH.maxMessages || bytes + size > SEND_BATCH.maxBytes) {
      await queue.sendBatch(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push({ body: event, contentType: "json" });
    bytes += size;
  }
  if (chunk.length > 0) await queue.sendBatch(chunk);
}

/**
 * For sinks that stop on any non-2xx (`?on_invalid=dead_letter`): refused
 * records go to the dead-letter log with their reason instead of failing
 * the request, so one bad record never halts the connector nor is lost.
 */
async function deadLetterRefused(
  env: Env,
  rejected: readonly Rejection[],
  records: readonly unknown[],
): Promise<void> {
  const atMs = Date.now();
  await queued(
    () =>
      env.DEAD_LETTER_QUEUE.sendBatch(
        rejected.map(({ index, error }) => ({
          body: {
            reason: `refused at ingest: ${error.message}`,
            queue: "ingest",
            attempts: 0,
            body: records[index] ?? null,
            atMs,
          },
          contentType: "json" as const,
        })),
      ),
    "the dead-letter queue did not take the refused events: send the same request again",
  );
}

/** Runs a Queue send; a refusal becomes 503 with Retry-After, and the client sends again. */
async function queued(send: () => Promise<unknown>, message: string): Promise<void> {
  try {
    await send();
  } catch (e) {
    log("error", "events.enqueue_failed", { message: e instanceof Error ? e.message : String(e) });
    throw new AppError("unavailable", message, 1);
  }
}

/** `POST /v1/events?on_invalid=refuse|dead_letter`: what becomes of an invalid record. */
const postQuery = {
  on_invalid: v.optional(
    v.picklist(["refuse", "dead_letter"], "must be refuse (the default) or dead_letter"),
    "refuse",
  ),
};

/** Most dead letters one page lists. */
const MAX_DEAD_LETTERS_PAGE = 500;
/** `GET /v1/events/dead-letters?limit&before`: a page (50 by default) older than the cursor. */
const deadLettersQuery = {
  limit: v.optional(queryWholeNumber(1, MAX_DEAD_LETTERS_PAGE), "50"),
  before: v.optional(queryWholeNumber(1, Number.MAX_SAFE_INTEGER)),
};

/** Routes under /v1/events. */
export const eventRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables & TraceVariables }>()
  .use(requireServiceOrOperatorReads, rateLimit("INGEST_RATE_LIMITER", subject))
  .post("/", readsQuery, async (c) => {
    const text = await readBodyText(c.req.raw, {
      maxBytes: EVENT_LIMITS.maxBodyBytes,
      types: [
        /^application\/json\b/i,
        /^application\/(x-)?ndjson\b/i,
        /^application\/jsonl\b/i,
        /^text\/plain\b/i,
      ],
      accept: "application/json (one event or an array) or application/x-ndjson",
    });
    const { on_invalid: onInvalid } = parseQuery(c.req.url, postQuery);
    if (text === null) throw new AppError("invalid_argument", "the body holds no events");
    const records = recordsOf(text);
    if (records.length > EVENT_LIMITS.maxRecords) {
      throw new AppError(
        "payload_too_large",
        `at most ${EVENT_LIMITS.maxRecords} events per request`,
      );
    }
    const acceptedAtMs = Date.now();
    const good: SessionEvent[] = [];
    const rejected: Rejection[] = [];
    records.forEach((record, index) => {
      const result = parseEventRecord(record, acceptedAtMs, frameTraceId(c.get("trace")));
      if (!result.ok)
        rejected.push({ index, error: { code: "invalid_argument", message: result.message } });
      else good.push(result.event);
    });
    // Applied at once; only what could not be goes to its topic's Queue.
    const later = await applyNow(c.env, good);
    await queued(
      () => enqueueByTopic(c.env, later),
      "the queue did not take the events: send the same request again (duplicates are harmless)",
    );
    const accepted = good.length;
    if (rejected.length > 0 && onInvalid === "dead_letter") {
      await deadLetterRefused(c.env, rejected, records);
      log("warn", "events.ingest", {
        records: records.length,
        accepted,
        rejected: rejected.length,
        dead_lettered: rejected.length,
      });
      return c.json({ accepted, rejected, dead_lettered: rejected.length }, 202);
    }
    log(rejected.length ? "warn" : "info", "events.ingest", {
      records: records.length,
      accepted,
      rejected: rejected.length,
    });
    if (rejected.length === 0) return c.json({ accepted }, 202);
    return c.json(
      {
        error: {
          code: "invalid_argument",
          message: `${rejected.length} of ${records.length} events were refused (see rejected); the other ${accepted} were accepted`,
        },
        accepted,
        rejected,
      },
      400,
    );
  })
  .get("/dead-letters", readsQuery, async (c) => {
    const { limit, before } = parseQuery(c.req.url, deadLettersQuery);
    const { count, letters, nextBefore } = await deadLetterStub(c.env).list(limit, before ?? null);
    return c.json({ count, letters, next_before: nextBefore });
  })
  // Sends kept letters back to their queues once their cause is dealt with (service token).
  .post("/dead-letters/redrive", async (c) => {
    const { ids } = parse(idsBody, await readJsonBody(c.req.raw));
    const letters = deadLetterStub(c.env);
    const kept = await keptLetters(letters, ids);
    const events: SessionEvent[] = [];
    const redriven: number[] = [];
    const refused: { id: number; error: { code: "failed_precondition"; message: string } }[] = [];
    for (const letter of kept) {
      if (isSessionEvent(letter.body)) {
        events.push(letter.body);
        redriven.push(letter.id);
      } else
        refused.push({
          id: letter.id,
          error: {
            code: "failed_precondition",
            message:
              "this record was refused at ingest, so it would be refused again: correct it, POST it to /v1/events, then discard the letter",
          },
        });
    }
    const again =
      "the queue did not take the events: send the same request again (the letters are kept)";
    await queued(() => enqueueByTopic(c.env, events), again);
    // Forgotten only once queued: a letter is never lost. A redrive repeated
    // after a failure here queues an event twice, which its session dedupes.
    await letters.forget(redriven);
    log("info", "events.redrive", { redriven: redriven.length, refused: refused.length });
    return c.json({ redriven, missing: missing(ids, kept), refused }, 202);
  })
  // Forgets letters dealt with another way (a refused record corrected and
  // posted again): each logged with its reason, so none goes unrecorded.
  .post("/dead-letters/discard", async (c) => {
    const { ids } = parse(idsBody, await readJsonBody(c.req.raw));
    const letters = deadLetterStub(c.env);
    const kept = await keptLetters(letters, ids);
    await letters.forget(kept.map((letter) => letter.id));
    for (const letter of kept)
      log("warn", "events.discard", {
        id: letter.id,
        queue: letter.queue,
        reason: letter.reason,
        event_id: isSessionEvent(letter.body) ? letter.body.eventId : null,
      });
    return c.json({ discarded: kept.map((letter) => letter.id), missing: missing(ids, kept) });
  });

/**
 * Queues events on their topic's Queue (one per topic, so a flood of
 * progress never delays lifecycle events): lifecycle first.
 */
async function enqueueByTopic(env: Env, events: readonly SessionEvent[]): Promise<void> {
  const isProgress = (event: SessionEvent) => topicOf(event.kind) === "game.crafting.progress";
  await enqueue(
    env.EVENTS_QUEUE,
    events.filter((event) => !isProgress(event)),
  );
  await enqueue(env.PROGRESS_QUEUE, events.filter(isProgress));
}

/** The kept letters among `ids`. */
async function keptLetters(
  letters: ReturnType<typeof deadLetterStub>,
  ids: readonly number[],
): Promise<(DeadLetter & { id: number })[]> {
  // RPC typing turns a letter's `body: unknown` into never: this is the stored shape, read back.
  return (await letters.letters(ids)) as (DeadLetter & { id: number })[];
}

/** The ids asked for that no kept letter has. */
function missing(ids: readonly number[], kept: readonly { id: number }[]): number[] {
  const found = new Set(kept.map((letter) => letter.id));
  return ids.filter((id) => !found.has(id));
}

/** Most letters one redrive or discard names. */
const MAX_LETTERS_PER_CALL = 500;

const IDS_RULE = `must be a list of 1 to ${MAX_LETTERS_PER_CALL} dead-letter ids (whole numbers), each once`;
/** `POST /v1/events/dead-letters/redrive|discard` body: `{ "ids": [...] }`. */
const idsBody = fields(
  {
    ids: v.pipe(
      v.array(
        wholeNumber(1, Number.MAX_SAFE_INTEGER, "must be a dead-letter id (a whole number from 1)"),
        IDS_RULE,
      ),
      v.minLength(1, IDS_RULE),
      v.maxLength(MAX_LETTERS_PER_CALL, IDS_RULE),
      v.check((ids) => new Set(ids).size === ids.length, IDS_RULE),
    ),
  },
  "the body must be a JSON object",
);
