/** The Hono app: every route mounted, one error shape. */
import { type Context, Hono, type Next } from "hono";
import { HTTPException } from "hono/http-exception";
import { AppError, httpStatus, knownError } from "./errors";
import { allowedMethods, meantPath, routed } from "./http/allowed-methods";
import { log } from "./log";
import { bearerChallenge } from "./middleware/auth";
import { pageCalls } from "./middleware/cors";
import { checkQuery } from "./middleware/query";
import { readableRefusals } from "./middleware/refusals";
import { traceRequests } from "./middleware/trace";
import { eventRoutes } from "./routes/events";
import { healthRoutes, metricsRoutes } from "./routes/health";
import { playerRoutes } from "./routes/players";
import { progressBatchRoutes, sessionReportRoutes, sessionRoutes } from "./routes/sessions";
import { streamRoutes } from "./routes/streams";
import { syncChannelRoutes } from "./routes/sync-channel";
import { workflowRoutes } from "./routes/workflows";
import { handleRpc, RPC_PATH_PREFIX } from "./rpc/streaming-service";

/** The Worker's router. */
export const app = new Hono<{ Bindings: Env }>()
  .use(traceRequests)
  // Browsers (and the SDK in Node or Workers) cannot read a refused
  // handshake's status: every refused upgrade, whatever its path, gets a close code.
  .use(readableRefusals)
  // Credentials in a URL are refused; so, on the API, a query parameter a route does not read.
  .use(checkQuery)
  // A path no route takes is told so (404, or 405 with Allow) before any
  // route group's auth or upgrade check judges it: a typo is not a 403.
  // Only the groups that check the caller for all their paths need it (the
  // /udp routes check per route, so a progress post is not asked twice).
  .use("/v1/*", routedFirst)
  .use("/ws/*", routedFirst)
  .use("/metrics/*", routedFirst)
  // A game page on an allowed origin may make the calls a player's token opens.
  .use("/udp/sessions/:id/connect", pageCalls)
  .use(`${RPC_PATH_PREFIX}*`, pageCalls)
  .route("/health", healthRoutes)
  .route("/metrics", metricsRoutes)
  .route("/v1/sessions", sessionRoutes)
  .route("/v1/progress", progressBatchRoutes)
  .route("/v1/events", eventRoutes)
  .route("/v1/players", playerRoutes)
  .route("/v1/workflows", workflowRoutes)
  .route("/udp/sessions", sessionReportRoutes)
  .route("/udp/sessions", syncChannelRoutes)
  .route("/ws", streamRoutes)
  // Streaming RPCs (Connect, gRPC-Web): errors in their protocols' own shapes.
  .post(`${RPC_PATH_PREFIX}*`, (c) => handleRpc(c.env, c.req.raw));

/**
 * Goes on when a route (middleware aside) takes the request; else refuses
 * it. These groups take no preflight (no page calls them), so an `OPTIONS`
 * is a method like any other: `405` with the methods the path takes.
 */
function routedFirst(c: Context, next: Next): Promise<void> {
  return routed(c) ? next() : refuseUnrouted(c);
}

/** No route takes the request: 404 (naming the path meant, if only slashes differ), or 405 with Allow. */
function refuseUnrouted(c: Context): never {
  const allowed = allowedMethods(app.router, c.req.path, c.req.method);
  if (allowed.length === 0) {
    const meant = meantPath(app.router, c.req.path, app.routes);
    throw new AppError(
      "not_found",
      meant ? `no such route: did you mean ${meant.slice(0, 200)}?` : "no such route",
    );
  }
  c.header("Allow", allowed.join(", "));
  throw new AppError(
    "method_not_allowed",
    `${c.req.method} is not allowed here: use ${allowed.join(" or ")}`,
  );
}

app.notFound(refuseUnrouted);

app.onError((err, c) => {
  const known = knownError(err) ?? honoError(err);
  if (known) {
    if (known.retryAfterSeconds !== undefined)
      c.header("Retry-After", String(known.retryAfterSeconds));
    // Every 401 says what to present (RFC 9110 §11.6.1), whoever refused.
    const headers =
      known.code === "unauthenticated" ? { ...bearerChallenge(), ...known.headers } : known.headers;
    for (const [name, value] of Object.entries(headers ?? {})) c.header(name, value);
    return c.json({ error: { code: known.code, message: known.message } }, httpStatus(known.code));
  }
  log("error", "request.error", {
    method: c.req.method,
    path: new URL(c.req.url).pathname,
    message: err instanceof Error ? err.message : String(err),
  });
  return c.json({ error: { code: "internal", message: "internal error" } }, 500);
});

/** An HTTPException Hono threw, in our error codes. */
function honoError(err: unknown): AppError | null {
  if (!(err instanceof HTTPException)) return null;
  const code =
    err.status === 413
      ? "payload_too_large"
      : err.status === 401
        ? "unauthenticated"
        : "invalid_argument";
  return new AppError(code, err.message);
}
