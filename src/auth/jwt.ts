/**
 * HS256 JSON Web Tokens, signed and verified with `jose` (a maintained
 * implementation of RFC 7515/7519 on Web Crypto), so the same file runs in
 * workerd, Node (the `npm run token` script) and browsers. This module adds
 * only the service's own rules: the algorithm allow-list, a size cap, the
 * claims it requires, and refusal reasons safe to log.
 */
import { errors, jwtVerify, SignJWT } from "jose";

/**
 * Who a token speaks for: a player watching their own crafting,
 * crafting-service, or a player's sync channel to one session (issued by
 * `POST /udp/sessions/{id}/connect`, short-lived, carrying what was negotiated).
 */
export type TokenScope = "player" | "service" | "sync";

/** The claims this service reads; others are ignored. */
export interface TokenClaims {
  sub: string;
  scope: TokenScope;
  exp: number;
  iat?: number;
  nbf?: number;
  /** Sync tokens: the one session they open. */
  sid?: string;
  /** Sync tokens: the negotiated channel options (opaque to this module). */
  syn?: Record<string, unknown>;
}

/** Why a token was refused. The reason is safe to log: it never quotes the token. */
export type VerifyResult =
  | { ok: true; claims: TokenClaims }
  | {
      ok: false;
      reason:
        | "malformed"
        | "bad_algorithm"
        | "bad_signature"
        | "expired"
        | "not_yet_valid"
        | "bad_claims";
    };

/** The token rules, in one place (RFC 8725: an algorithm allow-list, a size cap, `exp` required). */
export const TOKEN_RULES = {
  algorithms: ["HS256"],
  /** Longer tokens are refused before any parsing. */
  maxBytes: 8 * 1024,
} as const;

const encoder = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

/** The HMAC key of a secret, imported once. */
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    keyCache.set(secret, key);
  }
  return key;
}

/** Signs claims as an HS256 JWT. */
export async function signJwt(claims: TokenClaims, secret: string): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(await hmacKey(secret));
}

/**
 * Verifies an HS256 JWT: only HS256 (so `alg: none` and algorithm confusion
 * are refused), a matching signature, no `crit` header it does not
 * understand, `exp` required and `nbf` honoured, and `sub`/`scope` well formed.
 */
export async function verifyJwt(
  token: string,
  secret: string,
  nowMs: number,
): Promise<VerifyResult> {
  if (token.length > TOKEN_RULES.maxBytes) return { ok: false, reason: "malformed" };
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, await hmacKey(secret), {
      algorithms: [...TOKEN_RULES.algorithms],
      requiredClaims: ["exp", "sub"],
      currentDate: new Date(nowMs),
    }));
  } catch (e: unknown) {
    return { ok: false, reason: refusal(e) };
  }
  const { sub, scope, exp, iat, nbf, sid, syn } = payload;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 128)
    return { ok: false, reason: "bad_claims" };
  if (scope !== "player" && scope !== "service" && scope !== "sync")
    return { ok: false, reason: "bad_claims" };
  if (scope === "sync" && (typeof sid !== "string" || typeof syn !== "object" || syn === null))
    return { ok: false, reason: "bad_claims" };
  if (typeof exp !== "number") return { ok: false, reason: "bad_claims" };
  const claims: TokenClaims = { sub, scope, exp };
  if (typeof iat === "number") claims.iat = iat;
  if (typeof nbf === "number") claims.nbf = nbf;
  if (scope === "sync") {
    claims.sid = sid as string;
    claims.syn = syn as Record<string, unknown>;
  }
  return { ok: true, claims };
}

/** The refusal reason of a jose error. */
function refusal(e: unknown): Exclude<VerifyResult, { ok: true }>["reason"] {
  if (e instanceof errors.JWTExpired) return "expired";
  if (e instanceof errors.JWTClaimValidationFailed)
    return e.claim === "nbf" && e.reason === "check_failed" ? "not_yet_valid" : "bad_claims";
  if (e instanceof errors.JOSEAlgNotAllowed) return "bad_algorithm";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "bad_signature";
  return "malformed";
}
