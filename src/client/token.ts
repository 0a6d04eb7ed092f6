/**
 * A stream's bearer token on the client side: where it comes from, when it
 * expires, and what cannot be one.
 */

/** Returns a fresh bearer token; called before every connect. */
export type TokenProvider = () => string | Promise<string>;

/**
 * When a JWT expires (ms since the epoch), read from its payload without
 * verifying it (the server does); null when it is not a JWT with an `exp`.
 */
export function tokenExpiryMs(token: string): number | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const base64 = payload.replaceAll("-", "+").replaceAll("_", "/");
    const claims = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="))) as {
      exp?: unknown;
    };
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/** What a subprotocol (and so `bearer.<token>`) may be made of (RFC 9110 §5.6.2 `token`): a JWT is. */
const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Why what a token provider returned cannot be sent as a token, or null:
 * said as a final refusal (`4001`) rather than retried, as every attempt
 * would fail alike (`"Bearer eyJ…"` is one).
 */
export function notAToken(token: unknown): string | null {
  if (typeof token === "string" && TOKEN_CHARS.test(token)) return null;
  const said = typeof token === "string" ? `"${token.slice(0, 12)}…"` : String(token);
  return `the token provider returned ${said}, not a token: return the JWT alone, without "Bearer "`;
}
