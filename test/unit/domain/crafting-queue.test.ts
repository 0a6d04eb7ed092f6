/** The player's queue as a projection of their sessions: positions, waits, order of notifications. */
import { describe, expect, it } from "vitest";
import {
  applySummary,
  materialTargets,
  queueView,
  type SessionSummary,
} from "../../../src/domain/queue/crafting-queue";
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
