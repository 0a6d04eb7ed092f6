/**
 * npm run bench:ab [-- --base REV] [--scenario ingest|fanout|events|lifecycle|batch] [--subscribers N]
 *                     [--sessions N] [--per-session N]
 *                     [--runs N] [--seconds S] [--posts N] [--smoke] [--out DIR]
 *
 * Measures the working tree (the change) against a base revision (HEAD by
 * default) and the floor, all three up and taking turns run by run
 * (bench/lib/ab.ts): how a hot-path change is judged on a machine whose
 * separate runs differ by more than most changes. The base is checked out
 * into bench/.build (a git worktree, removed after) and run from its own
 * wrangler.toml. Ingest: 8 callers posting into one session for `seconds`
 * (10: the steady state `--full` measures). Fan-out: `posts` at 20/s to
 * `subscribers`. Events: `sessions` watched sessions are each sent
 * `per-session` progress events in version order through `POST /v1/events`,
 * 100 to a request (the bench's events scenario); the figure is events/s
 * seen by the watchers, base and change only (the floor has no bridge).
 * Lifecycle: `sessions` watched sessions are paused and resumed
 * `per-session` times by bridged events, one in flight per session, as fast
 * as the watchers see them (the bench's lifecycle scenario); events/s.
 * Batch: the bench's batch paths over `sessions` × `per-session` updates;
 * the figure is `POST /v1/progress` updates/s (1,000 a request).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { commandLine } from "../scripts/command-line.mjs";
import {
  type AbResult,
  type AbScenario,
  abLines,
  againstFloor,
  compareRuns,
  figures,
} from "./lib/ab.ts";
import { eventsIngest } from "./lib/events-scenario.ts";
import { lifecycleIngest } from "./lib/lifecycle-scenario.ts";
import { batchIngest } from "./lib/paths-scenario.ts";
import { runCleanups } from "./lib/procs.ts";
import { fanout, ingest, settle } from "./lib/scenarios.ts";
import { BUILD, ROOT, startTarget, startUs, type Target } from "./lib/targets.ts";
import { inTurns } from "./lib/turns.ts";

/** How to write the command line. */
const USAGE =
  "npm run bench:ab -- [--base REV] [--scenario ingest|fanout|events|lifecycle|batch] [--subscribers N] [--sessions N] [--per-session N] [--runs N] [--seconds S] [--posts N] [--smoke] [--out DIR]";
const { values } = commandLine(
  {
    options: {
      base: {
        type: "string",
        default: "HEAD",
        about: "the revision the working tree is measured against",
      },
      scenario: {
        type: "string",
        default: "ingest",
        about: "ingest, fanout, events, lifecycle or batch",
      },
      subscribers: { type: "string", default: "1", about: "fanout: watchers of the session" },
      sessions: {
        type: "string",
        about: "events, lifecycle, batch: sessions [default 20; lifecycle, batch 100]",
      },
      "per-session": {
        type: "string",
        about:
          "events: progress events to each [default 50]; lifecycle: pauses and resumes [10]; batch: updates to each [100]",
      },
      runs: { type: "string", about: "rounds, the targets taking turns [default 6]" },
      seconds: { type: "string", about: "ingest: seconds of posting per round [default 10]" },
      posts: { type: "string", about: "fanout: posts per round, at 20/s [default 100]" },
      smoke: { type: "boolean", default: false, about: "one tiny round (a check, not a figure)" },
      out: { type: "string", about: "a directory to write ab.json in (else it is only printed)" },
    },
  },
  USAGE,
  "Measures the working tree against a base revision and the floor, all up and taking\nturns round by round; prints the change/base ratio. Run it alone.",
);
/** Says what is wrong with the command line, and how to write it, and stops. */
function usage(problem: string): never {
  process.stderr.write(`bench:ab: ${problem}\nusage: ${USAGE}\n`);
  process.exit(2);
}

if (!["ingest", "fanout", "events", "lifecycle", "batch"].includes(values.scenario))
  usage(`--scenario is ingest, fanout, events, lifecycle or batch, not ${values.scenario}`);
const scenario = values.scenario as AbScenario;
const smoke = values.smoke;
const runs = Number(values.runs ?? (smoke ? 1 : 6));
const seconds = Number(values.seconds ?? (smoke ? 0.5 : 10));
const posts = Number(values.posts ?? (smoke ? 5 : 100));
const subscribers = Number(values.subscribers);
/** Scenarios on paths the floor has not (the bridge, the batch route): base and change only. */
const withoutFloor = scenario === "events" || scenario === "lifecycle" || scenario === "batch";
const sessions = Number(values.sessions ?? (smoke ? 4 : scenario === "events" ? 20 : 100));
const DEFAULT_PER_SESSION: Partial<Record<AbScenario, number>> = { lifecycle: 10, batch: 100 };
const perSession = Number(
  values["per-session"] ?? (smoke ? 5 : (DEFAULT_PER_SESSION[scenario] ?? 50)),
);
for (const [name, value] of Object.entries({
  runs,
  seconds,
  posts,
  subscribers,
  sessions,
  "per-session": perSession,
}))
  if (!(value > 0)) usage(`--${name} must be a positive number`);

/** Each scenario's figure. */
const UNITS: Record<AbScenario, AbResult["unit"]> = {
  ingest: "posts/s",
  fanout: "p99 ms",
  events: "events/s",
  lifecycle: "events/s",
  batch: "updates/s",
};

const git = (...args: string[]) =>
  execFileSync("git", ["-C", ROOT, ...args], { encoding: "utf8" }).trim();
let commit = "";
try {
  commit = git("rev-parse", "--verify", "--quiet", `${values.base}^{commit}`);
} catch {
  usage(`--base ${values.base} is not a commit of this repository`);
}
const checkout = join(BUILD, `ab-${commit.slice(0, 12)}`);

/** Checks the base out beside the change, or reuses a checkout a killed run left. */
function checkOutBase(): void {
  rmSync(checkout, { recursive: true, force: true });
  git("worktree", "prune");
  git("worktree", "add", "--detach", "--force", checkout, commit);
}

async function main(): Promise<void> {
  checkOutBase();
  const targets = new Map<"floor" | "base" | "change", Target>();
  try {
    if (!withoutFloor) targets.set("floor", await startTarget("floor"));
    targets.set("base", await startUs(checkout));
    targets.set("change", await startUs());
    const measured = await inTurns(
      targets,
      runs,
      async (target): Promise<{ figure: number; p50?: number; p99?: number }> => {
        if (scenario === "ingest") return { figure: (await ingest(target, seconds)).posts_per_s };
        if (scenario === "events") {
          const burst = await eventsIngest(target, sessions, perSession);
          if (burst.seen < burst.events)
            throw new Error(`events: ${burst.seen} of ${burst.events} seen by the watchers`);
          return { figure: burst.events_per_s, p99: burst.ingest_to_subscriber_ms.p99 };
        }
        if (scenario === "batch") {
          const batch = await batchIngest(target, sessions, sessions * perSession);
          if (batch.errors > 0)
            throw new Error(`batch: ${batch.errors} requests or updates failed`);
          return { figure: batch.progress_batch_updates_per_s };
        }
        if (scenario === "lifecycle") {
          const cycled = await lifecycleIngest(target, sessions, perSession);
          if (cycled.seen < cycled.events)
            throw new Error(`lifecycle: ${cycled.seen} of ${cycled.events} seen by the watchers`);
          return { figure: cycled.events_per_s, p99: cycled.ingest_to_subscriber_ms.p99 };
        }
        const { latency_ms } = await fanout(target, subscribers, posts, 20);
        return { figure: latency_ms.p99, p50: latency_ms.p50 };
      },
      async (all) => {
        await Promise.all(all.map((target) => settle(target)));
      },
    );
    const of = (name: "floor" | "base" | "change", key: "figure" | "p50" | "p99") =>
      (measured.get(name) ?? []).map((m) => m[key] ?? Number.NaN);
    const result: AbResult = {
      schema: 1,
      base: { rev: values.base, commit },
      scenario,
      unit: UNITS[scenario],
      ...(scenario === "fanout" ? { subscribers } : {}),
      ...(withoutFloor ? { events: { sessions, per_session: perSession } } : {}),
      ...compareRuns(
        {
          ...(targets.has("floor") ? { floor: of("floor", "figure") } : {}),
          base: of("base", "figure"),
          change: of("change", "figure"),
        },
        scenario !== "fanout",
      ),
      ...(scenario === "events" || scenario === "lifecycle"
        ? { p99: { base: figures(of("base", "p99")), change: figures(of("change", "p99")) } }
        : {}),
      ...(scenario === "fanout"
        ? {
            p50: againstFloor({
              floor: of("floor", "p50"),
              base: of("base", "p50"),
              change: of("change", "p50"),
            }),
          }
        : {}),
    };
    for (const line of abLines(result)) console.log(line);
    if (values.out) {
      mkdirSync(values.out, { recursive: true });
      writeFileSync(join(values.out, "ab.json"), `${JSON.stringify(result, null, 2)}\n`);
    }
  } finally {
    for (const target of targets.values()) await target.stop();
    await runCleanups();
    rmSync(checkout, { recursive: true, force: true });
    git("worktree", "prune");
  }
}

await main();
