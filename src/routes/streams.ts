/**
 * WebSocket upgrades. The Worker authenticates and negotiates the
 * subprotocol; the Durable Object checks ownership and accepts the socket.
 */
import { type Context, Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { StreamKind } from "../../durable-objects/player/stream-leases";
import { STREAM_HEADERS } from "../../durable-objects/streams/stream-attachment";
import { playerStub, releaseStreamLeases, sessionStub, workflowStub } from "../durable";
import { AppError } from "../errors";
import { log } from "../log";
import { metrics } from "../metrics/push";
import {
  type AuthVariables,
  BEARER_PROTOCOL_PREFIX,
  offeredProtocols,
  requireAuth,
} from "../middleware/auth";
import { rateLimit, requireAllowedOrigin, subject } from "../middleware/limits";
import { parseId } from "./session-input";

/** The subprotocols the service speaks, in order of preference. */
export const STREAM_PROTOCOLS = ["crafting.v1.json"] as const;

/**
 * Picks the subprotocol to echo. The bearer entry is never echoed; a client
 * that offers only protocols we do not speak is refused rather than
 * silently given another format.
 */
export function negotiateProtocol(request: Request): string | null {
  const offered = offeredProtocols(request).filter((p) => !p.startsWith(BEARER_PROTOCOL_PREFIX));
  if (offered.length === 0) return null;
  const chosen = STREAM_PROTOCOLS.find((p) => offered.includes(p));
  if (!chosen) {
    throw new AppError(
      "invalid_argument",
      `unsupported subprotocol; offer one of ${STREAM_PROTOCOLS.join(", ")}`,
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

type StreamContext = Context<{ Bindings: Env; Variables: AuthVariables }>;

/**
 * The one way a stream is opened, whatever it watches: check the upgrade,
 * negotiate the subprotocol, take one of the player's stream slots, hand
 * the socket to the object that serves it, and free the slot if it refused.
 */
export async function openStream(
  c: StreamContext,
  kind: StreamKind,
  target: string,
  connect: (headers: Headers) => Promise<Response>,
): Promise<Response> {
  const protocol = negotiateProtocol(c.req.raw);
  const resume = parseResumeQuery(new URL(c.req.url));
  const auth = c.get("auth");
  const lease = await playerStub(c.env, auth.sub).acquireStream(kind, target);
  if (!lease.ok) {
    metrics.count("crafting_throttles_total", { limit: "stream_slots" });
    log("warn", "stream.refused", {
      player_id: auth.sub,
      kind,
      target,
      reason: lease.error.message,
    });
    throw AppError.from(lease.error);
  }
  // A fresh request: only what the Worker verified reaches the object.
  const headers = new Headers({
    Upgrade: "websocket",
    [STREAM_HEADERS.player]: auth.sub,
    [STREAM_HEADERS.tokenExp]: String(auth.exp),
    [STREAM_HEADERS.leaseId]: lease.value.leaseId,
  });
  if (protocol) headers.set(STREAM_HEADERS.protocol, protocol);
  if (resume) headers.set(STREAM_HEADERS.resume, resume);
  const origin = c.req.header("Origin");
  if (origin) headers.set(STREAM_HEADERS.origin, origin);
  let response: Response;
  try {
    response = await connect(headers);
  } catch (err) {
    await releaseStreamLeases(c.env, [{ playerId: auth.sub, leaseId: lease.value.leaseId }]);
    throw err;
  }
  if (response.status !== 101) {
    await releaseStreamLeases(c.env, [{ playerId: auth.sub, leaseId: lease.value.leaseId }]);
  }
  return response;
}

/** Rejects anything but a WebSocket upgrade, before any object is touched. */
const requireUpgrade = createMiddleware(async (c, next) => {
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    throw new AppError("invalid_argument", "this route expects a WebSocket upgrade");
  }
  await next();
});

/** Routes under /ws. */
export const streamRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables }>()
  .use(requireAllowedOrigin, requireAuth("player"), requireUpgrade)
  .use(rateLimit("UPGRADE_RATE_LIMITER", subject))
  .get("/crafting/:sessionId", async (c) => {
    const sessionId = parseId(c.req.param("sessionId"), "session_id");
    return openStream(c, "session", sessionId, (headers) =>
      sessionStub(c.env, sessionId).fetch("https://crafting-session/stream", { headers }),
    );
  })
  .get("/workflow/:workflowId", async (c) => {
    const workflowId = parseId(c.req.param("workflowId"), "workflow_id");
    return openStream(c, "workflow", workflowId, (headers) =>
      workflowStub(c.env, workflowId).fetch("https://workflow/stream", { headers }),
    );
  })
  .get("/queue/:playerId", async (c) => {
    const playerId = parseId(c.req.param("playerId"), "player_id");
    if (c.get("auth").sub !== playerId) {
      throw new AppError("permission_denied", "a player may watch only their own queue");
    }
    return openStream(c, "queue", playerId, (headers) =>
      playerStub(c.env, playerId).fetch("https://player/queue", { headers }),
    );
  });
