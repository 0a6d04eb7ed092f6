/**
 * WebSocket upgrades. The Worker authenticates and negotiates the
 * subprotocol; the Durable Object checks ownership and accepts the socket.
 */
import { type Context, Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { TokenClaims } from "../auth/jwt";
import { hintFrom, type SeenFrom } from "../domain/placement/placement";
import {
  admitStream,
  healthStub,
  playerStub,
  releaseStreamLeases,
  sessionStub,
  workflowStub,
} from "../durable";
import { AppError, READABLE_REFUSALS_PROTOCOL } from "../errors";
import { log } from "../log";
import { metrics } from "../metrics/push";
import {
  type AuthVariables,
  BEARER_PROTOCOL_PREFIX,
  offeredProtocols,
  requireAuth,
} from "../middleware/auth";
import { rateLimit, requireAllowedOrigin, subject } from "../middleware/limits";
import { SUBPROTOCOL } from "../protocol/stream-codec";
import { STREAM_HEADERS } from "../protocol/stream-headers";
import { parseId } from "./session-input";

/** The subprotocols the service speaks, in order of preference. */
export const STREAM_PROTOCOLS = [SUBPROTOCOL.json, SUBPROTOCOL.binary] as const;

/**
 * Picks the subprotocol to echo. The bearer entry is never echoed; a client
 * that offers only protocols we do not speak is refused rather than
 * silently given another format.
 */
export function negotiateProtocol(
  request: Request,
  spoken: readonly string[] = STREAM_PROTOCOLS,
): string | null {
  // The token and the ask for readable refusals are not formats.
  const offered = offeredProtocols(request).filter(
    (p) => !p.startsWith(BEARER_PROTOCOL_PREFIX) && p !== READABLE_REFUSALS_PROTOCOL,
  );
  if (offered.length === 0) return null;
  const chosen = spoken.find((p) => offered.includes(p));
  if (!chosen) {
    throw new AppError(
      "invalid_argument",
      `unsupported subprotocol; offer one of ${spoken.join(", ")}`,
    );
  }
  return chosen;
}

/** A resume point presented in the upgrade URL (`?resume_epoch=E&resume_seq=S`). */
export function parseResumeQuery(url: URL): string | null {
  const epoch = url.searchParams.get("resume_epoch");
  const seq = url.searchParams.get("resume_seq");
  if (epoch === null && seq === null) return null;
  const valid = (value: string | null) =>
    value !== null && /^\d{1,10}$/.test(value) && Number(value) <= 0xffff_ffff;
  if (!valid(epoch) || !valid(seq)) {
    throw new AppError(
      "invalid_argument",
      "resume needs both resume_epoch and resume_seq, as unsigned 32-bit integers",
    );
  }
  return `${epoch}.${seq}`;
}

/** What a stream watches, and how the object serving it is asked for a socket. */
export type WatchedKind = "session" | "workflow" | "queue" | "health";

/** The object serving each kind of stream: one place that knows where streams live. */
const STREAM_OBJECTS: Record<
  WatchedKind,
  (env: Env, id: string, headers: Headers) => Promise<Response>
> = {
  session: (env, id, headers) =>
    sessionStub(env, id).fetch("https://crafting-session/stream", { headers }),
  workflow: (env, id, headers) =>
    workflowStub(env, id).fetch("https://workflow/stream", { headers }),
  queue: (env, id, headers) => playerStub(env, id).fetch("https://player/queue", { headers }),
  health: (env, id, headers) => healthStub(env, id).fetch("https://metrics/health", { headers }),
};

/** A stream to open for an authenticated player. */
export interface StreamRequest {
  kind: WatchedKind;
  /** Session, workflow or player id. */
  target: string;
  /** Subprotocol to speak (`crafting.v1.json` when null). */
  protocol: string | null;
  /** `epoch.seq` to resume after. */
  resume: string | null;
  origin: string | null;
  /** Which interface opened it (audit): "websocket", "connect", "grpc-web". */
  via?: string;
  /** The sync channel's negotiated options (JSON of SyncOptions). */
  sync?: string;
  /** Where the request came from (`request.cf`): the player's object remembers it to place sessions. */
  seenFrom?: SeenFrom | null;
}

/**
 * The one way a stream is opened, whatever it watches and whichever
 * interface asks (WebSocket upgrade or streaming RPC): a player may watch
 * only their own queue; take one of the caller's stream slots; hand the
 * socket to the object that serves it (which checks ownership), and free
 * the slot if it refused. An operator may watch anything (streams are
 * read-only), on slots of their own, and every such watch is audit-logged.
 */
export async function connectStream(
  env: Env,
  auth: TokenClaims,
  stream: StreamRequest,
): Promise<Response> {
  const { kind, target } = stream;
  const operator = auth.scope === "operator";
  // An operator's slots are their own, apart from any player's of the same name.
  const holder = operator ? `operator:${auth.sub}` : auth.sub;
  if (kind === "queue" && auth.sub !== target && !operator) {
    throw new AppError("permission_denied", "a player may watch only their own queue");
  }
  admitStream(env);
  const seenFrom = operator ? null : hintFrom(stream.seenFrom);
  const lease = await playerStub(env, holder).acquireStream(
    kind,
    target,
    seenFrom,
    auth.exp * 1000,
  );
  if (!lease.ok) {
    metrics.count("crafting_throttles_total", { limit: "stream_slots" });
    log("warn", "stream.refused", {
      player_id: holder,
      kind,
      target,
      via: stream.via ?? "websocket",
      reason: lease.error.message,
    });
    throw AppError.from(lease.error);
  }
  // A fresh request: only what the Worker verified reaches the object.
  const headers = new Headers({
    Upgrade: "websocket",
    [STREAM_HEADERS.player]: holder,
    [STREAM_HEADERS.tokenExp]: String(auth.exp),
    [STREAM_HEADERS.leaseId]: lease.value.leaseId,
  });
  if (stream.protocol) headers.set(STREAM_HEADERS.protocol, stream.protocol);
  if (stream.resume) headers.set(STREAM_HEADERS.resume, stream.resume);
  if (stream.origin) headers.set(STREAM_HEADERS.origin, stream.origin);
  if (stream.sync) headers.set(STREAM_HEADERS.sync, stream.sync);
  if (operator) headers.set(STREAM_HEADERS.operator, "1");
  let response: Response;
  try {
    response = await STREAM_OBJECTS[kind](env, target, headers);
  } catch (err) {
    await releaseStreamLeases(env, [{ playerId: holder, leaseId: lease.value.leaseId }]);
    throw err;
  }
  if (response.status !== 101) {
    await releaseStreamLeases(env, [{ playerId: holder, leaseId: lease.value.leaseId }]);
  } else if (operator) {
    metrics.count("crafting_operator_watches_total", { kind });
    log("info", "operator.watch", {
      operator: auth.sub,
      kind,
      target,
      via: stream.via ?? "websocket",
      origin: stream.origin,
    });
  }
  return response;
}

/** A WebSocket upgrade for `kind`/`target`: subprotocol and resume point from the request. */
function openStream(
  c: Context<{ Bindings: Env; Variables: AuthVariables }>,
  kind: WatchedKind,
  idParam: string,
  idField: string,
): Promise<Response> {
  return connectStream(c.env, c.get("auth"), {
    kind,
    target: parseId(c.req.param(idParam), idField),
    protocol: negotiateProtocol(c.req.raw),
    resume: parseResumeQuery(new URL(c.req.url)),
    origin: c.req.header("Origin") ?? null,
    seenFrom: c.req.raw.cf as SeenFrom | undefined,
  });
}

/** Rejects anything but a WebSocket upgrade, before any object is touched. */
export const requireUpgrade = createMiddleware(async (c, next) => {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new AppError("invalid_argument", "this route expects a WebSocket upgrade");
  }
  await next();
});

/** Routes under /ws. */
export const streamRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables }>()
  .use(requireAllowedOrigin, requireAuth("player", "operator"), requireUpgrade)
  .use(rateLimit("UPGRADE_RATE_LIMITER", subject))
  .get("/crafting/:sessionId", (c) => openStream(c, "session", "sessionId", "session_id"))
  .get("/workflow/:workflowId", (c) => openStream(c, "workflow", "workflowId", "workflow_id"))
  .get("/queue/:playerId", (c) => openStream(c, "queue", "playerId", "player_id"));
