/**
 * Refusals a browser can read. A browser's WebSocket API hides the status of
 * a refused handshake — 401, 403 and 404 all surface as close 1006 — so a
 * page cannot tell a wrong token from a server that is down, and retries
 * forever. For browsers (a handshake with an `Origin`), a refused upgrade is
 * therefore accepted and closed at once with the refusal as a close code and
 * reason: 4001 (the token), 4003 (not yours), 4004 (no such thing), 1008
 * (a malformed request), 1013 (try again later: rate limits, slots, a
 * restarting object); an upgrade that a route answered without upgrading
 * (a 200 from `/health`) is closed with 4004. So is the upgrade of any
 * client that offers the `crafting.refusals` subprotocol (the SDK does, for
 * Node and Workers, whose WebSocket hides the status as a browser's does).
 * Other native clients keep the HTTP status.
 */
import { createMiddleware } from "hono/factory";
import {
  CloseCode,
  type ErrorCode,
  READABLE_REFUSALS_PROTOCOL,
  REFUSAL_CLOSE_CODES,
} from "../errors";
import { INGEST_PROTOCOL, SUBPROTOCOL } from "../protocol/stream-codec";
import { offeredProtocols } from "./auth";

/** Close reasons are at most 123 bytes (RFC 6455 §5.5): long messages are cut. */
function closeReason(message: string): string {
  const bytes = new TextEncoder().encode(message);
  if (bytes.byteLength <= 123) return message;
  return `${new TextDecoder().decode(bytes.slice(0, 120)).replace(/\uFFFD+$/, "")}…`;
}

/** Turns a browser's (or an asking client's) refused upgrade into an accepted stream closed with the refusal. */
export const readableRefusals = createMiddleware(async (c, next) => {
  await next();
  const upgrade = c.req.raw.headers.get("Upgrade")?.toLowerCase() === "websocket";
  if (!upgrade || c.res.status === 101) return;
  const offered = offeredProtocols(c.req.raw);
  const browser = c.req.header("Origin") !== undefined;
  if (!browser && !offered.includes(READABLE_REFUSALS_PROTOCOL)) return;
  // A route that answered without upgrading (a 200 from /health) is no stream.
  type Refusal = { error?: { code?: ErrorCode; message?: string } } | null;
  const body: Refusal =
    c.res.status < 400
      ? { error: { code: "not_found", message: `${c.req.path} is not a stream` } }
      : ((await c.res
          .clone()
          .json()
          .catch(() => null)) as Refusal);
  const code = body?.error?.code ?? "internal";
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  server.close(
    REFUSAL_CLOSE_CODES[code] ?? CloseCode.INTERNAL_ERROR,
    closeReason(body?.error?.message ?? "the stream was refused"),
  );
  // A browser fails a handshake that does not echo one of the subprotocols it offered.
  const headers = new Headers();
  const protocol = offered.find((p) => SPOKEN.has(p));
  if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
  c.res = new Response(null, { status: 101, webSocket: client, headers });
});

/** Subprotocols a refusal may echo (never the bearer entry). */
const SPOKEN = new Set<string>([...Object.values(SUBPROTOCOL), INGEST_PROTOCOL]);
