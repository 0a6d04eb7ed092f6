/**
 * `CraftingStreamingService` (seed 000) over the Connect protocol and
 * gRPC-Web, JSON and binary, with `@connectrpc/connect`'s fetch handler.
 * Each RPC opens the same stream a WebSocket client gets (`connectStream`:
 * the same auth, owner checks, stream slots, token expiry) and turns its
 * frames into the RPC's messages. Native gRPC is not offered: it needs
 * HTTP/2 response trailers, which Workers cannot send.
 */

import { fromJsonString, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter } from "@connectrpc/connect";
import { createFetchHandler } from "@connectrpc/connect/protocol";
import { msUntilExpiry, type TokenClaims } from "../auth/jwt";
import type { SeenFrom } from "../domain/placement/placement";
import { sessionStub } from "../durable";
import { AppError, CloseCode, type ErrorCode, TOKEN_EXPIRED_REASON } from "../errors";
import type { ServerFrame } from "../gen/crafting/v1/frames_pb";
import { type SessionState, SessionStateSchema } from "../gen/crafting/v1/session_pb";
import { CraftingStreamingService } from "../gen/crafting/v1/streaming_service_pb";
import { check, protoName, refusal } from "../http/valid";
import { authenticate } from "../middleware/auth";
import { checkRateLimit } from "../middleware/limits";
import { endsStream } from "../protocol/frames";
import { QueueEntryDiff, SessionProgress, workflowResponse } from "../protocol/rpc-wire";
import { idSchema } from "../routes/session-input";
import { connectStream, type WatchedKind } from "../routes/streams";
import { STREAM_ENDED_REASON, type StreamEnd, streamFrames } from "./frame-stream";
import { isGrpcWebText, serveGrpcWebText } from "./grpc-web-text";

/** Path prefix of the service's RPCs. */
export const RPC_PATH_PREFIX = `/${CraftingStreamingService.typeName}/`;
/** Largest request message accepted (bytes). */
const READ_MAX_BYTES = 16 * 1024;

const CONNECT_CODE: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  method_not_allowed: Code.Unimplemented,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  payload_too_large: Code.ResourceExhausted,
  unsupported_media_type: Code.InvalidArgument,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** An error of ours as the Connect error a gRPC-family client expects. */
function connectError(error: { code: ErrorCode; message: string }): ConnectError {
  return new ConnectError(error.message, CONNECT_CODE[error.code]);
}

/** How a stream's close reaches the RPC client: a clean end, or the matching status. */
function closeStatus(code: number, reason: string): ConnectError | null {
  switch (code) {
    case CloseCode.NORMAL:
      return null;
    case CloseCode.TOKEN_EXPIRED:
      return new ConnectError(reason || "the bearer token expired", Code.Unauthenticated);
    case CloseCode.FORBIDDEN:
      return new ConnectError(reason, Code.PermissionDenied);
    case CloseCode.NOT_FOUND:
      return new ConnectError(reason, Code.NotFound);
    case CloseCode.POLICY_VIOLATION:
    case CloseCode.MESSAGE_TOO_BIG:
      return new ConnectError(reason, Code.ResourceExhausted);
    case CloseCode.INTERNAL_ERROR:
      return new ConnectError(reason || "the stream failed", Code.Internal);
    default:
      return new ConnectError(reason || `the stream closed (${code}): retry`, Code.Unavailable);
  }
}

/** How long an RPC stream may go without a message before the last one is repeated (same seq). */
export const RPC_KEEPALIVE_MS = 25_000;

/** Everything one RPC call needs from the request that carried it. */
interface CallScope {
  env: Env;
  request: Request;
  via: "connect" | "grpc-web";
  /** A request field's name as the caller's encoding writes it: proto3 JSON's lowerCamelCase, or the proto name. */
  named: (field: string) => string;
}

/**
 * Checks the ids a request names, every fault in one answer as a refused
 * body is told (`session_id must be …; player_id must be …`), each named as
 * the caller's encoding writes it; an `optional` one left empty (proto3's
 * unset string) is not checked.
 */
function checkIds(
  scope: CallScope,
  ids: Record<string, string>,
  optional: readonly string[] = [],
): void {
  const faults: string[] = [];
  for (const [name, value] of Object.entries(ids)) {
    if (value === "" && optional.includes(name)) continue;
    const checked = check(idSchema, value, scope.named(name));
    if (!checked.ok) faults.push(...checked.faults);
  }
  if (faults.length > 0) throw refusal(faults);
}

/**
 * Authenticates the caller (a player, or an operator, who may name any
 * player) and counts the stream against the upgrade limit.
 */
async function admit(scope: CallScope, claimedPlayer: string): Promise<TokenClaims> {
  const auth = await authenticate(scope.env, scope.request, ["player", "operator"]);
  if (claimedPlayer && claimedPlayer !== auth.sub && auth.scope !== "operator") {
    throw new AppError(
      "permission_denied",
      `${scope.named("player_id")} must be the token's player`,
    );
  }
  await checkRateLimit(
    scope.env,
    "UPGRADE_RATE_LIMITER",
    auth.sub,
    new URL(scope.request.url).pathname,
  );
  return auth;
}

/**
 * Opens `kind`/`target` for the caller and yields what `toMessages` makes of
 * each frame; a heartbeat repeats the last message (same seq), so an idle
 * stream still carries traffic and a gone client is noticed. Ends cleanly
 * when the watched thing reaches a final state; stops the object's work
 * when the client cancels.
 */
async function* watch<M extends Message>(
  scope: CallScope,
  auth: TokenClaims,
  kind: WatchedKind,
  target: string,
  resume: ResumePoint,
  signal: AbortSignal,
  toMessages: (frame: ServerFrame) => M[],
): AsyncGenerator<M> {
  const response = await connectStream(scope.env, auth, {
    kind,
    target,
    protocol: null,
    resume: resume.resumeEpoch ? `${resume.resumeEpoch}.${resume.resumeSeq}` : null,
    origin: scope.request.headers.get("Origin"),
    via: scope.via,
    seenFrom: scope.request.cf as SeenFrom | undefined,
  });
  if (response.status !== 101) {
    const body = (await response.json().catch(() => null)) as {
      error?: { code: ErrorCode; message: string };
    } | null;
    throw connectError(body?.error ?? { code: "internal", message: "the stream was refused" });
  }
  // The object sends a stream past its token nothing more, but closes it
  // only at its next wake: the Worker, awake for this response anyway, ends
  // the RPC at the token's expiry itself.
  const ending = new AbortController();
  const stop = () => ending.abort();
  signal.addEventListener("abort", stop);
  const expiry = setTimeout(() => ending.abort(TOKEN_EXPIRED_REASON), msUntilExpiry(auth));
  const expired = () => ending.signal.reason === TOKEN_EXPIRED_REASON;
  try {
    // After the final frame the Worker closes the object's stream itself: a
    // close the client starts ends at once (stream-hub.ts, endAll).
    const ended = () => ending.abort(STREAM_ENDED_REASON);
    yield* relay(streamFrames(response, ending.signal), toMessages, expired, ended);
    // Ended by the caller's side (its deadline: Connect-Timeout-Ms, grpc-timeout;
    // or it went away): its error, never the clean end that says the watched thing ended.
    if (signal.aborted) throw ConnectError.from(signal.reason, Code.Canceled);
  } finally {
    clearTimeout(expiry);
    signal.removeEventListener("abort", stop);
  }
}

/**
 * The RPC's messages from an open stream's frames, until it ends: cleanly
 * when the watched thing reached a final state or the client cancelled; with
 * the close's status otherwise (`unauthenticated` when `expired()`). Calls
 * `ended` after the final frame.
 */
async function* relay<M extends Message>(
  frames: AsyncGenerator<ServerFrame, StreamEnd>,
  toMessages: (frame: ServerFrame) => M[],
  expired: () => boolean,
  ended: () => void,
): AsyncGenerator<M> {
  let last: M | undefined;
  let pending = frames.next();
  for (;;) {
    // The object no longer wakes every 30 s for a heartbeat (its streams cost
    // nothing while idle): the Worker, awake for this response anyway, repeats
    // the last message when nothing came for a while, so proxies keep the
    // stream and a gone client is noticed.
    let timer: ReturnType<typeof setTimeout> | null = null;
    const quiet = new Promise<"quiet">((resolve) => {
      timer = setTimeout(() => resolve("quiet"), RPC_KEEPALIVE_MS);
    });
    const raced = await Promise.race([pending, quiet]);
    if (timer !== null) clearTimeout(timer);
    if (raced === "quiet") {
      if (last) yield last;
      continue;
    }
    const next = raced;
    pending = frames.next();
    if (next.done) {
      if (expired()) throw closeStatus(CloseCode.TOKEN_EXPIRED, TOKEN_EXPIRED_REASON);
      const status = next.value.cancelled ? null : closeStatus(next.value.code, next.value.reason);
      if (status) throw status;
      return;
    }
    if (next.value.kind.case === "heartbeat") {
      if (last) yield last;
      continue;
    }
    for (const message of toMessages(next.value)) {
      last = message;
      yield message;
    }
    // Frames already received still come; then the stream ends cleanly.
    if (endsStream(next.value)) ended();
  }
}

/** A request's resume point (`resume_epoch` 0: none). */
interface ResumePoint {
  resumeEpoch: number;
  resumeSeq: number;
}

/** Runs an RPC body, turning our errors into Connect errors. */
async function* asConnect<M>(body: () => AsyncGenerator<M>): AsyncGenerator<M> {
  try {
    yield* body();
  } catch (err) {
    if (err instanceof AppError) throw connectError(err);
    throw err;
  }
}

const present = <M>(message: M | null): M[] => (message ? [message] : []);

/** The session as it is now (a resumed RPC's base), or null when it cannot be read. */
async function currentSession(env: Env, sessionId: string): Promise<SessionState | null> {
  const view = await sessionStub(env, sessionId).view();
  return view.ok ? fromJsonString(SessionStateSchema, view.value) : null;
}

/** The fetch handler of one RPC request (Connect or gRPC-Web, binary, JSON or text). */
export function handleRpc(env: Env, request: Request): Promise<Response> {
  const contentType = request.headers.get("Content-Type") ?? "";
  if (isGrpcWebText(contentType)) {
    return serveGrpcWebText(request, READ_MAX_BYTES, (binary) => handleRpc(env, binary));
  }
  const via = contentType.startsWith("application/grpc-web") ? "grpc-web" : "connect";
  // JSON callers (`application/connect+json`, `application/grpc-web+json`) are told proto3 JSON names.
  const json = /[+/]json\b/.test(contentType);
  const scope: CallScope = { env, request, via, named: json ? protoName : (field) => field };
  const router = createConnectRouter({
    grpc: false,
    grpcWeb: true,
    connect: true,
    readMaxBytes: READ_MAX_BYTES,
  }).service(CraftingStreamingService, {
    streamCraftingProgress: (req, ctx) =>
      asConnect(async function* () {
        checkIds(scope, { session_id: req.sessionId, player_id: req.playerId }, ["player_id"]);
        const sessionId = req.sessionId;
        const auth = await admit(scope, req.playerId);
        // A resumed stream starts with replayed updates: they merge onto the session as it is.
        const progress = new SessionProgress(
          req.resumeEpoch ? await currentSession(scope.env, sessionId) : null,
        );
        yield* watch(scope, auth, "session", sessionId, req, ctx.signal, (frame) =>
          present(progress.next(frame)),
        );
      }),
    streamCraftingQueue: (req, ctx) =>
      asConnect(async function* () {
        checkIds(scope, { player_id: req.playerId });
        const playerId = req.playerId;
        const auth = await admit(scope, playerId);
        const diff = new QueueEntryDiff();
        yield* watch(scope, auth, "queue", playerId, req, ctx.signal, (frame) => diff.next(frame));
      }),
    streamMultiStepWorkflow: (req, ctx) =>
      asConnect(async function* () {
        checkIds(scope, { workflow_id: req.workflowId, player_id: req.playerId }, ["player_id"]);
        const workflowId = req.workflowId;
        const auth = await admit(scope, req.playerId);
        yield* watch(scope, auth, "workflow", workflowId, req, ctx.signal, (frame) =>
          present(workflowResponse(frame)),
        );
      }),
  });
  const path = new URL(request.url).pathname;
  const handler = router.handlers.find((h) => h.requestPath === path);
  if (!handler) {
    return Promise.resolve(
      Response.json({ code: "unimplemented", message: `no such method: ${path}` }, { status: 404 }),
    );
  }
  return createFetchHandler(handler)(request);
}
