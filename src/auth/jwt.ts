/**
 * JSON Web Tokens, signed and verified with `jose` (a maintained
 * implementation of RFC 7515/7519 on Web Crypto), so the same file runs in
 * workerd, Node (the `npm run token` script) and browsers: HS256 with the
 * service's keys (by `kid`, for rotation), and an identity provider's
 * asymmetric tokens against its published keys (src/auth/keys.ts). This
 * module adds only the service's own rules: the algorithm allow-list, a size
 * cap, a clock-skew leeway, the claims it requires, and refusal reasons safe
 * to log.
 */
import { errors, type JWTHeaderParameters, jwtVerify, SignJWT } from "jose";
import type { Keyring } from "./keys";

/**
 * Who a token speaks for: a player watching their own crafting,
 * crafting-service, a player's sync channel to one session (issued by
 * `POST /udp/sessions/{id}/connect`, short-lived, carrying what was
 * negotiated), or an operator (support, on-call), who may watch and read
 * anything and change nothing.
 */
export type TokenScope = "player" | "service" | "sync" | "operator";

/** The scopes a token may carry; an identity provider's tokens never carry `sync`. */
const SCOPES: readonly TokenScope[] = ["player", "service", "sync", "operator"];
const IDP_SCOPES: readonly TokenScope[] = ["player", "service", "operator"];

/** The claims this service reads; others are ignored. */
export interface TokenClaims {
  /** A player token's player id (an identity provider's JWT_PLAYER_CLAIM, else `sub`); who, for the others. */
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
        | "unknown_key"
        | "keys_unavailable"
        | "bad_signature"
        | "expired"
        | "not_yet_valid"
        | "bad_claims"
        // A player token without the player's id (an identity provider's
        // JWT_PLAYER_CLAIM), or whose id no player can have (checked by the
        // middleware, against the domain's id rule): it could never watch anything.
        | "bad_player_id";
    };

/** The token rules, in one place (RFC 8725: an algorithm allow-list, a size cap, `exp` required). */
export const TOKEN_RULES = {
  /** The service's own keys. */
  algorithms: ["HS256"],
  /** An identity provider's keys (JWKS). */
  idpAlgorithms: ["ES256", "RS256", "EdDSA"],
  /** Longer tokens are refused before any parsing. */
  maxBytes: 8 * 1024,
  /** How far `exp` and `nbf` may be off between the issuer's clock and ours. */
  clockSkewSeconds: 30,
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

/**
 * How long a stream opened with `claims` may last from `nowMs` (ms, 0 once
 * past `exp`), capped at what `setTimeout` takes: a stream checked once, at
 * its start, ends when its token does.
 */
export function msUntilExpiry(claims: Pick<TokenClaims, "exp">, nowMs = Date.now()): number {
  return Math.min(Math.max(claims.exp * 1000 - nowMs, 0), 2 ** 31 - 1);
}

/** Signs claims as an HS256 JWT; with a `kid`, the header names the key. */
export async function signJwt(claims: TokenClaims, secret: string, kid = ""): Promise<string> {
  const header: JWTHeaderParameters = { alg: "HS256", typ: "JWT" };
  if (kid) header.kid = kid;
  return new SignJWT({ ...claims }).setProtectedHeader(header).sign(await hmacKey(secret));
}

/** The keys to verify with: a keyring, or one secret for tokens without a `kid`. */
export type VerifyKeys = Pick<Keyring, "secrets" | "idp"> | string;

/** A verified token, with the key that verified it (`kid`, or the identity provider's). */
export type Verified = VerifyResult & { key?: string };

/**
 * Verifies a JWT: HS256 with the secret its `kid` names, or (with an
 * identity provider configured) ES256/RS256/EdDSA with the provider's key
 * and its `iss`/`aud`; nothing else, so `alg: none` and algorithm confusion
 * are refused. No `crit` header it does not understand, `exp` required,
 * `nbf` honoured, both within the clock-skew leeway, and `sub`/`scope` well
 * formed. An identity provider's token may speak for a player or a service,
 * never a sync channel (only the service issues those).
 */
export async function verifyJwt(token: string, keys: VerifyKeys, nowMs: number): Promise<Verified> {
  if (token.length > TOKEN_RULES.maxBytes) return { ok: false, reason: "malformed" };
  const { secrets, idp } =
    typeof keys === "string" ? { secrets: new Map([["", keys]]), idp: null } : keys;
  const algorithms: string[] = [...TOKEN_RULES.algorithms];
  if (idp) algorithms.push(...TOKEN_RULES.idpAlgorithms);
  let payload: Record<string, unknown>;
  let key = "";
  let fromIdp = false;
  try {
    ({ payload } = await jwtVerify(
      token,
      async (header, input) => {
        if (header.alg === "HS256") {
          key = header.kid ?? "";
          const secret = secrets.get(key);
          if (secret === undefined) throw new UnknownKey();
          return hmacKey(secret);
        }
        if (!idp || !algorithms.includes(header.alg)) throw new errors.JOSEAlgNotAllowed("alg");
        fromIdp = true;
        key = `idp:${header.kid ?? ""}`;
        try {
          return await idp.keys(header, input);
        } catch (e: unknown) {
          if (e instanceof errors.JOSEError && !(e instanceof errors.JWKSTimeout)) throw e;
          throw new KeysUnavailable();
        }
      },
      {
        algorithms,
        requiredClaims: ["exp", "sub"],
        currentDate: new Date(nowMs),
        clockTolerance: TOKEN_RULES.clockSkewSeconds,
      },
    ));
  } catch (e: unknown) {
    return { ok: false, reason: refusal(e) };
  }
  if (fromIdp && idp && (payload.iss !== idp.issuer || !audienceHas(payload.aud, idp.audience)))
    return { ok: false, reason: "bad_claims" };
  const { sub, exp, iat, nbf, sid, syn } = payload;
  const scope = fromIdp ? idpScope(payload.scope) : ourScope(payload.scope);
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 128)
    return { ok: false, reason: "bad_claims" };
  if (scope === null) return { ok: false, reason: "bad_claims" };
  if (scope === "sync" && (typeof sid !== "string" || typeof syn !== "object" || syn === null))
    return { ok: false, reason: "bad_claims" };
  if (typeof exp !== "number") return { ok: false, reason: "bad_claims" };
  // A provider whose `sub` is its own user id names the game's player in a
  // claim of its own (JWT_PLAYER_CLAIM, e.g. Auth0's namespaced claims).
  const playerClaim = fromIdp && scope === "player" ? idp?.playerClaim : undefined;
  const player = playerClaim && playerClaim !== "sub" ? payload[playerClaim] : sub;
  if (typeof player !== "string" || player.length === 0 || player.length > 128)
    return { ok: false, reason: "bad_player_id" };
  const claims: TokenClaims = { sub: player, scope, exp };
  if (typeof iat === "number") claims.iat = iat;
  if (typeof nbf === "number") claims.nbf = nbf;
  if (scope === "sync") {
    claims.sid = sid as string;
    claims.syn = syn as Record<string, unknown>;
  }
  return { ok: true, claims, key };
}

/** A `kid` none of the configured keys carries (retired, or not introduced yet). */
class UnknownKey extends Error {}
/** The identity provider's keys could not be fetched. */
class KeysUnavailable extends Error {}

function audienceHas(aud: unknown, audience: string): boolean {
  return aud === audience || (Array.isArray(aud) && aud.includes(audience));
}

/** The scope of one of the service's own tokens, if it is one. */
function ourScope(scope: unknown): TokenScope | null {
  return SCOPES.find((s) => s === scope) ?? null;
}

/**
 * The scope of an identity provider's token: its `scope` claim (OAuth 2.0,
 * space-separated) holds exactly one of `player`, `service` and `operator`.
 */
function idpScope(scope: unknown): TokenScope | null {
  if (typeof scope !== "string") return null;
  const ours = scope.split(" ").filter((s) => IDP_SCOPES.includes(s as TokenScope));
  return ours.length === 1 ? (ours[0] as TokenScope) : null;
}

/** The refusal reason of a jose error. */
function refusal(e: unknown): Exclude<VerifyResult, { ok: true }>["reason"] {
  if (e instanceof errors.JWTExpired) return "expired";
  if (e instanceof errors.JWTClaimValidationFailed)
    return e.claim === "nbf" && e.reason === "check_failed" ? "not_yet_valid" : "bad_claims";
  if (e instanceof errors.JOSEAlgNotAllowed) return "bad_algorithm";
  if (e instanceof UnknownKey || e instanceof errors.JWKSNoMatchingKey) return "unknown_key";
  if (e instanceof KeysUnavailable) return "keys_unavailable";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "bad_signature";
  return "malformed";
}
