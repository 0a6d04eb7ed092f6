/**
 * A change measured against a base revision in one run (`npm run
 * bench:ab`): the floor, the base and the change take turns run by run, so
 * each round's slow spell falls on all three, and the change is judged by
 * the ratio within each round. Two separate bench runs on this machine
 * differ by more than most changes do (the floor's own posts/s swung
 * 1,391 → 1,792 between two runs minutes apart, session 20).
 */
import { round } from "./stats.ts";
import { median } from "./turns.ts";

/** Rounds a verdict needs: with fewer, one lucky round would decide. */
export const MIN_ROUNDS = 3;

/**
 * What an A/B run measures: posts/s into one session, the fan-out p99 (ms),
 * bridged progress or lifecycle events/s through `POST /v1/events`, or
 * updates/s through `POST /v1/progress` (the floor has neither path: base
 * and change only).
 */
export type AbScenario = "ingest" | "fanout" | "events" | "lifecycle" | "batch";

/** One target's figure in every round, and their median. */
export interface AbFigures {
  runs: number[];
  median: number;
}

/** How the change compares, as a speed-up: above 1 is better, whatever the unit. */
export interface AbComparison {
  /** The round-by-round speed-ups of the change over the base (change vs base in the same round). */
  rounds: number[];
  median: number;
  min: number;
  max: number;
  /**
   * "better" or "worse" when every round of at least `MIN_ROUNDS` agrees;
   * "within noise" when they disagree (some faster, some slower): this run
   * cannot tell.
   */
  verdict: "better" | "worse" | "within noise" | "too few rounds";
}

export interface AbResult {
  schema: 1;
  /** The base revision as asked for, and the commit it named. */
  base: { rev: string; commit: string };
  scenario: AbScenario;
  unit: "posts/s" | "p99 ms" | "events/s" | "updates/s";
  /** Fan-out only: subscribers watching the session. */
  subscribers?: number;
  /** Events, lifecycle and batch only: the sessions, and the events or updates each is sent, in order. */
  events?: { sessions: number; per_session: number };
  /** The floor's figures are left out where it cannot run the scenario (events, lifecycle, batch). */
  by_target: { floor?: AbFigures; base: AbFigures; change: AbFigures };
  change_vs_base: AbComparison;
  /** As the bench reports it (`ratios`): posts/s us/floor for ingest, p99 us/floor for fan-out; none for events. */
  base_vs_floor?: number;
  change_vs_floor?: number;
  /**
   * Fan-out only: each round's median delivery (ms), by target. Steadier
   * than a p99, which one or two slow posts decide at 1 subscriber: the
   * offset a change adds or removes shows here first (docs/benchmarks.md,
   * session 24).
   */
  p50?: AbMedians;
  /** Events and lifecycle only: each round's p99 from the POST to a subscriber (ms), by target. */
  p99?: { base: AbFigures; change: AbFigures };
}

/** Each round's figure by target, and the base's and the change's median against the floor's. */
export interface AbMedians {
  by_target: { floor: AbFigures; base: AbFigures; change: AbFigures };
  base_vs_floor: number;
  change_vs_floor: number;
}

/** Every round's figures by target, and the medians over the floor's (the p50s of a fan-out, too). */
export function againstFloor(runs: {
  floor: number[];
  base: number[];
  change: number[];
}): AbMedians {
  const by_target = {
    floor: figures(runs.floor),
    base: figures(runs.base),
    change: figures(runs.change),
  };
  return {
    by_target,
    base_vs_floor: round(by_target.base.median / by_target.floor.median, 3),
    change_vs_floor: round(by_target.change.median / by_target.floor.median, 3),
  };
}

/**
 * The figures of every round, by target; `higherIsBetter` for posts/s, not
 * for latency. Without the floor's (a scenario it cannot run), the change
 * is still judged against the base.
 */
export function compareRuns(
  runs: { floor?: number[]; base: number[]; change: number[] },
  higherIsBetter: boolean,
): Pick<AbResult, "by_target" | "change_vs_base" | "base_vs_floor" | "change_vs_floor"> {
  const { floor, base, change } = runs;
  if (
    base.length === 0 ||
    base.length !== change.length ||
    (floor !== undefined && floor.length !== base.length)
  )
    throw new Error("every target needs one figure per round");
  const speedUp = (of: number, over: number) => (higherIsBetter ? of / over : over / of);
  const rounds = base.map((b, i) => round(speedUp(change[i] as number, b), 3));
  const against = floor
    ? againstFloor({ floor, base, change })
    : { by_target: { base: figures(base), change: figures(change) } };
  return {
    ...against,
    change_vs_base: {
      rounds,
      median: medianOf(rounds),
      min: Math.min(...rounds),
      max: Math.max(...rounds),
      verdict:
        rounds.length < MIN_ROUNDS
          ? "too few rounds"
          : rounds.every((r) => r > 1)
            ? "better"
            : rounds.every((r) => r < 1)
              ? "worse"
              : "within noise",
    },
  };
}

/** The report's lines, for the terminal and the closing note. */
export function abLines(result: AbResult): string[] {
  const { by_target: t, change_vs_base: c } = result;
  const row = (name: string, f: AbFigures) =>
    `  ${name.padEnd(7)} ${String(f.median).padStart(9)} ${result.unit}  (runs ${f.runs.join(", ")})`;
  const what = scenarioLine(result);
  return [
    `${what}: the change against ${result.base.rev} (${result.base.commit.slice(0, 10)}), ${c.rounds.length} round${c.rounds.length === 1 ? "" : "s"} in turns`,
    ...(t.floor ? [row("floor", t.floor)] : []),
    row("base", t.base),
    row("change", t.change),
    `  change vs base: ${c.median}× as fast (rounds ${c.rounds.join(", ")}): ${c.verdict}`,
    ...(result.base_vs_floor === undefined
      ? [
          `  the floor has no ${result.scenario === "batch" ? "batch" : "bridge"} path: not measured`,
        ]
      : [`  vs the floor: base ${result.base_vs_floor}, change ${result.change_vs_floor}`]),
    ...(result.p99
      ? [
          `  p99 POST → subscriber, median of the rounds: base ${result.p99.base.median} ms, change ${result.p99.change.median} ms`,
        ]
      : []),
    ...(result.p50
      ? [
          `  p50 ms, median of the rounds: floor ${result.p50.by_target.floor.median}, base ${result.p50.by_target.base.median}, change ${result.p50.by_target.change.median}; vs the floor: base ${result.p50.base_vs_floor}, change ${result.p50.change_vs_floor}`,
        ]
      : []),
  ];
}

/** What a scenario measured, as the first line says it. */
function scenarioLine(result: AbResult): string {
  const { sessions, per_session: each } = result.events ?? {};
  switch (result.scenario) {
    case "ingest":
      return "ingest into one session";
    case "fanout":
      return `fan-out to ${result.subscribers} subscriber(s)`;
    case "events":
      return `${sessions} sessions × ${each} progress events through POST /v1/events`;
    case "lifecycle":
      return `${sessions} sessions × ${each} pauses and resumes through POST /v1/events`;
    case "batch":
      return `${sessions} sessions × ${each} updates through POST /v1/progress, 1,000 a request`;
  }
}

export function figures(runs: number[]): AbFigures {
  return { runs, median: medianOf(runs) };
}

function medianOf(values: readonly number[]): number {
  return median(values, (value) => value);
}
