/**
 * CORS for the HTTP calls a game page makes with a player's token: the sync
 * channel's negotiation (`POST /udp/sessions/{id}/connect`, which the SDK's
 * `syncSession` makes) and the streaming RPCs (Connect and gRPC-Web, made
 * for browsers). A page is served from the origins ALLOWED_ORIGINS lists,
 * as its streams are. A page on any other origin is told so, readably, as
 * its streams are told with 4003: its preflight passes, and its call is
 * refused with `403 permission_denied` before anything is done — a browser
 * hides an answer without CORS headers, and the SDK would retry that as a
 * network failure forever. crafting-service's HTTP API sends no CORS.
 */
import { cors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import { type LimitEnv, requireAllowedOrigin } from "./limits";

/** What a page may send: its token, its body's type and coding, a trace, Connect's and gRPC-Web's own headers. */
const ALLOW_HEADERS = [
  "Authorization",
  "Content-Type",
  "Content-Encoding",
  "traceparent",
  "Connect-Protocol-Version",
  "Connect-Timeout-Ms",
  "Connect-Accept-Encoding",
  "Connect-Content-Encoding",
  "Grpc-Timeout",
  "X-Grpc-Web",
  "X-User-Agent",
];

/** What a page may read besides the basics: the trace, when to retry, and gRPC-Web's status. */
const EXPOSE_HEADERS = [
  "traceparent",
  "Retry-After",
  "WWW-Authenticate",
  "Grpc-Status",
  "Grpc-Message",
  "Grpc-Status-Details-Bin",
];

/** The CORS headers for any page (only an allowed one gets past requireAllowedOrigin); preflights are cached for 10 minutes. */
const anyPage = cors({
  origin: (origin) => (origin === "" ? null : origin),
  allowMethods: ["POST"],
  allowHeaders: ALLOW_HEADERS,
  exposeHeaders: EXPOSE_HEADERS,
  maxAge: 600,
});

/** CORS for a page's call; a page on an origin not allowed gets a refusal it can read. */
export const pageCalls = createMiddleware<LimitEnv>((c, next) =>
  anyPage(c, async () => {
    await requireAllowedOrigin(c, next);
  }),
);
