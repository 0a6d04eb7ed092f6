/**
 * Health and metrics for operators and load balancers:
 * `GET /health` (liveness: no Durable Object touched), `POST /health/batch`
 * (named dependency checks), `GET /health/ws` (periodic snapshots),
 * `GET /metrics` (Prometheus text).
 */
import { Hono } from "hono";
import * as v from "valibot";
import { keyringOf } from "../auth/keys";
import {
  CHECK_NAMES,
  type CheckName,
  overall,
  runHealthChecks,
  sloBreached,
} from "../health/checks";
import { descriptorBudgetOf, descriptors } from "../health/descriptor-budget";
import { readJsonBody } from "../http/body";
import { fields, parse } from "../http/valid";
import { collectRecentTotals, collectTotals } from "../metrics/push";
import { renderPrometheus, summarizeTotals } from "../metrics/registry";
import { type AuthVariables, requireAuth } from "../middleware/auth";
import { clientIp, rateLimit, subject } from "../middleware/limits";
import { connectStream, negotiateProtocol, parseResumeQuery, requireUpgrade } from "./streams";

type Binding = "ok" | "missing" | "misconfigured";

const bound = (value: unknown) => typeof value === "object" && value !== null;

const CHECKS_RULE = `must be a non-empty list of: ${CHECK_NAMES.join(", ")}`;
/** `POST /health/batch` body: `{ "checks": [...] }`, all checks when absent. */
const batchBody = fields(
  {
    checks: v.nullish(
      v.pipe(
        v.array(v.picklist(CHECK_NAMES, CHECKS_RULE), CHECKS_RULE),
        v.minLength(1, CHECKS_RULE),
      ),
    ),
  },
  "the body must be a JSON object",
);

/** Routes under /health. */
export const healthRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables }>()
  .use(rateLimit("HEALTH_RATE_LIMITER", clientIp))
  .get("/", (c) => {
    const secret = c.env.JWT_SECRET;
    const bindings: Record<string, Binding> = {
      CRAFTING_SESSION: bound(c.env.CRAFTING_SESSION) ? "ok" : "missing",
      PLAYER: bound(c.env.PLAYER) ? "ok" : "missing",
      METRICS: bound(c.env.METRICS) ? "ok" : "missing",
      DEAD_LETTERS: bound(c.env.DEAD_LETTERS) ? "ok" : "missing",
      EVENTS_QUEUE: bound(c.env.EVENTS_QUEUE) ? "ok" : "missing",
      PROGRESS_QUEUE: bound(c.env.PROGRESS_QUEUE) ? "ok" : "missing",
      JWT_SECRET: !secret ? "missing" : keyringOf(c.env).ok ? "ok" : "misconfigured",
    };
    const healthy = Object.values(bindings).every((check) => check === "ok");
    const budget = descriptorBudgetOf(c.env);
    return c.json(
      {
        status: healthy ? "ok" : "failing",
        version: c.env.SERVICE_VERSION,
        time: new Date().toISOString(),
        bindings,
        // Where a budget is kept (a local workerd): this isolate's estimate against it.
        ...(budget > 0 ? { descriptors: { held: descriptors.held(Date.now()), budget } } : {}),
      },
      healthy ? 200 : 503,
    );
  })
  .post("/batch", async (c) => {
    const body = parse(batchBody, await readJsonBody(c.req.raw, { optional: true }));
    const names: CheckName[] = body.checks ? [...new Set(body.checks)] : CHECK_NAMES;
    const checks = await runHealthChecks(c.env, names);
    const status = overall(checks);
    return c.json(
      { status, version: c.env.SERVICE_VERSION, time: new Date().toISOString(), checks },
      status === "failing" ? 503 : 200,
    );
  })
  // The operators' health stream: a stream like every other (a slot of the
  // caller's, heartbeats, the idle close, token expiry), for a service or operator token.
  .get(
    "/ws",
    requireAuth("service", "operator"),
    requireUpgrade,
    rateLimit("UPGRADE_RATE_LIMITER", subject),
    (c) =>
      connectStream(c.env, c.get("auth"), {
        kind: "health",
        target: "health",
        protocol: negotiateProtocol(c.req.raw),
        resume: parseResumeQuery(new URL(c.req.url)),
        origin: c.req.header("Origin") ?? null,
      }),
  );

/** `GET /metrics`: the Prometheus text exposition, for a crafting-service (scraper) or operator token. */
export const metricsRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables }>()
  .use(requireAuth("service", "operator"))
  .get("/", async (c) => {
    const [totals, recent] = await Promise.all([collectTotals(c.env), collectRecentTotals(c.env)]);
    // The SLO gauges judge the last 15 minutes, as the `slo` health check does.
    const summary = summarizeTotals(recent);
    const p99 = summary.deliveryP99Seconds;
    const text = renderPrometheus(totals, [
      {
        name: "crafting_slo_stream_failure_ratio",
        help: "Share of streams the server ended with an internal error (1011), over the last 15 minutes.",
        value: summary.streamFailureRatio,
      },
      {
        name: "crafting_slo_stream_drop_ratio",
        help: "Share of streams that dropped without a close frame (1006; most often the client's network), over the last 15 minutes; not in the SLO.",
        value: summary.streamDropRatio,
      },
      {
        name: "crafting_slo_delivery_p99_seconds",
        help: "Upper bound of the bucket holding the delivery-latency p99 over the last 15 minutes (0 without deliveries).",
        value: p99 === null || !Number.isFinite(p99) ? 0 : p99,
      },
      {
        name: "crafting_slo_breached",
        help: "1 when seed 000's thresholds (stream failures > 1 %, delivery p99 > 50 ms) are exceeded over the last 15 minutes.",
        value: sloBreached(summary) ? 1 : 0,
      },
    ]);
    return c.text(text, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  });
