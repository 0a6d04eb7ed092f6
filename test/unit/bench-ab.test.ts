/** `npm run bench:ab`'s judgement of a change against its base, run by run. */
import { describe, expect, it } from "vitest";
import { type AbResult, abLines, againstFloor, compareRuns, figures } from "../../bench/lib/ab.ts";

describe("an A/B comparison", () => {
  it("judges posts/s round by round: the change is better only when every round says so", () => {
    const better = compareRuns(
      { floor: [1000, 1100, 900], base: [700, 800, 600], change: [770, 840, 660] },
      true,
    );
    expect(better.change_vs_base.rounds).toEqual([1.1, 1.05, 1.1]);
    expect(better.change_vs_base.median).toBe(1.1);
    expect(better.change_vs_base.verdict).toBe("better");
    expect(better.by_target.base.median).toBe(700);
    expect(better.base_vs_floor).toBe(0.7);
    expect(better.change_vs_floor).toBe(0.77);

    // A higher median, but one round slower: this run cannot tell.
    const mixed = compareRuns(
      { floor: [1000, 1000, 1000], base: [700, 800, 600], change: [800, 780, 700] },
      true,
    );
    expect(mixed.by_target.change.median).toBeGreaterThan(mixed.by_target.base.median);
    expect(mixed.change_vs_base.verdict).toBe("within noise");
  });

  it("counts a lower latency as the better figure", () => {
    const faster = compareRuns({ floor: [5, 5, 5], base: [10, 12, 8], change: [5, 6, 4] }, false);
    expect(faster.change_vs_base.rounds).toEqual([2, 2, 2]);
    expect(faster.change_vs_base.verdict).toBe("better");
    expect(faster.base_vs_floor).toBe(2);
    const slower = compareRuns({ floor: [5, 5, 5], base: [5, 6, 4], change: [10, 12, 8] }, false);
    expect(slower.change_vs_base.verdict).toBe("worse");
  });

  it("gives no verdict on fewer than three rounds", () => {
    const one = compareRuns({ floor: [1000], base: [500], change: [900] }, true);
    expect(one.change_vs_base.verdict).toBe("too few rounds");
  });

  it("judges events/s against the base alone where the floor cannot run the scenario", () => {
    const result: AbResult = {
      schema: 1,
      base: { rev: "HEAD", commit: "0123456789abcdef" },
      scenario: "events",
      unit: "events/s",
      events: { sessions: 20, per_session: 50 },
      ...compareRuns({ base: [1000, 1200, 900], change: [1100, 1320, 990] }, true),
      p99: { base: figures([40, 50, 60]), change: figures([30, 35, 45]) },
    };
    expect(result.change_vs_base).toMatchObject({ rounds: [1.1, 1.1, 1.1], verdict: "better" });
    expect(result.by_target.floor).toBeUndefined();
    expect(result.base_vs_floor).toBeUndefined();
    const text = abLines(result).join("\n");
    expect(text).toContain("20 sessions × 50 progress events through POST /v1/events");
    expect(text).toContain("1.1× as fast (rounds 1.1, 1.1, 1.1): better");
    expect(text).toContain("the floor has no bridge path: not measured");
    expect(text).toContain("p99 POST → subscriber, median of the rounds: base 50 ms, change 35 ms");
    expect(text).not.toMatch(/floor +\d/);
  });

  it("names the lifecycle scenario's events as pauses and resumes", () => {
    const result: AbResult = {
      schema: 1,
      base: { rev: "HEAD~1", commit: "0123456789abcdef" },
      scenario: "lifecycle",
      unit: "events/s",
      events: { sessions: 100, per_session: 10 },
      ...compareRuns({ base: [1600, 1650], change: [2100, 2150] }, true),
      p99: { base: figures([75, 80]), change: figures([60, 70]) },
    };
    const text = abLines(result).join("\n");
    expect(text).toContain("100 sessions × 10 pauses and resumes through POST /v1/events");
    expect(text).toContain("p99 POST → subscriber, median of the rounds: base 75 ms, change 60 ms");
  });

  it("names the batch scenario's path, which the floor has not", () => {
    const result: AbResult = {
      schema: 1,
      base: { rev: "HEAD", commit: "0123456789abcdef" },
      scenario: "batch",
      unit: "updates/s",
      events: { sessions: 100, per_session: 100 },
      ...compareRuns({ base: [30000, 31000, 29000], change: [29000, 31000, 30000] }, true),
    };
    const text = abLines(result).join("\n");
    expect(text).toContain("100 sessions × 100 updates through POST /v1/progress, 1,000 a request");
    expect(text).toContain("the floor has no batch path: not measured");
    expect(text).not.toContain("p99");
  });

  it("refuses rounds that do not line up", () => {
    expect(() => compareRuns({ floor: [1, 1], base: [1, 1], change: [1] }, true)).toThrow(
      /one figure per round/,
    );
    expect(() => compareRuns({ floor: [], base: [], change: [] }, true)).toThrow();
    expect(() => compareRuns({ base: [1, 1], change: [1] }, true)).toThrow(/one figure per round/);
  });

  /** A fan-out result against `rev`, its p99s of every round as given. */
  const fanoutResult = (
    rev: string,
    subscribers: number,
    p99s: { floor: number[]; base: number[]; change: number[] },
  ): AbResult => ({
    schema: 1,
    base: { rev, commit: "0123456789abcdef" },
    scenario: "fanout",
    unit: "p99 ms",
    subscribers,
    ...compareRuns(p99s, false),
  });

  it("reports what was compared with what, and the verdict", () => {
    const result = fanoutResult("HEAD~1", 100, {
      floor: [5, 5, 5],
      base: [10, 12, 8],
      change: [5, 6, 4],
    });
    const text = abLines(result).join("\n");
    expect(text).toContain("fan-out to 100 subscriber(s)");
    expect(text).toContain("HEAD~1 (0123456789)");
    expect(text).toContain("3 rounds");
    expect(text).toContain("2× as fast (rounds 2, 2, 2): better");
    expect(text).toContain("base 2, change 1");
    expect(text).not.toContain("p50");
  });

  it("reports a fan-out's p50s, median of the rounds, against the floor", () => {
    const p50 = againstFloor({ floor: [3, 2, 4], base: [4, 3, 5], change: [3, 3, 3] });
    expect(p50).toEqual({
      by_target: {
        floor: { runs: [3, 2, 4], median: 3 },
        base: { runs: [4, 3, 5], median: 4 },
        change: { runs: [3, 3, 3], median: 3 },
      },
      base_vs_floor: 1.333,
      change_vs_floor: 1,
    });
    const result = {
      ...fanoutResult("HEAD", 1, { floor: [5, 5, 5], base: [6, 6, 6], change: [5, 5, 5] }),
      p50,
    };
    expect(abLines(result).join("\n")).toContain(
      "p50 ms, median of the rounds: floor 3, base 4, change 3; vs the floor: base 1.333, change 1",
    );
  });
});
