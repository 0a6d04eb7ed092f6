/**
 * Bearer-token authentication. Tokens come from `Authorization: Bearer …`
 * or, for browsers that cannot set headers on a WebSocket, from the
 * subprotocol list (`bearer.<token>`). Tokens in URLs are refused outright:
 * URLs end up in logs, histories and proxies.
 */
import { createMiddleware } from "hono/factory";
import { type TokenClaims, type TokenScope, type Verified, verifyJwt } from "../auth/jwt";
import { type IdentityProvider, type Keyring, keyringOf } from "../auth/keys";
import { ID_PATTERN, ID_RULE } from "../domain/ids";
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

/** Fails a request whose query parameters carry something that looks like a credential. */
export function refuseCredentials(params: URLSearchParams): void {
  if (CREDENTIAL_PARAMS.some((name) => params.has(name))) {
    throw new AppError(
      "invalid_argument",
      "credentials in the URL are refused: send Authorization: Bearer <token> (or the bearer.<token> subprotocol)",
    );
  }
}

/** The realm of every challenge (RFC 6750 §3). */
const REALM = "crafting";

/**
 * A 401's `WWW-Authenticate` challenge (RFC 9110 §11.6.1, RFC 6750 §3):
 * a Bearer token is what the caller must present, and when it presented
 * one that failed, why (`invalid_token`, or `insufficient_scope` on a 403).
 * Messages here are plain ASCII without quotes or backslashes, as a
 * quoted `error_description` must be.
 */
export function bearerChallenge(
  error?: "invalid_token" | "insufficient_scope",
  description?: string,
): { "WWW-Authenticate": string } {
  const parts = [`Bearer realm="${REALM}"`];
  if (error) parts.push(`error="${error}"`);
  if (description) parts.push(`error_description="${description}"`);
  return { "WWW-Authenticate": parts.join(", ") };
}

const refusalMessages = {
  malformed: "the bearer token is malformed",
  bad_algorithm: "the bearer token's algorithm is not accepted (HS256, or the identity provider's)",
  unknown_key:
    "the bearer token's key (kid) is not one of the service's keys: it may have been retired",
  keys_unavailable: "the identity provider's keys could not be fetched: retry shortly",
  bad_signature: "the bearer token's signature is invalid",
  expired: "the bearer token has expired",
  not_yet_valid: "the bearer token is not valid yet",
  bad_claims: "the bearer token lacks sub, scope or exp",
  bad_player_id: `the bearer token names no player id (one ${ID_RULE})`,
} as const;

/**
 * The claims of a request's valid token of the given scope, or the
 * refusal (AppError). A bad token costs one HMAC and nothing else.
 */
export async function authenticate(
  env: Env,
  request: Request,
  scope: TokenScope | readonly TokenScope[],
): Promise<TokenClaims> {
  const keys = keyringOf(env);
  if (!keys.ok) {
    throw new AppError("unavailable", `authentication is not configured: ${keys.problem}`);
  }
  const token = bearerToken(request);
  if (!token) {
    // A token sent without its scheme (or under another) is told how to send it.
    const unreadable = request.headers.has("Authorization");
    logAuthFailure(request, unreadable ? "not_bearer" : "missing");
    // app.onError adds the plain challenge to every 401.
    throw new AppError(
      "unauthenticated",
      unreadable ? "the Authorization header must be Bearer <token>" : "a bearer token is required",
    );
  }
  const result = await verifyCached(token, keys.keyring, Date.now());
  if (!result.ok) {
    logAuthFailure(request, result.reason);
    if (result.reason === "keys_unavailable")
      throw new AppError("unavailable", refusalMessages[result.reason], 5);
    const message = refusalMessages[result.reason];
    throw new AppError(
      "unauthenticated",
      message,
      undefined,
      bearerChallenge("invalid_token", message),
    );
  }
  const allowed: readonly TokenScope[] = typeof scope === "string" ? [scope] : scope;
  if (!allowed.includes(result.claims.scope)) {
    logAuthFailure(request, "wrong_scope");
    const message =
      result.claims.scope === "operator"
        ? "an operator token may watch and read, not change anything"
        : `this route needs ${allowed.map((s) => SCOPE_NAMES[s]).join(" or ")}`;
    throw new AppError(
      "permission_denied",
      message,
      undefined,
      bearerChallenge("insufficient_scope", message),
    );
  }
  return result.claims;
}

const SCOPE_NAMES: Record<TokenScope, string> = {
  service: "a crafting-service token",
  player: "a player token",
  sync: "a sync token from POST /udp/sessions/{id}/connect",
  operator: "an operator token",
};

/** Tokens this isolate verified, until their expiry: crafting-service sends the same one with every update. */
const verified = new Map<string, Remembered>();

/** A verified token's claims, and what verified them: the HS256 secret, or the identity provider. */
interface Remembered {
  key: string;
  secret: string | null;
  idp: IdentityProvider | null;
  claims: TokenClaims;
}
/** Most tokens remembered per isolate (the oldest is forgotten first). */
export const VERIFIED_TOKEN_CACHE_SIZE = 1000;

/**
 * Verifies a token, or answers from the tokens already verified while they
 * are unexpired and the key that verified them is still configured: a
 * signature check costs ~80 µs, and a busy caller presents the same token
 * thousands of times a second. Refused tokens are never remembered.
 */
async function verifyCached(token: string, keyring: Keyring, nowMs: number) {
  const known = verified.get(token);
  if (known && known.claims.exp * 1000 > nowMs && stillConfigured(known, keyring)) {
    return { ok: true as const, claims: known.claims };
  }
  const verifiedNow = await verifyJwt(token, keyring, nowMs);
  // A player is named by an id like any other (the path's, the session's
  // player_id): a token for one that cannot exist is refused here, said as
  // such, rather than later as "another player's session".
  const result: Verified =
    verifiedNow.ok &&
    verifiedNow.claims.scope === "player" &&
    !ID_PATTERN.test(verifiedNow.claims.sub)
      ? { ok: false, reason: "bad_player_id" }
      : verifiedNow;
  if (known) verified.delete(token);
  if (result.ok) {
    if (verified.size >= VERIFIED_TOKEN_CACHE_SIZE) {
      const oldest = verified.keys().next().value;
      if (oldest !== undefined) verified.delete(oldest);
    }
    const key = result.key ?? "";
    const secret = keyring.secrets.get(key) ?? null;
    verified.set(token, { key, secret, idp: keyring.idp, claims: result.claims });
  }
  return result;
}

/**
 * The key that verified a remembered token is still one of the keyring's;
 * for a provider's token, the provider as it was configured then (its
 * issuer, audience and player claim decided what the claims say).
 */
function stillConfigured(known: Remembered, keyring: Keyring): boolean {
  if (known.key.startsWith("idp:")) return keyring.idp !== null && keyring.idp === known.idp;
  return known.secret !== null && keyring.secrets.get(known.key) === known.secret;
}

/** Requires a valid token of one of the given scopes, before any Durable Object is touched. */
export function requireAuth(...scopes: TokenScope[]) {
  return createMiddleware<{ Bindings: Env; Variables: AuthVariables }>(async (c, next) => {
    c.set("auth", await authenticate(c.env, c.req.raw, scopes));
    await next();
  });
}

/**
 * crafting-service's routes: a service token for everything, an operator
 * token for reads (`GET`) only — an operator watches and reads, and
 * changes nothing (403).
 */
export const requireServiceOrOperatorReads = createMiddleware<{
  Bindings: Env;
  Variables: AuthVariables;
}>(async (c, next) => {
  const reading = c.req.method === "GET" || c.req.method === "HEAD";
  c.set(
    "auth",
    await authenticate(c.env, c.req.raw, reading ? ["service", "operator"] : "service"),
  );
  await next();
});

function logAuthFailure(request: Request, reason: string): void {
  metrics.count("crafting_auth_failures_total", { reason });
  const url = new URL(request.url);
  log("warn", "auth.failure", {
    reason,
    path: url.pathname,
    origin: request.headers.get("Origin"),
  });
}
