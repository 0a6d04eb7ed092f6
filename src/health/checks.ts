/**
 * Named health checks of the service's dependencies, each with a status
 * and its latency; used by `POST /health/batch` and the operators'
 * `/health/ws` snapshots.
 */

import { keyringOf } from "../auth/keys";
import { collectRecentTotals } from "../metrics/push";
import { summarizeTotals } from "../metrics/registry";
import { SLO_WINDOW_MS } from "../metrics/slo-window";

/** The status of one check (the `crafting.v1.HealthStatus` names, short). */
export type CheckStatus = "ok" | "degraded" | "failing";

/** One check's result. */
export interface CheckResult {
  name: CheckName;
  status: CheckStatus;
  latency_ms: number;
  message: string;
}

/** Seed 000's alert thresholds. */
export const SLO = { maxStreamFailureRatio: 0.01, maxDeliveryP99Seconds: 0.05 } as const;

/** Whether a summary exceeds seed 000's thresholds (stream failures > 1 %, delivery p99 > 50 ms). */
export function sloBreached(summary: {
  streamFailureRatio: number;
  deliveryP99Seconds: number | null;
}): boolean {
  return (
    summary.streamFailureRatio > SLO.maxStreamFailureRatio ||
    (summary.deliveryP99Seconds ?? 0) > SLO.maxDeliveryP99Seconds
  );
}

const TIMEOUT_MS = 2000;

const percent = (ratio: number) => `${(ratio * 100).toFixed(2)} %`;

type Check = (env: Env) => Promise<{ status: CheckStatus; message: string }>;

const present = (value: unknown, method: string) =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as Record<string, unknown>)[method] === "function";

/** Every check, by name. */
const CHECKS = {
  /** The keys are configured: the signing secret long enough, the others well formed. */
  secret: async (env) => {
    const keys = keyringOf(env);
    if (!keys.ok) return { status: "failing", message: keys.problem };
    const { secrets, idp } = keys.keyring;
    const accepted = `${secrets.size} key${secrets.size === 1 ? "" : "s"}${idp ? " and an identity provider" : ""}`;
    return { status: "ok", message: `configured: ${accepted}` };
  },
  /** A Durable Object answers a call (the player namespace: a read that writes nothing). */
  durable_objects: async (env) => {
    if (!present(env.PLAYER, "getByName") || !present(env.CRAFTING_SESSION, "getByName")) {
      return { status: "failing", message: "a Durable Object binding is missing" };
    }
    await env.PLAYER.getByName("health-check").streams();
    return { status: "ok", message: "answered" };
  },
  /** A Durable Object's SQLite storage answers a query. */
  storage: async (env) => {
    if (!present(env.METRICS, "getByName"))
      return { status: "failing", message: "the METRICS binding is missing" };
    await env.METRICS.getByName("health").ping();
    return { status: "ok", message: "SQLite answered" };
  },
  /** The Queue producers are bound (a send would create a message; presence is what can be checked). */
  queues: async (env) => {
    const missing = (["EVENTS_QUEUE", "PROGRESS_QUEUE", "DEAD_LETTER_QUEUE"] as const).filter(
      (name) => !present(env[name], "sendBatch"),
    );
    if (missing.length > 0)
      return { status: "failing", message: `not bound: ${missing.join(", ")}` };
    return { status: "ok", message: "bound" };
  },
  /** Dead letters waiting for an operator. */
  dead_letters: async (env) => {
    if (!present(env.DEAD_LETTERS, "getByName"))
      return { status: "failing", message: "the DEAD_LETTERS binding is missing" };
    const { count } = await env.DEAD_LETTERS.getByName("dead-letters").list(1);
    return { status: count > 0 ? "degraded" : "ok", message: `${count} dead letters kept` };
  },
  /**
   * Seed 000's thresholds over the last 15 minutes: stream failures (the
   * server's) over 1 %, delivery p99 over 50 ms. Drops are told, not
   * judged: clients vanish on their own.
   */
  slo: async (env) => {
    const summary = summarizeTotals(await collectRecentTotals(env));
    const p99 =
      summary.deliveryP99Seconds === null
        ? "no deliveries"
        : `delivery p99 ≤ ${summary.deliveryP99Seconds * 1000} ms`;
    return {
      status: sloBreached(summary) ? "degraded" : "ok",
      message: `last ${SLO_WINDOW_MS / 60_000} min: stream failures ${percent(summary.streamFailureRatio)}, drops ${percent(summary.streamDropRatio)}, ${p99}`,
    };
  },
} satisfies Record<string, Check>;

/** A check's name. */
export type CheckName = keyof typeof CHECKS;
/** Every check name, in report order. */
export const CHECK_NAMES = Object.keys(CHECKS) as CheckName[];

/** Runs the named checks concurrently; a check that throws or takes over 2 s is failing. */
export async function runHealthChecks(
  env: Env,
  names: readonly CheckName[] = CHECK_NAMES,
): Promise<CheckResult[]> {
  return Promise.all(
    names.map(async (name) => {
      const started = performance.now();
      let outcome: { status: CheckStatus; message: string };
      try {
        outcome = await Promise.race([
          CHECKS[name](env),
          new Promise<never>((_, reject) =>
            setTimeout(() => reject(new Error(`no answer in ${TIMEOUT_MS} ms`)), TIMEOUT_MS),
          ),
        ]);
      } catch (e) {
        outcome = { status: "failing", message: e instanceof Error ? e.message : String(e) };
      }
      return {
        name,
        ...outcome,
        latency_ms: Math.round((performance.now() - started) * 100) / 100,
      };
    }),
  );
}

/** The worst of the statuses. */
export function overall(results: readonly { status: CheckStatus }[]): CheckStatus {
  if (results.some((r) => r.status === "failing")) return "failing";
  if (results.some((r) => r.status === "degraded")) return "degraded";
  return "ok";
}
