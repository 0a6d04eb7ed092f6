/** The ingest limiter in workerd: one binding call stands for a grant of requests. */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { CREDITS_PER_GRANT } from "../../src/middleware/limits";
import { freshId, token } from "../support/tokens";
import { call } from "./helpers";

describe("crafting-service's ingest limit", () => {
  it("asks the Rate Limiting binding once per grant of requests, not once per request", async () => {
    const limit = vi.spyOn(env.INGEST_RATE_LIMITER, "limit");
    try {
      // A service identity of its own, so no grant is held yet.
      const bearer = await token(freshId("svc"), "service");
      const requests = 32;
      for (let i = 0; i < requests; i++) {
        const response = await call(`/v1/sessions/${freshId("s")}`, {
          headers: { Authorization: `Bearer ${bearer}` },
        });
        expect(response.status).toBe(404);
      }
      // Every request is covered by a counted grant (renewals ahead of need
      // included), and a grant covers many requests.
      await new Promise((resolve) => setTimeout(resolve, 50)); // a renewal in the background lands
      const calls = limit.mock.calls.length;
      expect(calls * CREDITS_PER_GRANT.INGEST_RATE_LIMITER).toBeGreaterThanOrEqual(requests);
      expect(calls).toBeLessThanOrEqual(requests / 8);
    } finally {
      limit.mockRestore();
    }
  });

  it("renews a grant in the background: callers holding credits never wait for the binding, and none is admitted without one", async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const limit = vi.spyOn(env.INGEST_RATE_LIMITER, "limit").mockImplementation(async () => {
      calls++;
      // The first call answers at once; every later one hangs until released.
      if (calls > 1) await held;
      return { success: true };
    });
    try {
      const bearer = await token(freshId("svc"), "service");
      const get = () =>
        call(`/v1/sessions/${freshId("s")}`, { headers: { Authorization: `Bearer ${bearer}` } });
      // The whole first grant is served while its renewal hangs.
      for (let i = 0; i < CREDITS_PER_GRANT.INGEST_RATE_LIMITER; i++)
        expect((await get()).status).toBe(404);
      expect(calls).toBe(2);
      // The next request has no credit: it waits for the binding like the renewal.
      let answered = false;
      const waiting = get().then((response) => {
        answered = true;
        return response;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(answered).toBe(false);
      release();
      expect((await waiting).status).toBe(404);
    } finally {
      release();
      limit.mockRestore();
    }
  });
});
