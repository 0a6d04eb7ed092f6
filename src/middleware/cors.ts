/**
 * CORS for the HTTP calls a game page makes with a player's token: the sync
 * channel's negotiation (`POST /udp/sessions/{id}/connect`, which the SDK's
 * `syncSession` makes) and the streaming RPCs (Connect and gRPC-Web, made
 * for browsers). A page is served from the origins ALLOWED_ORIGINS lists,
 * as its streams are; any other origin gets no CORS headers, so its browser
 * keeps the answer from it. crafting-service's HTTP API sends none.
 */
import { cors } from "hono/cors";
import { originAllowed } from "./limits";

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

/** CORS for an allowed page's calls; preflights are cached for 10 minutes. */
export const pageCalls = cors({
  origin: (origin, c) =>
    origin !== "" &&
    originAllowed(origin, (c.env as Env).ALLOWED_ORIGINS ?? "", new URL(c.req.url).origin)
      ? origin
      : null,
  allowMethods: ["POST"],
  allowHeaders: ALLOW_HEADERS,
  exposeHeaders: EXPOSE_HEADERS,
  maxAge: 600,
});
