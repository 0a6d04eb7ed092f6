/** Token minting for tests: valid ones, and every kind of bad one. */
import { signJwt, type TokenScope } from "../../src/auth/jwt";
import { TEST_JWT_SECRET } from "./secret";

function b64url(text: string): string {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A valid token for `sub` with `scope`, expiring in `ttlSeconds`. */
export function token(
  sub: string,
  scope: TokenScope = "player",
  { ttlSeconds = 3600, secret = TEST_JWT_SECRET } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ sub, scope, iat: now, exp: now + ttlSeconds }, secret);
}

/** A crafting-service token. */
export const serviceToken = (): Promise<string> => token("crafting-service", "service");

/** An unsigned token with `alg: none`, the classic forgery. */
export function unsignedToken(sub: string): string {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  return `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64url(JSON.stringify({ sub, scope: "player", exp }))}.`;
}

/** A well-formed token signed with the wrong key. */
export const wrongKeyToken = (sub: string): Promise<string> =>
  token(sub, "player", { secret: "another-secret-that-is-long-enough-0123456789" });

/** A correctly signed token that expired a minute ago. */
export const expiredToken = (sub: string): Promise<string> =>
  token(sub, "player", { ttlSeconds: -60 });

/** A fresh id, so tests never share a session or player. */
export function freshId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}
