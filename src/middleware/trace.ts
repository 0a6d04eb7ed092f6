/**
 * W3C Trace Context: a request's `traceparent` is accepted (or one is
 * created), its trace id is carried into the Durable Object, its logs and
 * the frames it causes, and every request gets one access-log line (a
 * successful one at `debug`: the platform records every invocation itself,
 * and a line per progress post would cost more than the post).
 * https://www.w3.org/TR/trace-context/#traceparent-header
 */
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import { log, logs, setLogLevel } from "../log";
import { metrics, pushMetricsSoon } from "../metrics/push";

/** What the Worker passes along with a call into a Durable Object. */
export interface TraceContext {
  traceId: string;
  /** When the request reached the edge (ms since the epoch). */
  receivedAtMs: number;
  /**
   * The caller sent the trace (`traceparent`): frames then carry its id so a
   * client's frame joins the caller's trace. Ids we made up stay in the logs,
   * out of the frames (32 bytes of every update nobody would look up).
   */
  propagated?: boolean;
}

/** The trace id frames carry: the caller's, when it sent one ("" otherwise). */
export function frameTraceId(trace: TraceContext | undefined): string {
  return trace?.propagated ? trace.traceId : "";
}

/** Hono variables set by the trace middleware. */
export interface TraceVariables {
  trace: TraceContext;
  requestId: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace id of a valid `traceparent`, or null (all-zero ids and version ff are invalid). */
export function parseTraceparent(header: string | null | undefined): string | null {
  const match = header ? TRACEPARENT.exec(header.trim().toLowerCase()) : null;
  if (!match || match[1] === "ff") return null;
  const traceId = match[2] as string;
  if (/^0+$/.test(traceId) || /^0+$/.test(match[3] as string)) return null;
  return traceId;
}

/**
 * One random draw per request (it runs on every one): 32 hex digits, the
 * trace id when the caller sent none, whose second half (never all zeros:
 * a UUID's variant digit leads it) is our span id.
 */
function randomIds(): { traceId: string; spanId: string } {
  const hex = crypto.randomUUID().replaceAll("-", "");
  return { traceId: hex, spanId: hex.slice(16) };
}

/** Sets the trace, answers with our `traceparent`, and logs and counts the request. */
export const traceRequests = createMiddleware<{
  Bindings: Env;
  Variables: TraceVariables & { auth?: { sub: string } };
}>(async (c, next) => {
  setLogLevel(c.env.LOG_LEVEL);
  const receivedAtMs = Date.now();
  const propagated = parseTraceparent(c.req.header("traceparent"));
  const random = randomIds();
  const traceId = propagated ?? random.traceId;
  // Our span: the `traceparent` we answer names it, and (where the edge
  // gave no Ray ID) the access-log line carries it, so one finds the other.
  const requestId = c.req.header("cf-ray") ?? random.spanId;
  c.set("trace", { traceId, receivedAtMs, propagated: propagated !== null });
  c.set("requestId", requestId);
  try {
    await next();
  } finally {
    const status = c.res.status;
    // Upgrades keep their 101 response untouched.
    if (status !== 101) {
      const traceparent = `00-${traceId}-${random.spanId}-01`;
      try {
        c.res.headers.set("traceparent", traceparent);
      } catch {
        // A response passed through from a Durable Object has immutable headers.
        c.res = new Response(c.res.body, c.res);
        c.res.headers.set("traceparent", traceparent);
      }
    }
    // The route as registered (`/v1/sessions/:id/:action`), never the raw path: bounded label values.
    const matched = matchedRoutes(c);
    const route = matched.length > 1 ? (matched.at(-1)?.path ?? "") : "unmatched";
    metrics.count("crafting_http_requests_total", { route, code: String(status) });
    const level = status >= 500 ? "error" : status >= 400 ? "warn" : "debug";
    // A successful request's line is usually off: its fields are not even built then.
    if (logs(level))
      log(level, "request", {
        request_id: requestId,
        trace_id: traceId,
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        status,
        duration_ms: Date.now() - receivedAtMs,
        player_id: c.get("auth")?.sub,
      });
    try {
      pushMetricsSoon(c.env, (promise) => c.executionCtx.waitUntil(promise));
    } catch {
      // No execution context (tests calling app.fetch directly): the timer still runs.
      pushMetricsSoon(c.env);
    }
  }
});
