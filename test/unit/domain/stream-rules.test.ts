/** The pure stream rules: leases, idle and token verdicts, the frame budget, origins. */
import { describe, expect, it } from "vitest";
import { parseResumePoint, planResume } from "../../../src/domain/streams/resume";
import {
  acquireLease,
  expiredLeases,
  LEASE_RULES,
  liveLeases,
  reclaimableLeases,
  type StreamLease,
} from "../../../src/domain/streams/stream-leases";
import {
  earliestExpiry,
  FRAME_BUDGET,
  meterFrame,
  newBucket,
  streamVerdict,
} from "../../../src/domain/streams/stream-liveness";
import { closeAdvice, transientObjectError } from "../../../src/errors";
import { originAllowed } from "../../../src/middleware/limits";

const T0 = 1_800_000_000_000;

function fill(count: number, nowMs = T0): StreamLease[] {
  const leases: StreamLease[] = [];
  for (let i = 0; i < count; i++) {
    const result = acquireLease(leases, { id: `l${i}`, kind: "session", target: "s" }, nowMs);
    if (!result.ok) throw new Error(result.error.message);
    leases.push(result.lease);
  }
  return leases;
}

describe("stream leases", () => {
  it("grants up to the limit and refuses the next with resource_exhausted", () => {
    const leases = fill(LEASE_RULES.maxStreamsPerPlayer);
    const refused = acquireLease(leases, { id: "x", kind: "queue", target: "p" }, T0);
    expect(refused).toMatchObject({ ok: false, error: { code: "resource_exhausted" } });
  });

  it("lasts as long as its stream may: until the stream's token expires, at most a day", () => {
    const exp = T0 + 3_600_000;
    const granted = acquireLease(
      [],
      { id: "a", kind: "session", target: "s", expiresAtMs: exp },
      T0,
    );
    if (!granted.ok) throw new Error(granted.error.message);
    expect(granted.lease).toEqual({
      id: "a",
      kind: "session",
      target: "s",
      takenAtMs: T0,
      expiresAtMs: exp,
    });
    expect(liveLeases([granted.lease], exp - 1)).toHaveLength(1);
    expect(liveLeases([granted.lease], exp)).toHaveLength(0);
    // Nothing renews it on a timer: it is alive all the while, with no call at all.
    expect(liveLeases([granted.lease], T0 + 30 * 60_000)).toHaveLength(1);
    const forever = acquireLease([], { id: "b", kind: "queue", target: "p" }, T0);
    expect(forever.ok && forever.lease.expiresAtMs).toBe(T0 + LEASE_RULES.maxLifetimeMs);
  });

  it("counts an expired lease as a free slot, and names it to be dropped", () => {
    const full = fill(LEASE_RULES.maxStreamsPerPlayer);
    const [first] = full;
    if (!first) throw new Error("no lease");
    first.expiresAtMs = T0 + 1000;
    expect(acquireLease(full, { id: "x", kind: "queue", target: "p" }, T0 + 999).ok).toBe(false);
    expect(acquireLease(full, { id: "x", kind: "queue", target: "p" }, T0 + 1000).ok).toBe(true);
    expect(expiredLeases(full, T0 + 1000).map((l) => l.id)).toEqual(["l0"]);
    expect(expiredLeases(full, T0 + 999)).toEqual([]);
  });

  it("offers for reclaiming only leases taken more than a few seconds ago (and those stored before that was recorded)", () => {
    const old = fill(2, T0);
    const fresh = acquireLease(old, { id: "new", kind: "session", target: "s" }, T0 + 10_000);
    if (!fresh.ok) throw new Error(fresh.error.message);
    const legacy = {
      id: "legacy",
      kind: "session" as const,
      target: "s",
      expiresAtMs: T0 + 60_000,
    };
    const leases = [...old, fresh.lease, legacy];
    const at = T0 + 10_000 + LEASE_RULES.settleMs - 1;
    expect(reclaimableLeases(leases, at).map((l) => l.id)).toEqual(["l0", "l1", "legacy"]);
    expect(reclaimableLeases(leases, at + 2).map((l) => l.id)).toEqual([
      "l0",
      "l1",
      "new",
      "legacy",
    ]);
  });
});

describe("stream verdicts", () => {
  const exp = (T0 + 3_600_000) / 1000;

  it("keeps a stream heard from within 30 s", () => {
    expect(streamVerdict({ lastSeenMs: T0, tokenExp: exp }, T0 + 29_999)).toEqual({
      action: "keep",
    });
  });

  it("closes a stream idle for 30 s with 4008", () => {
    expect(streamVerdict({ lastSeenMs: T0, tokenExp: exp }, T0 + 30_000)).toMatchObject({
      action: "close",
      code: 4008,
    });
  });

  it("closes a stream whose token expired with 4001, before idleness is considered", () => {
    const verdict = streamVerdict({ lastSeenMs: T0 - 60_000, tokenExp: T0 / 1000 }, T0);
    expect(verdict).toMatchObject({ action: "close", code: 4001 });
    if (verdict.action === "close")
      expect(closeAdvice(verdict.code)).toBe("reconnect_with_new_token");
  });

  it("knows when the first token of the open streams expires, and that none will when none are open", () => {
    expect(earliestExpiry([])).toBe(Number.POSITIVE_INFINITY);
    const streams = [
      { lastSeenMs: T0, tokenExp: exp },
      { lastSeenMs: T0 - 29_000, tokenExp: (T0 + 5_000) / 1000 },
      { lastSeenMs: T0, tokenExp: exp + 60 },
    ];
    // Idleness does not enter into it: a silent stream is closed at the next wake, not on a deadline.
    expect(earliestExpiry(streams)).toBe(T0 + 5_000);
  });
});

describe("frame budget", () => {
  it("accepts a burst, then refuses, then closes a client that keeps going", () => {
    let bucket = newBucket(T0);
    const decisions: string[] = [];
    for (let i = 0; i < FRAME_BUDGET.burst + FRAME_BUDGET.maxStrikes + 1; i++) {
      const metered = meterFrame(bucket, T0);
      bucket = metered.bucket;
      decisions.push(metered.decision);
    }
    expect(decisions.slice(0, FRAME_BUDGET.burst).every((d) => d === "accept")).toBe(true);
    expect(decisions.slice(FRAME_BUDGET.burst, -1).every((d) => d === "throttle")).toBe(true);
    expect(decisions.at(-1)).toBe("close");
  });

  it("refills at the sustained rate, so a steady client is never refused", () => {
    let bucket = newBucket(T0);
    for (let i = 0; i < 1_000; i++) {
      const metered = meterFrame(bucket, T0 + (i * 1000) / FRAME_BUDGET.perSecond);
      expect(metered.decision).toBe("accept");
      bucket = metered.bucket;
    }
  });

  it("forgets strikes after the strike window", () => {
    let bucket = newBucket(T0);
    for (let i = 0; i < FRAME_BUDGET.burst + FRAME_BUDGET.maxStrikes; i++)
      bucket = meterFrame(bucket, T0).bucket;
    // Window over, bucket still empty at that instant: a throttle, not a close.
    const drained = { ...bucket, tokens: 0, updatedAtMs: T0 + FRAME_BUDGET.strikeWindowMs };
    expect(meterFrame(drained, T0 + FRAME_BUDGET.strikeWindowMs).decision).toBe("throttle");
  });
});

describe("origin allowlist", () => {
  const allowed = "http://127.0.0.1:8787, http://localhost:8787";

  it("allows listed origins and clients that send no Origin", () => {
    expect(originAllowed("http://localhost:8787", allowed)).toBe(true);
    expect(originAllowed(null, allowed)).toBe(true);
  });

  it("allows the service's own origin (its dashboard), wherever it runs", () => {
    expect(originAllowed("http://127.0.0.1:40123", allowed, "http://127.0.0.1:40123")).toBe(true);
    expect(originAllowed("http://127.0.0.1:40124", allowed, "http://127.0.0.1:40123")).toBe(false);
  });

  it("refuses anything else, including near misses", () => {
    for (const origin of [
      "https://localhost:8787",
      "http://localhost:8788",
      "null",
      "http://evil.example",
    ]) {
      expect(originAllowed(origin, allowed), origin).toBe(false);
    }
    expect(originAllowed("http://localhost:8787", "")).toBe(false);
  });

  it("allows any origin with *", () => {
    expect(originAllowed("https://game.example", "*")).toBe(true);
  });
});

describe("Durable Object overload", () => {
  it("becomes 503 unavailable with Retry-After, and only for the runtime's transient errors", () => {
    const overloaded = Object.assign(new Error("Durable Object is overloaded"), {
      overloaded: true,
    });
    expect(transientObjectError(overloaded)).toMatchObject({
      code: "unavailable",
      retryAfterSeconds: 1,
    });
    const reset = Object.assign(new Error("Durable Object reset"), { retryable: true });
    expect(transientObjectError(reset)).toMatchObject({ code: "unavailable" });
    expect(transientObjectError(new Error("bug"))).toBeNull();
    expect(transientObjectError("not an error")).toBeNull();
  });
});

describe("resume", () => {
  const log = (from: number, to: number) => (after: number) =>
    Array.from(
      { length: to - Math.max(after, from - 1) },
      (_, i) => Math.max(after, from - 1) + i + 1,
    );

  it("replays exactly what a client missed, in order, when the log still holds it", () => {
    expect(planResume({ epoch: 7, seq: 10 }, { epoch: 7, seq: 6 }, log(1, 10))).toEqual({
      type: "replay",
      frames: [7, 8, 9, 10],
      missed: 4,
    });
    expect(
      planResume({ epoch: 7, seq: 10 }, { epoch: 7, seq: 10 }, () => {
        throw new Error("nothing missed: the log is not read");
      }),
    ).toEqual({ type: "replay", frames: [], missed: 0 });
  });

  it("answers with a snapshot not recovered for another epoch, a future seq or a gap the log lost", () => {
    const snapshot = { type: "snapshot", recovered: false };
    expect(planResume({ epoch: 7, seq: 10 }, { epoch: 8, seq: 6 }, log(1, 10))).toEqual(snapshot);
    expect(planResume({ epoch: 7, seq: 10 }, { epoch: 7, seq: 11 }, log(1, 10))).toEqual(snapshot);
    // The log keeps 5..10: a client at 2 missed 3 and 4 for good.
    expect(planResume({ epoch: 7, seq: 10 }, { epoch: 7, seq: 2 }, log(5, 10))).toEqual(snapshot);
  });

  it("reads a resume point only in its epoch.seq form", () => {
    expect(parseResumePoint("12.34")).toEqual({ epoch: 12, seq: 34 });
    for (const bad of [null, "", "12", "12.", ".3", "-1.2", "1.2.3", "a.b"])
      expect(parseResumePoint(bad)).toBeNull();
  });
});
