import { describe, expect, it } from "vitest";
import { msUntilExpiry, signJwt, TOKEN_RULES, verifyJwt } from "../../src/auth/jwt";
import { TEST_JWT_SECRET } from "../support/secret";
import { unsignedToken } from "../support/tokens";

const NOW = 1_800_000_000_000;
const exp = NOW / 1000 + 60;

describe("HS256 tokens", () => {
  it("round-trips a player token's claims", async () => {
    const token = await signJwt({ sub: "p1", scope: "player", exp }, TEST_JWT_SECRET);
    expect(await verifyJwt(token, TEST_JWT_SECRET, NOW)).toEqual({
      ok: true,
      claims: { sub: "p1", scope: "player", exp },
      key: "",
    });
  });

  it("refuses a token signed with another key", async () => {
    const token = await signJwt(
      { sub: "p1", scope: "player", exp },
      "some-other-secret-0123456789abcdef",
    );
    expect(await verifyJwt(token, TEST_JWT_SECRET, NOW)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("refuses alg none even with an empty signature", async () => {
    expect(await verifyJwt(unsignedToken("p1"), TEST_JWT_SECRET, NOW)).toEqual({
      ok: false,
      reason: "bad_algorithm",
    });
  });

  it("refuses a token whose payload was altered after signing", async () => {
    const token = await signJwt({ sub: "p1", scope: "player", exp }, TEST_JWT_SECRET);
    const [header, , signature] = token.split(".");
    const forged = btoa(JSON.stringify({ sub: "p2", scope: "service", exp })).replace(/=+$/, "");
    expect(await verifyJwt(`${header}.${forged}.${signature}`, TEST_JWT_SECRET, NOW)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("refuses expired and not-yet-valid tokens, beyond the clock-skew leeway", async () => {
    const skew = TOKEN_RULES.clockSkewSeconds;
    const at = (expSeconds: number) =>
      signJwt({ sub: "p1", scope: "player", exp: expSeconds }, TEST_JWT_SECRET);
    // Expired a little less than the leeway ago: the issuer's clock may be behind.
    expect((await verifyJwt(await at(NOW / 1000 - skew + 1), TEST_JWT_SECRET, NOW)).ok).toBe(true);
    expect(await verifyJwt(await at(NOW / 1000 - skew - 1), TEST_JWT_SECRET, NOW)).toEqual({
      ok: false,
      reason: "expired",
    });
    const nearly = await signJwt(
      { sub: "p1", scope: "player", exp, nbf: NOW / 1000 + skew - 1 },
      TEST_JWT_SECRET,
    );
    expect((await verifyJwt(nearly, TEST_JWT_SECRET, NOW)).ok).toBe(true);
    const early = await signJwt(
      { sub: "p1", scope: "player", exp, nbf: NOW / 1000 + skew + 1 },
      TEST_JWT_SECRET,
    );
    expect(await verifyJwt(early, TEST_JWT_SECRET, NOW)).toEqual({
      ok: false,
      reason: "not_yet_valid",
    });
  });

  it("requires sub, a known scope and exp", async () => {
    const noExp = await signJwt({ sub: "p1", scope: "player" } as never, TEST_JWT_SECRET);
    const badScope = await signJwt({ sub: "p1", scope: "admin", exp } as never, TEST_JWT_SECRET);
    const noSub = await signJwt({ sub: "", scope: "player", exp }, TEST_JWT_SECRET);
    for (const token of [noExp, badScope, noSub]) {
      expect(await verifyJwt(token, TEST_JWT_SECRET, NOW)).toEqual({
        ok: false,
        reason: "bad_claims",
      });
    }
  });

  it.each(["", "a.b", "a.b.c.d", "!!!.###.$$$", "e30.e30", "bm90IGpzb24.e30.c2ln"])(
    "calls %j malformed without throwing",
    async (token) => {
      expect(await verifyJwt(token, TEST_JWT_SECRET, NOW)).toEqual({
        ok: false,
        reason: "malformed",
      });
    },
  );

  it("refuses a header with a crit member it does not understand (RFC 7515 §4.1.11)", async () => {
    // jose will not even sign such a header, so it is signed by hand.
    const b64 = (text: string) =>
      btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const header = { alg: "HS256", crit: ["exp-2030"], "exp-2030": true };
    const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify({ sub: "p1", scope: "player", exp }))}`;
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(TEST_JWT_SECRET),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = new Uint8Array(
      await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(input)),
    );
    const token = `${input}.${b64(String.fromCharCode(...mac))}`;
    // The same token without crit verifies: the refusal is for crit alone.
    const plain = `${b64(JSON.stringify({ alg: "HS256" }))}.${input.split(".")[1]}`;
    const plainMac = new Uint8Array(
      await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(plain)),
    );
    expect(
      (await verifyJwt(`${plain}.${b64(String.fromCharCode(...plainMac))}`, TEST_JWT_SECRET, NOW))
        .ok,
    ).toBe(true);
    expect(await verifyJwt(token, TEST_JWT_SECRET, NOW)).toEqual({
      ok: false,
      reason: "malformed",
    });
  });

  it("refuses a token over the size cap before reading it", async () => {
    const padding = "x".repeat(TOKEN_RULES.maxBytes);
    const big = await signJwt(
      { sub: "p1", scope: "player", exp, pad: padding } as never,
      TEST_JWT_SECRET,
    );
    expect(await verifyJwt(big, TEST_JWT_SECRET, NOW)).toEqual({ ok: false, reason: "malformed" });
  });
});

describe("how long a stream may last on its token", () => {
  const now = 1_800_000_000_000;
  it("is the time to exp, nothing once it passed, and never more than a timer takes", () => {
    expect(msUntilExpiry({ exp: now / 1000 + 90 }, now)).toBe(90_000);
    expect(msUntilExpiry({ exp: now / 1000 - 1 }, now)).toBe(0);
    // A token valid for a year would overflow setTimeout (which then fires at once).
    expect(msUntilExpiry({ exp: now / 1000 + 365 * 86_400 }, now)).toBe(2 ** 31 - 1);
  });
});
