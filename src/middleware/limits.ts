/**
 * Request-level limits: the Origin allowlist for browser upgrades and the
 * Workers Rate Limiting binding on upgrades, ingest and health routes.
 * https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { AppError } from "../errors";
import { log } from "../log";
import { metrics } from "../metrics/push";
import type { AuthVariables } from "./auth";

export type LimitEnv = { Bindings: Env; Variables: Partial<AuthVariables> };

/** The rate limiters of wrangler.toml. */
export type RateLimiterName =
  | "UPGRADE_RATE_LIMITER"
  | "INGEST_RATE_LIMITER"
  | "HEALTH_RATE_LIMITER";

/** The period of each limiter (wrangler.toml), for Retry-After. */
const PERIOD_SECONDS: Record<RateLimiterName, number> = {
  UPGRADE_RATE_LIMITER: 60,
  INGEST_RATE_LIMITER: 10,
  HEALTH_RATE_LIMITER: 60,
};

/**
 * Requests one successful binding call stands for. crafting-service's
 * ingest is the hot path (every progress update): asking the binding for
 * each request costs more than the update itself, so one call grants a
 * credit of 16 requests to this isolate for up to a second, and
 * INGEST_RATE_LIMITER's limit in wrangler.toml is counted in grants
 * (1,250 per 10 s = 20,000 requests per 10 s). Every request is still
 * covered by a counted grant: the cap is exact in requests, an isolate may
 * only leave part of a grant unused. A grant running low (half spent, or
 * in its last half second) is renewed in the background while its credits
 * still serve, so a steady caller never waits for the binding; a refused
 * renewal just lets the held credits run out. Upgrades and health checks
 * ask every time.
 */
export const CREDITS_PER_GRANT: Record<RateLimiterName, number> = {
  UPGRADE_RATE_LIMITER: 1,
  INGEST_RATE_LIMITER: 16,
  HEALTH_RATE_LIMITER: 1,
};

/** How long a grant's unused credits last. */
export const CREDIT_TTL_MS = 1000;
/** How close to lapsing a grant is renewed ahead of need. */
const RENEW_BEFORE_MS = CREDIT_TTL_MS / 2;

/** Request credits this isolate holds per limiter and key, from granted binding calls. */
export class Credits {
  readonly #held = new Map<
    string,
    { left: number; expiresAtMs: number; granted: number; renewing: boolean }
  >();

  constructor(private readonly maxKeys = 10_000) {}

  /** Spends one held credit for `key`; false when there is none (ask the binding). */
  take(key: string, nowMs: number): boolean {
    const held = this.#held.get(key);
    if (!held || held.left <= 0 || held.expiresAtMs <= nowMs) return false;
    held.left--;
    return true;
  }

  /**
   * Whether to renew `key`'s grant now, in the background: credits are held
   * but half spent or about to lapse, and no renewal is under way (this
   * marks one under way until `grant` or `renewalRefused`).
   */
  shouldRenew(key: string, nowMs: number): boolean {
    const held = this.#held.get(key);
    if (!held || held.renewing || held.expiresAtMs <= nowMs) return false;
    const low = held.left <= held.granted / 2 || held.expiresAtMs - nowMs <= RENEW_BEFORE_MS;
    if (low) held.renewing = true;
    return low;
  }

  /** Adds `left` credits of a granted binding call to those still held, for a fresh TTL. */
  grant(key: string, left: number, nowMs: number): void {
    if (this.#held.size >= this.maxKeys && !this.#held.has(key)) this.#held.clear();
    const held = this.#held.get(key);
    const still = held && held.expiresAtMs > nowMs ? held.left : 0;
    this.#held.set(key, {
      left: still + left,
      expiresAtMs: nowMs + CREDIT_TTL_MS,
      granted: left,
      renewing: false,
    });
  }

  /** The binding refused (or failed) a renewal: the held credits run out, then callers ask. */
  renewalRefused(key: string): void {
    const held = this.#held.get(key);
    if (held) held.renewing = false;
  }
}

const credits = new Credits();

/**
 * Whether `origin` may open streams under the ALLOWED_ORIGINS setting. The
 * service's own origin (`self`: the dashboard it serves) always may.
 */
export function originAllowed(origin: string | null, allowed: string, self?: string): boolean {
  // Native game clients and servers send no Origin: the allowlist guards browsers.
  if (origin === null || origin === self) return true;
  const entries = allowed
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  return entries.includes("*") || entries.includes(origin);
}

/** 403 for a browser whose Origin is not on the allowlist. */
export const requireAllowedOrigin = createMiddleware<LimitEnv>(async (c, next) => {
  const origin = c.req.header("Origin") ?? null;
  if (!originAllowed(origin, c.env.ALLOWED_ORIGINS ?? "", new URL(c.req.url).origin)) {
    log("warn", "stream.origin_refused", { origin, path: new URL(c.req.url).pathname });
    throw new AppError("permission_denied", `origin ${origin} may not open streams here`);
  }
  await next();
});

/** The caller's IP as Cloudflare reports it. */
export function clientIp(c: Context): string {
  return c.req.header("CF-Connecting-IP") ?? "unknown";
}

/**
 * 429 with Retry-After once `key` exceeded the limiter's budget. The binding
 * counts per Cloudflare location and is approximate by design: it stops
 * floods; exact quotas (streams per player) are kept by Durable Objects.
 */
export function rateLimit(name: RateLimiterName, key: (c: Context<LimitEnv>) => string) {
  return createMiddleware<LimitEnv>(async (c, next) => {
    await checkRateLimit(c.env, name, key(c), c.req.path, (work) => c.executionCtx.waitUntil(work));
    await next();
  });
}

/**
 * Counts one request of `key` against a limiter; `resource_exhausted` past
 * its budget. With `waitUntil`, a grant running low is renewed in the
 * background (`Credits.shouldRenew`).
 */
export async function checkRateLimit(
  env: Env,
  name: RateLimiterName,
  key: string,
  path: string,
  waitUntil?: (work: Promise<unknown>) => void,
): Promise<void> {
  const granted = CREDITS_PER_GRANT[name];
  const creditKey = `${name}:${key}`;
  const now = Date.now();
  const held = granted > 1 ? credits.take(creditKey, now) : false;
  if (held) {
    if (waitUntil && credits.shouldRenew(creditKey, now))
      waitUntil(renew(env, name, key, creditKey, granted));
    return;
  }
  const { success } = await env[name].limit({ key });
  if (success) {
    if (granted > 1) credits.grant(creditKey, granted - 1, Date.now());
    return;
  }
  metrics.count("crafting_throttles_total", {
    limit: name.replace("_RATE_LIMITER", "").toLowerCase(),
  });
  log("warn", "request.rate_limited", { limiter: name, path });
  throw new AppError(
    "resource_exhausted",
    "rate limit exceeded: retry later",
    PERIOD_SECONDS[name],
  );
}

/** Asks the binding for a whole grant ahead of need; never fails the request that set it off. */
async function renew(
  env: Env,
  name: RateLimiterName,
  key: string,
  creditKey: string,
  granted: number,
): Promise<void> {
  try {
    const { success } = await env[name].limit({ key });
    if (success) credits.grant(creditKey, granted, Date.now());
    else credits.renewalRefused(creditKey);
  } catch (e: unknown) {
    credits.renewalRefused(creditKey);
    log("warn", "request.rate_limit_renewal_failed", {
      limiter: name,
      message: e instanceof Error ? e.message : String(e),
    });
  }
}

/** The authenticated subject, for limits that follow authentication. */
export function subject(c: Context<LimitEnv>): string {
  return c.get("auth")?.sub ?? "anonymous";
}
