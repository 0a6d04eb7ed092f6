/**
 * crafting-service's HTTP API for sessions: create, drive the lifecycle,
 * read, and post progress corrections. Service credentials on every route.
 */

import { create, fromBinary, fromJsonString, toBinary } from "@bufbuild/protobuf";
import { Hono } from "hono";
import {
  admitStream,
  answeredWithin,
  type DurableObjectStubOf,
  OBJECT_CALLS_BUDGET_MS,
  placementOf,
  sessionStub,
} from "../durable";
import { AppError, type ErrorCode, knownError, retryable, unwrap } from "../errors";
import { SessionStateSchema } from "../gen/crafting/v1/session_pb";
import {
  MaterialReportResultSchema,
  ProgressCorrectionRequestSchema,
  UdpMaterialUpdateSchema,
} from "../gen/crafting/v1/sync_pb";
import {
  isProtobuf,
  JSON_OR_PROTOBUF,
  PROTOBUF_TYPE,
  readJsonBody,
  readProtobufBody,
  wantsProtobuf,
} from "../http/body";
import { jsonText } from "../http/json-text";
import { refusalsSaidFor, saidFor } from "../http/valid";
import { log } from "../log";
import { type AuthVariables, requireAuth, requireServiceOrOperatorReads } from "../middleware/auth";
import { rateLimit, subject } from "../middleware/limits";
import type { TraceContext, TraceVariables } from "../middleware/trace";
import { INGEST_PROTOCOL } from "../protocol/stream-codec";
import { serveIngestStream } from "./ingest-stream";
import { placementHeader } from "./placement";
import {
  CORRECTION_FIELDS,
  parseCorrection,
  parseProgressBatch,
  type SessionBatch,
} from "./progress-input";
import {
  LIFECYCLE_ACTIONS,
  materialResults,
  parseCreateRequest,
  parseId,
  parseMaterialReport,
  parseReason,
} from "./session-input";
import { negotiateProtocol, requireUpgrade } from "./streams";

type Env_ = { Bindings: Env; Variables: AuthVariables & TraceVariables };

function stubFor(env: Env, rawId: string | undefined): DurableObjectStubOf<"CRAFTING_SESSION"> {
  return sessionStub(env, parseId(rawId, "session_id"));
}

/** Routes under /v1/sessions. */
export const sessionRoutes = new Hono<Env_>()
  .use(requireServiceOrOperatorReads, rateLimit("INGEST_RATE_LIMITER", subject))
  .post("/", async (c) => {
    const { params, region } = parseCreateRequest(await readJsonBody(c.req.raw), () =>
      crypto.randomUUID(),
    );
    // Placed near its players: the named region, else where the player last connected from.
    const placement = await placementOf(c.env, params.playerId, region);
    const { created, session } = unwrap(
      await sessionStub(c.env, params.sessionId, placement.hint).create(params, c.get("trace")),
    );
    if (created)
      log("info", "session.placed", {
        session_id: params.sessionId,
        player_id: params.playerId,
        location_hint: placement.hint,
        source: placement.source,
      });
    return jsonText(session, created ? 201 : 200, placementHeader(placement));
  })
  .get("/:id", async (c) => {
    return jsonText(unwrap(await stubFor(c.env, c.req.param("id")).view()));
  })
  .post("/:id/:action", async (c) => {
    const action = LIFECYCLE_ACTIONS.find((a) => a === c.req.param("action"));
    if (!action)
      throw new AppError("not_found", `unknown action; use one of ${LIFECYCLE_ACTIONS.join(", ")}`);
    const reason = parseReason(await readJsonBody(c.req.raw, { optional: true }));
    const stub = stubFor(c.env, c.req.param("id"));
    return jsonText(unwrap(await stub.lifecycle(action, reason, c.get("trace"))));
  });

/**
 * crafting-service's progress and material reports, under /udp/sessions:
 * plain HTTP routes whose paths seed 001 fixed (the "UDP" channel itself is
 * the sync channel, sync-channel.ts, which shares the prefix — so
 * credentials are checked per route here).
 */
export const sessionReportRoutes = new Hono<Env_>()
  .use("/:id/progress", requireAuth("service"), rateLimit("INGEST_RATE_LIMITER", subject))
  .use("/:id/materials", requireAuth("service"), rateLimit("INGEST_RATE_LIMITER", subject))
  .post("/:id/progress", async (c) => {
    const body = await progressBody(c.req.raw);
    const sessionId = parseId(c.req.param("id"), "session_id");
    const stub = sessionStub(c.env, sessionId);
    const minimal = prefersMinimal(c.req.raw);
    const answer = await refusalsSaidFor(body, CORRECTION_FIELDS, async () => {
      const correction = parseCorrection(body, sessionId);
      return unwrap(await stub.correctProgress(correction, c.get("trace"), minimal));
    });
    if (minimal) return jsonText(answer, 200, { "Preference-Applied": "return=minimal" });
    if (!wantsProtobuf(c.req.raw)) return jsonText(answer);
    return protobuf(toBinary(SessionStateSchema, fromJsonString(SessionStateSchema, answer)));
  })
  .post("/:id/materials", async (c) => {
    const { changes, asOfMs } = parseMaterialReport(await materialsBody(c.req.raw), Date.now());
    const stub = stubFor(c.env, c.req.param("id"));
    const { outcomes, session } = unwrap(await stub.materials(changes, asOfMs, c.get("trace")));
    const results = materialResults(
      changes.map((change) => change.materialId),
      outcomes,
    );
    if (wantsProtobuf(c.req.raw)) {
      const answer = create(MaterialReportResultSchema, {
        results: results.map((r) => ({ materialId: r.material_id, outcome: r.outcome ?? "" })),
        session: fromJsonString(SessionStateSchema, session),
      });
      return protobuf(toBinary(MaterialReportResultSchema, answer));
    }
    return jsonText(`{"results":${JSON.stringify(results)},"session":${session}}`);
  });

/**
 * Whether the caller asked for a minimal answer (RFC 7240 `Prefer:
 * return=minimal`): where the session stands (`sessionId`, `epoch`, `seq`)
 * instead of the whole state, for callers that post many updates.
 */
function prefersMinimal(request: Request): boolean {
  return /(^|[,;\s])return=minimal\b/i.test(request.headers.get("Prefer") ?? "");
}

/** A binary protobuf answer. */
function protobuf(bytes: Uint8Array): Response {
  return new Response(bytes, { headers: { "Content-Type": PROTOBUF_TYPE } });
}

/** Decodes a binary body, or says it is not the message it should be. */
function decodeBody<T>(decode: () => T, what: string): T {
  try {
    return decode();
  } catch (e) {
    throw new AppError(
      "invalid_argument",
      `the body is not a valid ${what}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

/**
 * A progress correction body, JSON or `crafting.v1.ProgressCorrectionRequest`:
 * both go through the same validation.
 */
async function progressBody(request: Request): Promise<unknown> {
  if (!isProtobuf(request)) return readJsonBody(request, { accept: JSON_OR_PROTOBUF });
  const bytes = await readProtobufBody(request);
  const message = decodeBody(
    () => fromBinary(ProgressCorrectionRequestSchema, bytes),
    "crafting.v1.ProgressCorrectionRequest",
  );
  return {
    elapsed_ms: message.elapsedMs,
    progress_percent: message.progressPercent,
    current_step_index: message.currentStepIndex,
    step_progress: message.stepProgress,
    rate: message.rate,
    as_of_ms: message.asOfMs === undefined ? undefined : Number(message.asOfMs),
  };
}

/** A material report body, JSON or `crafting.v1.UdpMaterialUpdate` (where `available` is explicit). */
async function materialsBody(request: Request): Promise<unknown> {
  if (!isProtobuf(request)) return readJsonBody(request, { accept: JSON_OR_PROTOBUF });
  const bytes = await readProtobufBody(request);
  const message = decodeBody(
    () => fromBinary(UdpMaterialUpdateSchema, bytes),
    "crafting.v1.UdpMaterialUpdate",
  );
  return {
    changes: message.changes.map((change) => ({
      material_id: change.materialId,
      quantity: change.quantity,
      available: change.available,
    })),
    as_of_ms: message.asOfMs === 0n ? undefined : Number(message.asOfMs),
  };
}

/** Largest progress batch body: 1,000 updates of ~1 KB at most. */
const MAX_BATCH_BODY_BYTES = 1024 * 1024;
/** Sessions a batch works on at once. */
const BATCH_CONCURRENCY = 50;

/** One session's entry; `changed: false`: every update was stale, the session is as it was. */
type BatchResult = { session_id: string; updates: number[] } & (
  | { seq: number; changed?: false }
  | { error: { code: ErrorCode; message: string } }
);

async function applyBatch(
  env: Env,
  batch: SessionBatch,
  trace: TraceContext | undefined,
  deadline: number,
): Promise<BatchResult> {
  const base = { session_id: batch.sessionId, updates: batch.indexes };
  const left = deadline - Date.now();
  if (left <= 0) {
    const message = `not sent: the request's ${OBJECT_CALLS_BUDGET_MS} ms were spent on other sessions`;
    return { ...base, error: { code: "unavailable", message } };
  }
  try {
    const call = sessionStub(env, batch.sessionId).correctProgressBatch(
      batch.corrections,
      trace,
      true,
    );
    const result = await answeredWithin<Awaited<typeof call>>(call, left);
    if (!result.ok) {
      const { code, message } = result.error;
      return {
        ...base,
        error: { code, message: saidFor(batch.bodies, message, CORRECTION_FIELDS) },
      };
    }
    const { seq, changed } = JSON.parse(result.value) as { seq: number; changed?: false };
    return { ...base, seq, ...(changed === false ? { changed } : {}) };
  } catch (err) {
    const known = knownError(err);
    return {
      ...base,
      error: known
        ? { code: known.code, message: known.message }
        : { code: "internal", message: "the session could not apply the batch" },
    };
  }
}

/**
 * `POST /v1/progress`: many progress updates in one request (client
 * streaming, HTTP-style), applied atomically per session: each session
 * takes all of its updates as one change (one update to its subscribers)
 * or none. Answers per session; `503` when one could not be reached, or
 * did not answer within the request's budget (OBJECT_CALLS_BUDGET_MS).
 */
export const progressBatchRoutes = new Hono<Env_>()
  .use(requireAuth("service"), rateLimit("INGEST_RATE_LIMITER", subject))
  // The same updates, one at a time on one authenticated WebSocket (ingest-stream.ts).
  .get("/stream", requireUpgrade, (c) => {
    // Only the socket: each update it carries is admitted as the call it makes.
    admitStream(c.env, 0);
    const protocol = negotiateProtocol(c.req.raw, [INGEST_PROTOCOL]);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    serveIngestStream(server, c.env, c.get("auth"), c.get("trace"), (work) =>
      c.executionCtx.waitUntil(work),
    );
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: protocol ? { "Sec-WebSocket-Protocol": protocol } : {},
    });
  })
  .post("/", async (c) => {
    const batches = parseProgressBatch(
      await readJsonBody(c.req.raw, { maxBytes: MAX_BATCH_BODY_BYTES }),
    );
    const sessions: BatchResult[] = [];
    const deadline = Date.now() + OBJECT_CALLS_BUDGET_MS;
    for (let i = 0; i < batches.length; i += BATCH_CONCURRENCY) {
      const slice = batches.slice(i, i + BATCH_CONCURRENCY);
      sessions.push(
        ...(await Promise.all(slice.map((b) => applyBatch(c.env, b, c.get("trace"), deadline)))),
      );
    }
    const retry = sessions.some((s) => "error" in s && retryable(s.error.code));
    if (retry) c.header("Retry-After", "1");
    return c.json({ sessions }, retry ? 503 : 200);
  });
