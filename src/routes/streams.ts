/**
 * WebSocket upgrades. The Worker authenticates and negotiates the
 * subprotocol; the Durable Object checks ownership and accepts the socket.
 */
import { Hono } from "hono";
import { STREAM_HEADERS } from "../../durable-objects/crafting-session/stream-attachment";
import { sessionStub } from "../durable";
import { AppError } from "../errors";
import {
  type AuthVariables,
  BEARER_PROTOCOL_PREFIX,
  offeredProtocols,
  requireAuth,
} from "../middleware/auth";
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

/** Routes under /ws. */
export const streamRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables }>().get(
  "/crafting/:sessionId",
  requireAuth("player"),
  async (c) => {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      throw new AppError("invalid_argument", "this route expects a WebSocket upgrade");
    }
    const sessionId = parseId(c.req.param("sessionId"), "session_id");
    const protocol = negotiateProtocol(c.req.raw);
    const auth = c.get("auth");
    // A fresh request: only what the Worker verified reaches the object.
    const headers = new Headers({
      Upgrade: "websocket",
      [STREAM_HEADERS.player]: auth.sub,
      [STREAM_HEADERS.tokenExp]: String(auth.exp),
    });
    if (protocol) headers.set(STREAM_HEADERS.protocol, protocol);
    return sessionStub(c.env, sessionId).fetch("https://crafting-session/stream", { headers });
  },
);
