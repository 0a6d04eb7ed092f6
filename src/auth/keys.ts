/**
 * The keys tokens are verified with, from the environment:
 *
 * - `JWT_SECRET`: the current HS256 key, which the service signs with (sync
 *   tokens, `npm run token`). `JWT_KEY_ID` names it: tokens it signs carry
 *   that `kid` (none when empty, as before rotation was configured).
 * - `JWT_SECRETS`: optional, a JSON object of other keys still accepted,
 *   by `kid` (`""` for tokens without one): the previous key during a
 *   rotation, or the next one before issuers move to it.
 * - `JWKS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`: optional, an identity
 *   provider whose asymmetric tokens (ES256, RS256, EdDSA) are accepted,
 *   verified against the public keys it publishes; `JWT_PLAYER_CLAIM`,
 *   optional, the claim of its player tokens that holds the game's player
 *   id when its `sub` is its own user id (`auth0|…`).
 *
 * The procedure is in docs/auth.md (key rotation, identity provider).
 */
import { createRemoteJWKSet, type JWTVerifyGetKey } from "jose";

/** Shortest HS256 secret accepted (bytes): RFC 7518 §3.2 asks for at least the hash size. */
export const MIN_SECRET_LENGTH = 32;

/** How the identity provider's keys are cached: unknown `kid`s refetch at most once a minute. */
export const JWKS_RULES = { cooldownMs: 60_000, cacheMaxAgeMs: 10 * 60_000, timeoutMs: 5_000 };

const KEY_ID = /^[A-Za-z0-9._-]{0,64}$/;

/** An identity provider's keys and the claims its tokens must carry. */
export interface IdentityProvider {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  /** The claim of a player token that holds the player's id (absent: `sub`). */
  playerClaim?: string;
}

/** Every key a token may be verified with, and the one the service signs with. */
export interface Keyring {
  /** HS256 secrets by `kid` (`""`: tokens without a `kid`). */
  secrets: ReadonlyMap<string, string>;
  signing: { kid: string; secret: string };
  idp: IdentityProvider | null;
}

/** The configuration the keyring is read from. */
export type KeyEnv = Pick<Env, "JWT_SECRET"> & {
  JWT_KEY_ID?: string;
  JWT_SECRETS?: string;
  JWKS_URL?: string;
  JWT_ISSUER?: string;
  JWT_AUDIENCE?: string;
  JWT_PLAYER_CLAIM?: string;
};

export type KeyringResult = { ok: true; keyring: Keyring } | { ok: false; problem: string };

/** The settings the keyring is read from, in one place. */
const KEY_SETTINGS = [
  "JWT_SECRET",
  "JWT_KEY_ID",
  "JWT_SECRETS",
  "JWKS_URL",
  "JWT_ISSUER",
  "JWT_AUDIENCE",
  "JWT_PLAYER_CLAIM",
] as const satisfies readonly (keyof KeyEnv)[];

let last: { env: KeyEnv; result: KeyringResult } | null = null;
const remoteKeySets = new Map<string, JWTVerifyGetKey>();

/**
 * The keyring of `env`, or what is wrong with its configuration: read once
 * per configuration (every authenticated request asks, so it compares the
 * few settings instead of rebuilding anything).
 */
export function keyringOf(env: KeyEnv): KeyringResult {
  if (!last || KEY_SETTINGS.some((name) => last?.env[name] !== env[name]))
    last = { env: pick(env), result: readKeyring(env) };
  return last.result;
}

function pick(env: KeyEnv): KeyEnv {
  const settings: Partial<KeyEnv> = {};
  for (const name of KEY_SETTINGS) settings[name] = env[name];
  return settings as KeyEnv;
}

function readKeyring(env: KeyEnv): KeyringResult {
  const secret = env.JWT_SECRET;
  if (!secret) return { ok: false, problem: "JWT_SECRET is not set" };
  if (secret.length < MIN_SECRET_LENGTH)
    return { ok: false, problem: `JWT_SECRET is shorter than ${MIN_SECRET_LENGTH} bytes` };
  const kid = env.JWT_KEY_ID ?? "";
  if (!KEY_ID.test(kid))
    return { ok: false, problem: "JWT_KEY_ID must be up to 64 letters, digits, '.', '_' or '-'" };
  const secrets = new Map<string, string>();
  if (env.JWT_SECRETS) {
    let others: unknown;
    try {
      others = JSON.parse(env.JWT_SECRETS);
    } catch {
      return { ok: false, problem: 'JWT_SECRETS must be a JSON object: {"<kid>": "<secret>"}' };
    }
    if (typeof others !== "object" || others === null || Array.isArray(others))
      return { ok: false, problem: 'JWT_SECRETS must be a JSON object: {"<kid>": "<secret>"}' };
    for (const [id, value] of Object.entries(others)) {
      if (!KEY_ID.test(id))
        return { ok: false, problem: `JWT_SECRETS: "${id}" is not a valid kid` };
      if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH)
        return {
          ok: false,
          problem: `JWT_SECRETS["${id}"] must be a string of at least ${MIN_SECRET_LENGTH} bytes`,
        };
      if (id === kid && value !== secret)
        return { ok: false, problem: `JWT_SECRETS["${id}"] differs from JWT_SECRET, also "${id}"` };
      secrets.set(id, value);
    }
  }
  secrets.set(kid, secret);
  const idp = readIdentityProvider(env);
  if (typeof idp === "string") return { ok: false, problem: idp };
  return { ok: true, keyring: { secrets, signing: { kid, secret }, idp } };
}

function readIdentityProvider(env: KeyEnv): IdentityProvider | null | string {
  const { JWKS_URL: url, JWT_ISSUER: issuer, JWT_AUDIENCE: audience } = env;
  const playerClaim = env.JWT_PLAYER_CLAIM || "sub";
  if (!url) {
    // Only a provider's tokens are read by it: said, not ignored.
    return playerClaim === "sub" ? null : "JWT_PLAYER_CLAIM needs JWKS_URL (an identity provider)";
  }
  if (!issuer || !audience) return "JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE too";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "JWKS_URL is not a URL";
  }
  let keys = remoteKeySets.get(parsed.href);
  if (!keys) {
    keys = createRemoteJWKSet(parsed, {
      cooldownDuration: JWKS_RULES.cooldownMs,
      cacheMaxAge: JWKS_RULES.cacheMaxAgeMs,
      timeoutDuration: JWKS_RULES.timeoutMs,
    });
    remoteKeySets.set(parsed.href, keys);
  }
  return { keys, issuer, audience, playerClaim };
}

/** The secret and `kid` the service signs with (`signJwt(claims, ...signingKey(env))`). */
export function signingKey(env: KeyEnv): [secret: string, kid: string] {
  const keys = keyringOf(env);
  if (!keys.ok) throw new Error(`authentication is not configured: ${keys.problem}`);
  return [keys.keyring.signing.secret, keys.keyring.signing.kid];
}
