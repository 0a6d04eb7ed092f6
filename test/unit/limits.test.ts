/** Request credits: one counted binding call stands for a bounded number of requests. */
import { describe, expect, it } from "vitest";
import { CREDIT_TTL_MS, CREDITS_PER_GRANT, Credits } from "../../src/middleware/limits";

describe("request credits", () => {
  it("admits nothing without a grant, then exactly the grant's requests", () => {
    const credits = new Credits();
    expect(credits.take("k", 0)).toBe(false);
    credits.grant("k", CREDITS_PER_GRANT.INGEST_RATE_LIMITER - 1, 0);
    let admitted = 1; // the request that asked the binding
    while (credits.take("k", 10)) admitted++;
    expect(admitted).toBe(CREDITS_PER_GRANT.INGEST_RATE_LIMITER);
  });

  it("lets unused credits lapse, and keeps keys apart", () => {
    const credits = new Credits();
    credits.grant("a", 5, 0);
    expect(credits.take("b", 1)).toBe(false);
    expect(credits.take("a", CREDIT_TTL_MS - 1)).toBe(true);
    expect(credits.take("a", CREDIT_TTL_MS)).toBe(false);
  });

  it("never admits more requests than grants allow, whatever the interleaving", () => {
    const credits = new Credits();
    let grants = 0;
    let admitted = 0;
    for (let t = 0; t < 10_000; t += 7) {
      if (credits.take("k", t)) admitted++;
      else {
        grants++;
        admitted++;
        credits.grant("k", CREDITS_PER_GRANT.INGEST_RATE_LIMITER - 1, t);
      }
    }
    expect(admitted).toBeLessThanOrEqual(grants * CREDITS_PER_GRANT.INGEST_RATE_LIMITER);
    expect(grants).toBeLessThan(admitted);
  });
});
