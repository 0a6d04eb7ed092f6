/** Keys by kid (rotation) and an identity provider's asymmetric tokens, verified without the runtime. */
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { signJwt, verifyJwt } from "../../src/auth/jwt";
import { type KeyEnv, keyringOf } from "../../src/auth/keys";
import { AppError } from "../../src/errors";
import { authenticate } from "../../src/middleware/auth";

const OLD = "old-secret-0123456789abcdef0123456789";
const NEW = "new-secret-0123456789abcdef0123456789";
const NOW = Date.now();
const exp = Math.floor(NOW / 1000) + 600;

const request = (token: string) =>
  new Request("https://crafting.test/v1/sessions", {
    headers: { Authorization: `Bearer ${token}` },
  });

async function outcome(env: KeyEnv, token: string): Promise<string> {
  try {
    return `ok ${(await authenticate(env as Env, request(token), "player")).sub}`;
  } catch (e: unknown) {
    if (e instanceof AppError) return `${e.code}: ${e.message}`;
    throw e;
  }
}

describe("the keyring", () => {
  it("names what is wrong with the configuration", () => {
    const problem = (env: KeyEnv) => {
      const result = keyringOf(env);
      return result.ok ? "ok" : result.problem;
    };
    expect(problem({ JWT_SECRET: "short" })).toMatch(/shorter than 32 bytes/);
    expect(problem({ JWT_SECRET: NEW, JWT_SECRETS: "old=x" })).toMatch(/JSON object/);
    expect(problem({ JWT_SECRET: NEW, JWT_SECRETS: '["x"]' })).toMatch(/JSON object/);
    expect(problem({ JWT_SECRET: NEW, JWT_SECRETS: '{"old":"short"}' })).toMatch(/at least 32/);
    expect(problem({ JWT_SECRET: NEW, JWT_SECRETS: `{"a b":"${OLD}"}` })).toMatch(
      /not a valid kid/,
    );
    expect(problem({ JWT_SECRET: NEW, JWT_KEY_ID: "k2", JWT_SECRETS: `{"k2":"${OLD}"}` })).toMatch(
      /differs from JWT_SECRET/,
    );
    expect(problem({ JWT_SECRET: NEW, JWKS_URL: "https://idp.example/jwks" })).toMatch(
      /JWT_ISSUER and JWT_AUDIENCE/,
    );
    expect(problem({ JWT_SECRET: NEW, JWT_PLAYER_CLAIM: "player_id" })).toBe(
      "JWT_PLAYER_CLAIM needs JWKS_URL (an identity provider)",
    );
    expect(problem({ JWT_SECRET: NEW, JWT_KEY_ID: "k2", JWT_SECRETS: `{"k1":"${OLD}"}` })).toBe(
      "ok",
    );
  });
});

describe("key rotation", () => {
  const before: KeyEnv = { JWT_SECRET: OLD, JWT_KEY_ID: "k1" };
  const during: KeyEnv = { JWT_SECRET: NEW, JWT_KEY_ID: "k2", JWT_SECRETS: `{"k1":"${OLD}"}` };
  const after: KeyEnv = { JWT_SECRET: NEW, JWT_KEY_ID: "k2" };

  it("accepts old and new keys while both are configured, and refuses the retired one", async () => {
    const old = await signJwt({ sub: "p-old", scope: "player", exp }, OLD, "k1");
    const fresh = await signJwt({ sub: "p-new", scope: "player", exp }, NEW, "k2");
    expect(await outcome(before, old)).toBe("ok p-old");
    expect(await outcome(during, old)).toBe("ok p-old");
    expect(await outcome(during, fresh)).toBe("ok p-new");
    // Remembered from the calls above, and still refused once its key is retired.
    expect(await outcome(after, old)).toMatch(/^unauthenticated: .*kid.*retired/);
    expect(await outcome(after, fresh)).toBe("ok p-new");
  });

  it("verifies a token only with the key its kid names", async () => {
    // Signed with the new secret but claiming the old kid: the old key does not verify it.
    const mislabelled = await signJwt({ sub: "p-1", scope: "player", exp }, NEW, "k1");
    expect(await outcome(during, mislabelled)).toBe(
      "unauthenticated: the bearer token's signature is invalid",
    );
    const unnamed = await signJwt({ sub: "p-1", scope: "player", exp }, NEW);
    expect(await outcome(during, unnamed)).toMatch(/kid/);
    // Tokens without a kid keep working through a move to named keys, under "".
    const moving = { JWT_SECRET: NEW, JWT_KEY_ID: "k2", JWT_SECRETS: `{"":"${OLD}"}` };
    const legacy = await signJwt({ sub: "p-legacy", scope: "player", exp }, OLD);
    expect(await outcome(moving, legacy)).toBe("ok p-legacy");
  });
});

describe("an identity provider's tokens", async () => {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "idp-1", alg: "ES256" };
  const idp = {
    keys: createLocalJWKSet({ keys: [jwk] }),
    issuer: "https://idp.example",
    audience: "crafting",
  };
  const keys = { secrets: new Map([["", OLD]]), idp };
  const idpToken = (claims: Record<string, unknown>, kid = "idp-1") =>
    new SignJWT({ iss: idp.issuer, aud: idp.audience, sub: "p-9", exp, ...claims })
      .setProtectedHeader({ alg: "ES256", kid })
      .sign(privateKey);

  it("accepts a player or service token signed with a published key, with its iss and aud", async () => {
    expect(await verifyJwt(await idpToken({ scope: "player" }), keys, NOW)).toMatchObject({
      ok: true,
      claims: { sub: "p-9", scope: "player", exp },
    });
    const service = await idpToken({ sub: "crafting-service", scope: "openid service" });
    expect(await verifyJwt(service, keys, NOW)).toMatchObject({
      ok: true,
      claims: { scope: "service" },
    });
  });

  it("refuses another issuer or audience, a sync scope, two scopes, and an unpublished key", async () => {
    for (const claims of [
      { scope: "player", iss: "https://evil.example" },
      { scope: "player", aud: "another-service" },
      { scope: "sync", sid: "s-1", syn: {} },
      { scope: "player service" },
      {},
    ]) {
      expect(await verifyJwt(await idpToken(claims), keys, NOW)).toEqual({
        ok: false,
        reason: "bad_claims",
      });
    }
    expect(await verifyJwt(await idpToken({ scope: "player" }, "idp-2"), keys, NOW)).toEqual({
      ok: false,
      reason: "unknown_key",
    });
  });

  it("takes a player token's player id from the claim JWT_PLAYER_CLAIM names, and only a player token's", async () => {
    const claim = "https://game.example/player_id";
    const named = { secrets: keys.secrets, idp: { ...idp, playerClaim: claim } };
    const player = await idpToken({ sub: "auth0|64a1", scope: "player", [claim]: "p-42" });
    expect(await verifyJwt(player, named, NOW)).toMatchObject({
      ok: true,
      claims: { sub: "p-42", scope: "player" },
    });
    for (const value of [undefined, "", 42])
      expect(
        await verifyJwt(await idpToken({ scope: "player", [claim]: value }), named, NOW),
      ).toEqual({ ok: false, reason: "bad_player_id" });
    const service = await idpToken({ sub: "crafting-service", scope: "service" });
    expect(await verifyJwt(service, named, NOW)).toMatchObject({
      ok: true,
      claims: { sub: "crafting-service", scope: "service" },
    });
  });

  it("refuses asymmetric tokens when no identity provider is configured", async () => {
    const token = await idpToken({ scope: "player" });
    expect(await verifyJwt(token, { secrets: keys.secrets, idp: null }, NOW)).toEqual({
      ok: false,
      reason: "bad_algorithm",
    });
  });

  it("refuses an HS256 token keyed with the provider's public key (algorithm confusion)", async () => {
    const forged = await signJwt(
      { sub: "p-9", scope: "player", exp },
      JSON.stringify(jwk).padEnd(32, " "),
      "idp-1",
    );
    expect(await verifyJwt(forged, keys, NOW)).toEqual({ ok: false, reason: "unknown_key" });
  });
});
