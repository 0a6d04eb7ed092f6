/** The player's queue as a projection of their sessions: positions, waits, order of notifications. */
import { describe, expect, it } from "vitest";
import {
  applySummary,
  materialTargets,
  queueView,
  type SessionSummary,
  showsChange,
} from "../../../src/domain/queue/crafting-queue";
import { CLOCK_TOLERANCE_MS } from "../../../src/domain/session/progress";
import type { SessionStatus } from "../../../src/domain/session/session";

const NOW = 1_800_000_000_000;

function summary(
  id: string,
  status: SessionStatus,
  plannedS: number,
  elapsedS = 0,
  extra: Partial<SessionSummary> = {},
): SessionSummary {
  return {
    sessionId: id,
    recipeId: `recipe-${id}`,
    status,
    createdAtMs: NOW - 100_000 + id.charCodeAt(0),
    plannedMs: plannedS * 1000,
    clock: {
      anchorAtMs: NOW,
      anchorElapsedMs: elapsedS * 1000,
      rate: 1,
      running: status === "active",
    },
    materialIds: [],
    seq: 1,
    ...extra,
  };
}

const byId = (...list: SessionSummary[]) => Object.fromEntries(list.map((s) => [s.sessionId, s]));

describe("queue positions and waits", () => {
  it("one slot: the crafting request is position 0; the others wait in creation order", () => {
    const view = queueView(
      byId(summary("a", "active", 60, 20), summary("b", "queued", 30), summary("c", "queued", 45)),
      1,
      NOW,
    );
    expect(
      view.map((i) => [i.requestId, i.status, i.queuePosition, i.estimatedWaitSeconds]),
    ).toEqual([
      ["a", "processing", 0, 0],
      ["b", "queued", 1, 40],
      ["c", "queued", 2, 70],
    ]);
  });

  it("two slots: each queued request takes whichever slot frees first", () => {
    const view = queueView(
      byId(
        summary("a", "active", 60, 20),
        summary("b", "queued", 30),
        summary("c", "queued", 45),
        summary("d", "queued", 10),
      ),
      2,
      NOW,
    );
    expect(view.map((i) => [i.requestId, i.queuePosition, i.estimatedWaitSeconds])).toEqual([
      ["a", 0, 0],
      ["b", 1, 0],
      ["c", 2, 30],
      ["d", 3, 40],
    ]);
  });

  it("counts a paused session as holding its slot for its remaining time, and the clock moving for an active one", () => {
    const later = NOW + 10_000;
    const view = queueView(
      byId(
        summary("a", "active", 60, 20),
        summary("p", "paused", 100, 90),
        summary("b", "queued", 5),
      ),
      1,
      later,
    );
    // a: 60 − (20 + 10) = 30 s left; p: 10 s left (as if resumed now). The one slot frees at 10 s.
    expect(view.find((i) => i.requestId === "b")).toMatchObject({
      queuePosition: 1,
      estimatedWaitSeconds: 10,
    });
  });
});

describe("notifications in any order", () => {
  it("ignores a summary older than the one held, and a late one for a request that ended", () => {
    let entries = applySummary({}, summary("a", "active", 60, 0, { seq: 3 }), NOW).entries;
    const stale = applySummary(entries, summary("a", "queued", 60, 0, { seq: 2 }), NOW);
    expect(stale.changed).toBe(false);
    const done = applySummary(entries, summary("a", "completed", 60, 60, { seq: 4 }), NOW);
    expect(done).toMatchObject({ changed: true, ended: true });
    entries = done.entries;
    expect(queueView(entries, 1, NOW)).toEqual([]);
    // The start (seq 3) arriving after the completion changes nothing.
    expect(applySummary(entries, summary("a", "active", 60, 0, { seq: 3 }), NOW).changed).toBe(
      false,
    );
  });

  it("reaches the same queue whatever the order of the same notifications", () => {
    const notes = [
      summary("a", "queued", 30, 0, { seq: 1 }),
      summary("b", "queued", 20, 0, { seq: 1 }),
      summary("a", "active", 30, 0, { seq: 2 }),
      summary("a", "completed", 30, 30, { seq: 3 }),
      summary("b", "active", 20, 0, { seq: 2 }),
    ];
    const fold = (order: number[]) =>
      order.reduce(
        (entries, i) => applySummary(entries, notes[i] as SessionSummary, NOW).entries,
        {} as Record<string, SessionSummary>,
      );
    const expected = queueView(fold([0, 1, 2, 3, 4]), 1, NOW);
    for (const order of [
      [4, 3, 2, 1, 0],
      [3, 0, 4, 2, 1],
      [1, 4, 0, 3, 2],
    ]) {
      expect(queueView(fold(order), 1, NOW)).toEqual(expected);
    }
    expect(expected.map((i) => [i.requestId, i.status])).toEqual([["b", "processing"]]);
  });
});

describe("progress corrections", () => {
  /** Session a, active, 60 s planned, corrected at `atMs` to `elapsedMs` crafted. */
  const corrected = (seq: number, atMs: number, elapsedMs: number) =>
    summary("a", "active", 60, 0, {
      seq,
      clock: { anchorAtMs: atMs, anchorElapsedMs: elapsedMs, rate: 1, running: true },
    });

  it("changes nothing when the correction agrees with the plan (the finish moves less than the tolerance)", () => {
    const entries = applySummary({}, corrected(2, NOW, 0), NOW).entries;
    // 10 s later crafting-service reports 10.4 s crafted: the finish moves 0.4 s.
    const later = NOW + 10_000;
    const result = applySummary(entries, corrected(3, later, 10_400), later);
    expect(result.changed).toBe(false);
    expect(result.entries.a?.seq).toBe(2);
  });

  it("takes a correction that moves the finish by the tolerance or more, and the waits behind it follow", () => {
    const entries = applySummary(
      applySummary({}, corrected(2, NOW, 0), NOW).entries,
      summary("b", "queued", 5),
      NOW,
    ).entries;
    const later = NOW + 10_000;
    // Reported 10 s behind plan: a finishes 10 s later, and so b's wait grows by 10 s.
    const result = applySummary(entries, corrected(3, later, 0), later);
    expect(result.changed).toBe(true);
    expect(queueView(result.entries, 1, later).find((i) => i.requestId === "b")).toMatchObject({
      estimatedWaitSeconds: 60,
    });
    // Exactly the tolerance counts as a move.
    const edge = applySummary(entries, corrected(3, later, 10_000 - CLOCK_TOLERANCE_MS), later);
    expect(edge.changed).toBe(true);
  });

  it("measures small moves from the summary held, so they cannot add up unseen", () => {
    let entries = applySummary({}, corrected(2, NOW, 0), NOW).entries;
    const taken: number[] = [];
    // Each report 0.4 s behind the one before: under the tolerance each, not together.
    for (let i = 1; i <= 6; i++) {
      const at = NOW + i * 1000;
      const result = applySummary(entries, corrected(2 + i, at, i * 1000 - i * 400), at);
      if (result.changed) taken.push(i);
      entries = result.entries;
    }
    expect(taken).toEqual([3, 6]);
  });

  it("takes any change but the clock's at once, however small", () => {
    const entries = applySummary({}, corrected(2, NOW, 0), NOW).entries;
    const paused = { ...corrected(3, NOW, 0), status: "paused" as const };
    expect(applySummary(entries, paused, NOW).changed).toBe(true);
    const materials = { ...corrected(3, NOW, 0), materialIds: ["iron"] };
    expect(applySummary(entries, materials, NOW).changed).toBe(true);
  });
});

describe("a player's material change", () => {
  it("goes to each unfinished session that requires one of the materials, with only those changes", () => {
    const entries = {
      a: summary("a", "active", 60, 0, { materialIds: ["ore", "coal"] }),
      b: summary("b", "queued", 60, 0, { materialIds: ["ore"] }),
      c: summary("c", "queued", 60, 0, { materialIds: ["gem"] }),
      d: summary("d", "completed", 60, 0, { materialIds: ["ore"] }),
      e: summary("e", "paused", 60, 0, { materialIds: [] }),
    };
    const ore = { materialId: "ore", quantity: 1, available: true };
    const coal = { materialId: "coal", quantity: 0, available: false };
    expect(materialTargets(entries, [ore, coal])).toEqual([
      { sessionId: "a", changes: [ore, coal] },
      { sessionId: "b", changes: [ore] },
    ]);
    expect(
      materialTargets(entries, [{ materialId: "wood", quantity: 3, available: true }]),
    ).toEqual([]);
  });
});

describe("a change a client would not see", () => {
  it("is a newer clock of the one session crafting, until a request waits behind it", () => {
    const shows = (
      before: Record<string, SessionSummary>,
      after: Record<string, SessionSummary>,
      slots = 1,
      ended = false,
    ) => showsChange(before, { entries: after, ended }, slots, NOW);
    const held = byId(summary("a", "active", 60, 10));
    const ahead = byId(summary("a", "active", 60, 40, { seq: 2 }));
    expect(shows(held, ahead)).toBe(false);
    const withQueued = { ...held, ...byId(summary("b", "queued", 30)) };
    const aheadWithQueued = { ...ahead, ...byId(summary("b", "queued", 30)) };
    // b's wait goes from 50 s to 20 s.
    expect(shows(withQueued, aheadWithQueued)).toBe(true);
    // A second slot is free: b starts at once either way.
    expect(shows(withQueued, aheadWithQueued, 2)).toBe(false);
    // Paused and active both show as processing; queued does not.
    expect(shows(held, byId(summary("a", "paused", 60, 10, { seq: 2 })))).toBe(false);
    expect(shows(held, byId(summary("a", "queued", 60, 10, { seq: 2 })))).toBe(true);
    // An ended request always shows (it is listed in `ended`).
    expect(shows(held, ahead, 1, true)).toBe(true);
  });
});
