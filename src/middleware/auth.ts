/**
 * Bearer-token authentication. Tokens come from `Authorization: Bearer …`
 * or, for browsers that cannot set headers on a WebSocket, from the
 * subprotocol list (`bearer.<token>`). Tokens in URLs are refused outright:
 * URLs end up in logs, histories and proxies.
 */
import { createMiddleware } from "hono/factory";
import { type TokenClaims, type TokenScope, verifyJwt } from "../auth/jwt";
import { AppError } from "../errors";
import { log } from "../log";
import { metrics } from "../metrics/push";

/** Hono variables set by this middleware. */
export interface AuthVariables {
  auth: TokenClaims;
}

/** Subprotocol prefix that carries a browser's token. */
export const BEARER_PROTOCOL_PREFIX = "bearer.";
/** Query parameters that look like credentials: any of them fails the request. */
const CREDENTIAL_PARAMS = [
  "token",
  "access_token",
  "jwt",
  "auth",
  "authorization",
  "bearer",
  "id_token",
];
/** Shortest HS256 secret accepted (bytes): RFC 7518 §3.2 asks for at least the hash size. */
export const MIN_SECRET_LENGTH = 32;

/** The comma-separated entries of `Sec-WebSocket-Protocol`. */
export function offeredProtocols(request: Request): string[] {
  const header = request.headers.get("Sec-WebSocket-Protocol");
  if (!header) return [];
  return header
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/** The bearer token of a request, from the header or the subprotocol list. */
export function bearerToken(request: Request): string | null {
  const header = request.headers.get("Authorization");
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1] ?? null;
  }
  const fromProtocol = offeredProtocols(request).find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));
  return fromProtocol ? fromProtocol.slice(BEARER_PROTOCOL_PREFIX.length) : null;
}

/** Fails the request when its URL carries something that looks like a credential. */
export const refuseCredentialsInUrl = createMiddleware(async (c, next) => {
  const params = new URL(c.req.url).searchParams;
  if (CREDENTIAL_PARAMS.some((name) => params.has(name))) {
    throw new AppError(
      "invalid_argument",
      "credentials in the URL are refused: send Authorization: Bearer <token> (or the bearer.<token> subprotocol)",
    );
  }
  await next();
});

const refusalMessages = {
  malformed: "the bearer token is malformed",
  bad_algorithm: "the bearer token must be signed with HS256",
  bad_signature: "the bearer token's signature is invalid",
  expired: "the bearer token has expired",
  not_yet_valid: "the bearer token is not valid yet",
  bad_claims: "the bearer token lacks sub, scope or exp",
} as const;

/**
 * The claims of a request's valid token of the given scope, or the
 * refusal (AppError). A bad token costs one HMAC and nothing else.
 */
export async function authenticate(
  env: Env,
  request: Request,
  scope: TokenScope,
): Promise<TokenClaims> {
  const secret = env.JWT_SECRET;
  if (!secret || secret.length < MIN_SECRET_LENGTH) {
    throw new AppError("unavailable", "authentication is not configured (JWT_SECRET)");
  }
  const token = bearerToken(request);
  if (!token) {
    logAuthFailure(request, "missing");
    throw new AppError("unauthenticated", "a bearer token is required");
  }
  const result = await verifyCached(token, secret, Date.now());
  if (!result.ok) {
    logAuthFailure(request, result.reason);
    throw new AppError("unauthenticated", refusalMessages[result.reason]);
  }
  if (result.claims.scope !== scope) {
    logAuthFailure(request, "wrong_scope");
    throw new AppError(
      "permission_denied",
      {
        service: "this route needs a crafting-service token",
        player: "this route needs a player token",
        sync: "this route needs a sync token from POST /udp/sessions/{id}/connect",
      }[scope],
    );
  }
  return result.claims;
}

/** Tokens this isolate verified, until their expiry: crafting-service sends the same one with every update. */
const verified = new Map<string, { secret: string; claims: TokenClaims }>();
/** Most tokens remembered per isolate (the oldest is forgotten first). */
export const VERIFIED_TOKEN_CACHE_SIZE = 1000;

/**
 * Verifies a token, or answers from the tokens already verified with the
 * same secret while they are unexpired: a signature check costs ~80 µs, and
 * a busy caller presents the same token thousands of times a second.
 * Refused tokens are never remembered.
 */
async function verifyCached(token: string, secret: string, nowMs: number) {
  const known = verified.get(token);
  if (known && known.secret === secret && known.claims.exp * 1000 > nowMs) {
    return { ok: true as const, claims: known.claims };
  }
  const result = await verifyJwt(token, secret, nowMs);
  if (known) verified.delete(token);
  if (result.ok) {
    if (verified.size >= VERIFIED_TOKEN_CACHE_SIZE) {
      const oldest = verified.keys().next().value;
      if (oldest !== undefined) verified.delete(oldest);
    }
    verified.set(token, { secret, claims: result.claims });
  }
  return result;
}

/** Requires a valid token of the given scope, before any Durable Object is touched. */
export function requireAuth(scope: TokenScope) {
  return createMiddleware<{ Bindings: Env; Variables: AuthVariables }>(async (c, next) => {
    c.set("auth", await authenticate(c.env, c.req.raw, scope));
    await next();
  });
}

function logAuthFailure(request: Request, reason: string): void {
  metrics.count("crafting_auth_failures_total", { reason });
  const url = new URL(request.url);
  log("warn", "auth.failure", {
    reason,
    path: url.pathname,
    origin: request.headers.get("Origin"),
  });
}
