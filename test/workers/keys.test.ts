/**
 * Keys in workerd: a rotation shown live (a stream opened with the old key
 * keeps running while new tokens verify and the retired key is refused), and
 * an identity provider's ES256 player tokens verified against a JWKS served
 * on 127.0.0.1 (test/workers/identity-provider.setup.ts).
 */
import { env } from "cloudflare:workers";
import { importJWK, SignJWT } from "jose";
import { describe, expect, inject, it } from "vitest";
import { signJwt } from "../../src/auth/jwt";
import { freshId } from "../support/tokens";
import { callWith, createSession, serviceCall, TestSocket } from "./helpers";

const OLD = "rotation-old-secret-0123456789abcdef01";
const NEW = "rotation-new-secret-0123456789abcdef01";

/** The Worker as deployed with `vars` on top of the test configuration. */
const deployedWith = (vars: Record<string, string>) => callWith({ ...env, ...vars } as Env);

async function open(fetch: ReturnType<typeof deployedWith>, sessionId: string, bearer: string) {
  const response = await fetch(`/ws/crafting/${sessionId}`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}` },
  });
  return {
    status: response.status,
    socket: response.webSocket ? new TestSocket(response.webSocket) : null,
  };
}

const playerToken = (sub: string, secret: string, kid: string) => {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ sub, scope: "player", iat: now, exp: now + 600 }, secret, kid);
};

describe("key rotation, live", () => {
  it("keeps a stream opened with the old key while new tokens verify, then refuses the retired key", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);

    const beforeRotation = deployedWith({ JWT_SECRET: OLD, JWT_KEY_ID: "k1" });
    const during = deployedWith({
      JWT_SECRET: NEW,
      JWT_KEY_ID: "k2",
      JWT_SECRETS: JSON.stringify({ k1: OLD }),
    });
    const retired = deployedWith({ JWT_SECRET: NEW, JWT_KEY_ID: "k2" });
    const oldToken = await playerToken(playerId, OLD, "k1");

    const early = await open(beforeRotation, sessionId, oldToken);
    expect(early.status).toBe(101);
    await early.socket?.frameCount(1);

    // Both keys verify while the new one is introduced.
    const newToken = await playerToken(playerId, NEW, "k2");
    const moved = await open(during, sessionId, newToken);
    expect(moved.status).toBe(101);
    expect((await open(during, sessionId, oldToken)).status).toBe(101);

    // Retired: the old key opens nothing new...
    const refused = await retired(`/ws/crafting/${sessionId}`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${oldToken}` },
    });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({
      error: { message: expect.stringMatching(/kid.*retired/) },
    });
    // ...and the stream it opened keeps receiving, as does the new one.
    const service = await signJwt(
      { sub: "crafting-service", scope: "service", exp: Math.floor(Date.now() / 1000) + 600 },
      NEW,
      "k2",
    );
    const posted = await retired(`/udp/sessions/${sessionId}/progress`, {
      method: "POST",
      headers: { Authorization: `Bearer ${service}`, "Content-Type": "application/json" },
      body: JSON.stringify({ elapsed_ms: 1234 }),
    });
    expect(posted.status).toBe(200);
    const [, update] = (await early.socket?.frameCount(2)) ?? [];
    expect(update).toMatchObject({ update: { cause: "progress" } });
    expect((await moved.socket?.frameCount(2))?.[1]).toMatchObject({
      update: { cause: "progress" },
    });
  });

  it("signs sync tokens with the current key, named by its kid", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    const during = deployedWith({
      JWT_SECRET: NEW,
      JWT_KEY_ID: "k2",
      JWT_SECRETS: JSON.stringify({ k1: OLD }),
    });
    const response = await during(`/udp/sessions/${sessionId}/connect`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await playerToken(playerId, OLD, "k1")}`,
        "Content-Type": "application/json",
      },
      body: "{}",
    });
    expect(response.status).toBe(200);
    const { token } = (await response.json()) as { token: string };
    expect(JSON.parse(atob(token.split(".")[0] as string))).toMatchObject({
      alg: "HS256",
      kid: "k2",
    });
  });
});

describe("an identity provider's player tokens", () => {
  const idp = inject("identityProvider");
  const configured = deployedWith({
    JWKS_URL: idp.jwksUrl,
    JWT_ISSUER: "https://idp.test",
    JWT_AUDIENCE: "crafting-network-service",
  });
  const idpToken = async (sub: string, claims: Record<string, unknown> = {}, kid = idp.kid) =>
    new SignJWT({
      iss: "https://idp.test",
      aud: "crafting-network-service",
      scope: "player",
      ...claims,
    })
      .setProtectedHeader({ alg: "ES256", kid })
      .setSubject(sub)
      .setExpirationTime("10m")
      .sign(await importJWK(idp.privateJwk, "ES256"));
  const fetches = async () => Number(await (await fetch(idp.fetchesUrl)).text());

  it("opens the player's stream with an ES256 token verified against the published JWKS", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    const accepted = await open(configured, sessionId, await idpToken(playerId));
    expect(accepted.status).toBe(101);
    expect((await accepted.socket?.frameCount(1))?.[0]).toHaveProperty("snapshot");
    // Another player's token from the same provider is still someone else.
    expect((await open(configured, sessionId, await idpToken(freshId("p")))).status).toBe(403);
    // Another audience is refused.
    const foreign = await idpToken(playerId, { aud: "another-service" });
    expect((await open(configured, sessionId, foreign)).status).toBe(401);
  });

  it("refetches the JWKS for an unknown kid at most once a minute", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    expect((await open(configured, sessionId, await idpToken(playerId))).status).toBe(101);
    const fetched = await fetches();
    expect(fetched).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 3; i++) {
      const unknown = await idpToken(playerId, {}, "idp-unknown");
      expect((await open(configured, sessionId, unknown)).status).toBe(401);
    }
    expect(await fetches()).toBe(fetched);
  });

  it("reads the player from the claim JWT_PLAYER_CLAIM names when the provider's sub is its own user id", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    const claim = "https://example-game.test/player_id";
    // An Auth0-style subject, the game's player id in a namespaced claim.
    const token = await idpToken("auth0|64a1f0", { [claim]: playerId });
    const named = deployedWith({
      JWKS_URL: idp.jwksUrl,
      JWT_ISSUER: "https://idp.test",
      JWT_AUDIENCE: "crafting-network-service",
      JWT_PLAYER_CLAIM: claim,
    });
    expect((await open(named, sessionId, token)).status).toBe(101);
    // Without the setting, that subject is no player id, and is said to be.
    const refused = await configured(`/ws/crafting/${sessionId}`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` },
    });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(
      /^the bearer token names no player id/,
    );
    // A token without the claim names no player.
    expect((await open(named, sessionId, await idpToken(playerId))).status).toBe(401);
  });

  it("accepts no asymmetric token when no identity provider is configured", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    const refused = await open(deployedWith({}), sessionId, await idpToken(playerId));
    expect(refused.status).toBe(401);
  });
});
