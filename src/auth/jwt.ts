/**
 * HS256 JSON Web Tokens with Web Crypto only, so the same file runs in
 * workerd, Node (the `npm run token` script) and browsers.
 * Deliberately imports nothing: Node loads it directly with type stripping.
 */

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

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function base64UrlEncode(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function base64UrlDecode(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  try {
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

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

function parseJsonObject(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** Signs claims as an HS256 JWT. */
export async function signJwt(claims: TokenClaims, secret: string): Promise<string> {
  const header = base64UrlEncode(encoder.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const payload = base64UrlEncode(encoder.encode(JSON.stringify(claims)));
  const signingInput = `${header}.${payload}`;
  const signature = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(secret),
    encoder.encode(signingInput),
  );
  return `${signingInput}.${base64UrlEncode(new Uint8Array(signature))}`;
}

/**
 * Verifies an HS256 JWT: the header must say HS256 (so `alg: none` and
 * algorithm confusion are refused), the signature must match, `exp` is
 * required and `nbf` honoured, and `sub`/`scope` must be well formed.
 */
export async function verifyJwt(
  token: string,
  secret: string,
  nowMs: number,
): Promise<VerifyResult> {
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, reason: "malformed" };
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const headerBytes = base64UrlDecode(headerPart);
  const payloadBytes = base64UrlDecode(payloadPart);
  const signature = base64UrlDecode(signaturePart);
  if (!headerBytes || !payloadBytes || !signature) return { ok: false, reason: "malformed" };
  const header = parseJsonObject(headerBytes);
  const payload = parseJsonObject(payloadBytes);
  if (!header || !payload) return { ok: false, reason: "malformed" };
  if (header.alg !== "HS256") return { ok: false, reason: "bad_algorithm" };

  const valid = await crypto.subtle.verify(
    "HMAC",
    await hmacKey(secret),
    signature,
    encoder.encode(`${headerPart}.${payloadPart}`),
  );
  if (!valid) return { ok: false, reason: "bad_signature" };

  const { sub, scope, exp, iat, nbf, sid, syn } = payload;
  if (typeof sub !== "string" || sub.length === 0 || sub.length > 128)
    return { ok: false, reason: "bad_claims" };
  if (scope !== "player" && scope !== "service" && scope !== "sync")
    return { ok: false, reason: "bad_claims" };
  if (scope === "sync" && (typeof sid !== "string" || typeof syn !== "object" || syn === null))
    return { ok: false, reason: "bad_claims" };
  if (typeof exp !== "number" || !Number.isFinite(exp)) return { ok: false, reason: "bad_claims" };
  if (nbf !== undefined && typeof nbf !== "number") return { ok: false, reason: "bad_claims" };
  const nowSeconds = nowMs / 1000;
  if (exp <= nowSeconds) return { ok: false, reason: "expired" };
  if (typeof nbf === "number" && nbf > nowSeconds) return { ok: false, reason: "not_yet_valid" };
  const claims: TokenClaims = { sub, scope, exp };
  if (typeof iat === "number") claims.iat = iat;
  if (typeof nbf === "number") claims.nbf = nbf;
  if (scope === "sync") {
    claims.sid = sid as string;
    claims.syn = syn as Record<string, unknown>;
  }
  return { ok: true, claims };
}
