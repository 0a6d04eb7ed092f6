/** Authentication's cache of verified tokens: it never lets through what verification would refuse. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { signJwt, TOKEN_RULES } from "../../src/auth/jwt";
import { AppError } from "../../src/errors";
import { authenticate } from "../../src/middleware/auth";
import { TEST_JWT_SECRET } from "../support/secret";

const env = (secret: string) => ({ JWT_SECRET: secret }) as unknown as Env;
const request = (token: string) =>
  new Request("https://crafting.test/v1/sessions", {
    headers: { Authorization: `Bearer ${token}` },
  });

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e: unknown) {
    if (e instanceof AppError) return `${e.code}: ${e.message}`;
  }
  return "accepted";
}

afterEach(() => {
  vi.useRealTimers();
});

describe("verified tokens", () => {
  it("refuses a remembered token once it expires", async () => {
    vi.useFakeTimers({ now: 1_800_000_000_000 });
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await signJwt(
      { sub: "crafting-service", scope: "service", exp },
      TEST_JWT_SECRET,
    );
    const first = await authenticate(env(TEST_JWT_SECRET), request(token), "service");
    expect(first.sub).toBe("crafting-service");
    expect((await authenticate(env(TEST_JWT_SECRET), request(token), "service")).exp).toBe(exp);
    vi.setSystemTime((exp + TOKEN_RULES.clockSkewSeconds) * 1000);
    expect(await refusal(authenticate(env(TEST_JWT_SECRET), request(token), "service"))).toBe(
      "unauthenticated: the bearer token has expired",
    );
  });

  it("refuses a remembered token when the secret it was verified with is no longer the one", async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const token = await signJwt(
      { sub: "crafting-service", scope: "service", exp },
      TEST_JWT_SECRET,
    );
    await authenticate(env(TEST_JWT_SECRET), request(token), "service");
    const rotated = "another-secret-that-is-long-enough-0123456789";
    expect(await refusal(authenticate(env(rotated), request(token), "service"))).toBe(
      "unauthenticated: the bearer token's signature is invalid",
    );
  });

  it("still checks the scope of a remembered token", async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const token = await signJwt({ sub: "p-1", scope: "player", exp }, TEST_JWT_SECRET);
    await authenticate(env(TEST_JWT_SECRET), request(token), "player");
    expect(await refusal(authenticate(env(TEST_JWT_SECRET), request(token), "service"))).toMatch(
      /^permission_denied/,
    );
  });
});
