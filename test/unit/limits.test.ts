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

describe("renewing a grant ahead of need", () => {
  const GRANT = CREDITS_PER_GRANT.INGEST_RATE_LIMITER;

  it("asks once when half the grant is spent, and adds the new credits to those held", () => {
    const credits = new Credits();
    credits.grant("k", GRANT - 1, 0);
    let spent = 0;
    while (!credits.shouldRenew("k", 10)) {
      expect(credits.take("k", 10)).toBe(true);
      spent++;
    }
    expect(spent).toBe(GRANT - 1 - Math.floor((GRANT - 1) / 2));
    // One renewal at a time.
    expect(credits.shouldRenew("k", 10)).toBe(false);
    credits.grant("k", GRANT, 20);
    let left = 0;
    while (credits.take("k", 30)) left++;
    expect(left).toBe(GRANT - 1 - spent + GRANT);
  });

  it("asks when a grant nears its end unspent, and not for a lapsed one", () => {
    const credits = new Credits();
    credits.grant("k", GRANT - 1, 0);
    expect(credits.shouldRenew("k", 100)).toBe(false);
    expect(credits.shouldRenew("k", CREDIT_TTL_MS - 100)).toBe(true);
    credits.renewalRefused("k");
    expect(credits.shouldRenew("k", CREDIT_TTL_MS)).toBe(false);
  });

  it("after a refusal, the held credits run out and callers ask the binding", () => {
    const credits = new Credits();
    credits.grant("k", 3, 0);
    expect(credits.shouldRenew("k", CREDIT_TTL_MS - 100)).toBe(true);
    credits.renewalRefused("k");
    let admitted = 0;
    while (credits.take("k", CREDIT_TTL_MS - 50)) admitted++;
    expect(admitted).toBe(3);
    expect(credits.take("k", CREDIT_TTL_MS - 40)).toBe(false);
  });

  it("never admits more requests than grants allow, renewals included", () => {
    const credits = new Credits();
    let grants = 0;
    let admitted = 0;
    let renewals: number[] = [];
    for (let t = 0; t < 10_000; t += 7) {
      // A renewal lands a few ms after it was asked for.
      for (const at of renewals.filter((at) => at <= t)) {
        grants++;
        credits.grant("k", GRANT, at);
      }
      renewals = renewals.filter((at) => at > t);
      if (credits.take("k", t)) {
        admitted++;
        if (credits.shouldRenew("k", t)) renewals.push(t + 3);
      } else {
        grants++;
        admitted++;
        credits.grant("k", GRANT - 1, t);
      }
    }
    expect(admitted).toBeLessThanOrEqual(grants * GRANT);
    expect(grants).toBeLessThan(admitted);
  });
});
