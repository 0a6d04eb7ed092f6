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
      // Every request is covered by a counted grant, and a grant covers many requests.
      expect(limit).toHaveBeenCalledTimes(requests / CREDITS_PER_GRANT.INGEST_RATE_LIMITER);
      expect(limit.mock.calls.length).toBeLessThanOrEqual(requests / 8);
    } finally {
      limit.mockRestore();
    }
  });
});
