/**
 * npm run soak -- --minutes N [--sessions 100] [--streams 1000] [--rate 200]
 *
 * The real service on workerd (as the bench runs it) under a mixed load for
 * N minutes: streams over every session (JSON, binary, sync-channel and a few
 * RPC clients), progress updates at --rate per second plus lifecycle and
 * material changes (a share of the progress over the ingest stream, by the
 * package's ingest client), workflows moved on step by step and players' queues
 * moving (requests created, started and ended, slots changed) under streams
 * of their own, Kafka-bridged events with duplicates and shuffling, clients
 * dropping and resuming at random, and the runtime killed (SIGKILL) and
 * restarted every --restart-every seconds (at least once). Then, per client:
 * no gap and no duplicate across resumes, every change seen; per session: the
 * final state equal to what was sent, folded in order (each workflow and
 * queue as it was moved); stream slots back to
 * zero once clients leave; no 5xx; RSS growth from the second minute to the
 * end. Prints one summary line, writes bench/results/soak.json (or --out),
 * and exits 1 if any counter is not zero. 127.0.0.1 only; bounded; stops by
 * itself and on Ctrl-C.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { commandLine, numberOption } from "../scripts/command-line.mjs";
import { fdLimit, rssBytes, runCleanups } from "./lib/procs.ts";
import { SoakIngest } from "./lib/soak-ingest.ts";
import {
  createQueue,
  moveQueue,
  queueProblem,
  queueSeq,
  type SoakQueue,
} from "./lib/soak-queues.ts";
import { SoakRuntime } from "./lib/soak-runtime.ts";
import {
  createSessions,
  finishSessions,
  ORE_REQUIRED,
  postEvents,
  record,
  type SoakSession,
  sessionProblem,
} from "./lib/soak-sessions.ts";
import { leakedSlots } from "./lib/soak-slots.ts";
import { type ClientKind, tally, Watcher } from "./lib/soak-watcher.ts";
import {
  createWorkflow,
  moveWorkflow,
  resumeWorkflow,
  type SoakWorkflow,
  workflowSnapshot,
} from "./lib/soak-workflows.ts";

const USAGE =
  "npm run soak -- [--minutes N] [--sessions N] [--streams N] [--rate N] [--restart-every S] [--drop-pct P] [--out DIR]";
const { values } = commandLine(
  {
    options: {
      minutes: { type: "string", default: "10", about: "how long" },
      sessions: { type: "string", default: "100", about: "sessions driven" },
      streams: { type: "string", default: "1000", about: "client streams over them" },
      rate: { type: "string", default: "200", about: "progress updates per second" },
      "restart-every": {
        type: "string",
        default: "100",
        about: "seconds between runtime kills (SIGKILL) and restarts",
      },
      "drop-pct": {
        type: "string",
        default: "2",
        about: "streams dropped (and resumed) each second, %",
      },
      // npm runs scripts from the project root.
      out: {
        type: "string",
        default: join(process.cwd(), "bench", "results"),
        about: "where to write soak.json",
      },
    },
  },
  USAGE,
  "Runs the real service on workerd under a mixed load, kills and restarts it, and checks\nevery client saw every change once and every session ended as sent. Exits 1 if not.",
);
const MINUTES = numberOption(values, "minutes", USAGE, { min: 0.05 });
const SESSIONS = numberOption(values, "sessions", USAGE, { min: 1, whole: true });
const STREAMS = numberOption(values, "streams", USAGE, { min: 1, whole: true });
const RATE = numberOption(values, "rate", USAGE, { min: 1 });
const RESTART_EVERY_S = Math.min(120, numberOption(values, "restart-every", USAGE, { min: 1 }));
const DROP_PER_SECOND = numberOption(values, "drop-pct", USAGE) / 100;
/** Streams per session a player may hold, with room for a reconnect overlapping its close. */
const MAX_STREAMS = Math.ceil(STREAMS / SESSIONS) + 4;
/** Concurrent callers posting progress. */
const PROGRESS_CALLERS = 8;

// --- The service, restartable ------------------------------------------------

const openFiles = fdLimit([process.pid]);
const runtime = await SoakRuntime.launch({
  MAX_STREAMS_PER_PLAYER: String(MAX_STREAMS),
  // A descriptor budget as a plain workerd would keep (80 % of the limit it
  // inherits: scripts/descriptor-budget.mjs's share, without its halving for
  // wrangler dev's proxy): any refusal of it is a 503, which fails the soak.
  DESCRIPTOR_BUDGET: Number.isFinite(openFiles) ? String(Math.floor(openFiles * 0.8)) : "0",
});
const call = runtime.call;
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

// --- What is driven, each watched over streams of its own --------------------

const sessions = await createSessions(SESSIONS, call);
const eventSessions = sessions.filter((s) => s.byEvents);
const httpSessions = sessions.filter((s) => !s.byEvents);
// A tenth as many workflows and queues as sessions, each a fresh player's.
const workflows: SoakWorkflow[] = [];
const queues: SoakQueue[] = [];
for (let i = 0; i < Math.max(1, Math.round(SESSIONS / 10)); i++) {
  workflows.push(await createWorkflow(i, call));
  queues.push(await createQueue(i, call));
}

// --- Clients -----------------------------------------------------------------

const watchers: Watcher[] = [];
for (let i = 0; i < STREAMS; i++) {
  const session = sessions[i % SESSIONS] as SoakSession;
  // Of every 100: 70 JSON, 20 binary, 8 sync channel, 2 RPC.
  const slot = Math.floor(i / SESSIONS) % 100;
  const kind: ClientKind =
    i % 50 === 7 ? "rpc" : slot % 10 < 7 ? "json" : slot % 10 < 9 ? "binary" : "sync";
  watchers.push(new Watcher(kind, session, runtime));
}
// Three watchers a workflow.
for (const w of workflows) {
  for (let i = 0; i < 3; i++)
    watchers.push(new Watcher("workflow", { sessionId: w.workflowId, bearer: w.bearer }, runtime));
}
// Three a queue: two in JSON, one over the RPC.
for (const q of queues) {
  for (const kind of ["queue", "queue", "queue-rpc"] as const)
    watchers.push(new Watcher(kind, { sessionId: q.playerId, bearer: q.bearer }, runtime));
}

// --- The run -----------------------------------------------------------------

const started = Date.now();
// A tenth of the HTTP sessions also get progress over the ingest stream.
const ingest = new SoakIngest(
  runtime.baseUrl,
  httpSessions.filter((_, i) => i % 10 === 3),
  () => Date.now() - started,
);
const deadline = started + MINUTES * 60_000;
const running = watchers.map((w) => w.run());
let updates = 0;
let lifecycle = 0;
let materialChanges = 0;
let workflowChanges = 0;
let queueChanges = 0;
let eventsSent = 0;
let rssAtSecondMinute = 0;
const stopped = () => Date.now() >= deadline || interrupted;
let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
});

const loops: Promise<void>[] = [
  ingest.run(stopped),
  // Progress: RATE updates a second across the HTTP sessions (elapsed grows with time),
  // from a few callers at once, each paced (after a restart it catches up at most a second).
  ...Array.from({ length: PROGRESS_CALLERS }, async (_, caller) => {
    let n = caller;
    let next = Date.now();
    while (!stopped()) {
      next += (PROGRESS_CALLERS * 1000) / RATE;
      if (next < Date.now() - 1000) next = Date.now();
      if (next > Date.now()) await sleep(next - Date.now());
      const s = httpSessions[n % httpSessions.length] as SoakSession;
      n += PROGRESS_CALLERS;
      const response = await call(`/udp/sessions/${s.sessionId}/progress`, {
        elapsed_ms: Date.now() - started,
      });
      if (response.status === 200) updates++;
    }
  }),
  // Lifecycle: a pause and its resume every few seconds.
  (async () => {
    while (!stopped()) {
      const s = pick(httpSessions);
      const action = s.paused ? "resume" : "pause";
      const response = await call(`/v1/sessions/${s.sessionId}/${action}`);
      // 409: a retried call that had landed before the runtime died.
      if (response.status === 200 || response.status === 409) {
        s.paused = !s.paused;
        lifecycle++;
      }
      await sleep(2_000);
    }
  })(),
  // Workflows: four times a second one moves on (a step completed, a pause or a resume).
  (async () => {
    while (!stopped()) {
      if (await moveWorkflow(pick(workflows), call)) workflowChanges++;
      await sleep(250);
    }
  })(),
  // Queues: four times a second one moves on (a request created, started or
  // ended, or the player's slots changed).
  (async () => {
    while (!stopped()) {
      if (await moveQueue(pick(queues), call)) queueChanges++;
      await sleep(250);
    }
  })(),
  // Materials: a few availability changes a second (a retried change, stamped as
  // observed, is applied once).
  (async () => {
    while (!stopped()) {
      const s = pick(httpSessions);
      const quantity = Math.floor(Math.random() * (ORE_REQUIRED * 2));
      const response = await call(`/udp/sessions/${s.sessionId}/materials`, {
        changes: [{ material_id: "ore", quantity }],
        as_of_ms: Date.now(),
      });
      if (response.status === 200) {
        s.ore = quantity;
        materialChanges++;
      }
      await sleep(250);
    }
  })(),
  // The bridge: each second, a few events per event session, shuffled and partly duplicated.
  (async () => {
    while (!stopped()) {
      const fresh: Record<string, unknown>[] = [];
      for (const s of eventSessions) {
        fresh.push(record(s, "progress", { elapsed_seconds: s.version }));
        if (Math.random() < 0.05) fresh.push(record(s, "pause"), record(s, "resume"));
      }
      await postEvents(fresh, call);
      eventsSent += fresh.length;
      await sleep(1_000);
    }
  })(),
  // Clients dropping and resuming at random.
  (async () => {
    while (!stopped()) {
      for (const w of watchers) if (Math.random() < DROP_PER_SECOND) w.drop();
      await sleep(1_000);
    }
  })(),
  // The runtime killed and restarted.
  (async () => {
    const every = Math.min(RESTART_EVERY_S * 1000, (MINUTES * 60_000) / 2);
    let next = started + every;
    let upSince = started;
    // RSS is first sampled with the runtime up a while, not just restarted (docs/reliability.md).
    const warm = Math.min(30_000, every / 2);
    while (!stopped()) {
      if (Date.now() >= next) {
        await runtime.killAndRestart();
        upSince = Date.now();
        next = upSince + every;
      }
      if (
        !rssAtSecondMinute &&
        Date.now() - started >= Math.min(120_000, (MINUTES * 60_000) / 3) &&
        Date.now() - upSince >= warm
      )
        rssAtSecondMinute = rssBytes(runtime.pids());
      await sleep(250);
    }
  })(),
  // Progress to the console.
  (async () => {
    while (!stopped()) {
      await sleep(10_000);
      const s = Math.round((Date.now() - started) / 1000);
      console.log(
        `soak ${s}s: ${updates} updates, ${eventsSent} events, ${runtime.restarts} restarts, ${runtime.errors5xx} 5xx`,
      );
    }
  })(),
];
await Promise.all(loops);
await runtime.ready();
const rssAtEnd = rssBytes(runtime.pids());

// --- Quiesce and check -------------------------------------------------------

// Every ingest correction answered before the last ones are sent (a late one would undo them).
const ingested = await ingest.settle(60_000);
const FINAL_MS = Date.now() - started;
await finishSessions(sessions, FINAL_MS, call);
for (const w of workflows) await resumeWorkflow(w, call);

let finalStateMismatches = 0;
const mismatches: string[] = [];
const finalSeq = new Map<string, number>();
// Events are applied within a few seconds (at once, or through a Queue when they could not be).
const settleBy = Date.now() + 60_000;
/** Waits until `problem()` finds none; one still found at `settleBy` is a final-state mismatch. */
async function settled(problem: () => Promise<string | null>): Promise<void> {
  for (;;) {
    const found = await problem().catch((e: unknown) => `${e instanceof Error ? e.message : e}`);
    if (!found) return;
    if (Date.now() > settleBy) {
      finalStateMismatches++;
      mismatches.push(found);
      return;
    }
    await sleep(500);
  }
}
for (const s of sessions) {
  await settled(async () => {
    const { seq, problem } = await sessionProblem(s, FINAL_MS, call);
    finalSeq.set(s.sessionId, seq);
    return problem;
  });
}
// Each workflow is at the step it was moved to, active, and its seq is what its watchers must reach.
for (const w of workflows) {
  await settled(async () => {
    const { seq, workflow } = await workflowSnapshot(runtime.wsBase, w);
    finalSeq.set(w.workflowId, seq);
    const at = workflow.currentStepIndex ?? 0;
    return at === w.completed && workflow.status === "WORKFLOW_STATUS_ACTIVE"
      ? null
      : `${w.workflowId}: step ${at} ${workflow.status} ≠ step ${w.completed} active`;
  });
}

// Each queue holds what was left in it, and its seq is what its watchers must reach.
for (const q of queues) {
  await settled(async () => {
    finalSeq.set(q.playerId, await queueSeq(runtime.wsBase, q));
    return queueProblem(q, call);
  });
}

// Each watcher catches up to its session's last change (live, or by resume).
const catchUpBy = Date.now() + 30_000;
while (
  Date.now() < catchUpBy &&
  watchers.some((w) => w.seq < (finalSeq.get(w.session.sessionId) ?? 0))
)
  await sleep(250);
for (const w of watchers) w.stop();
// Bounded like every wait here: a watcher that would not stop is said, not waited on.
const stopped30s = await Promise.race([
  Promise.allSettled(running).then(() => true),
  sleep(30_000).then(() => false),
]);
if (!stopped30s) mismatches.push("some watchers were still running 30 s after they were stopped");

// Slots: with every client gone, each player can open its full quota again.
await sleep(2_000);
const slots = await leakedSlots(runtime.wsBase, sessions, MAX_STREAMS, 45_000);

const { clients, gaps, duplicates, lost, reconnects, byKind } = tally(watchers, finalSeq);
const result = {
  minutes: MINUTES,
  streams: STREAMS,
  sessions: SESSIONS,
  clients,
  updates,
  lifecycle_changes: lifecycle,
  material_changes: materialChanges,
  workflows: workflows.length,
  workflow_changes: workflowChanges,
  queues: queues.length,
  queue_changes: queueChanges,
  events: eventsSent,
  ingest_corrections: ingest.sent,
  ingest_refused: ingested.refused,
  ingest_unanswered: ingested.unanswered,
  reconnects,
  restarts: runtime.restarts,
  gaps,
  duplicates,
  lost,
  leaked_slots: slots.leaked,
  errors_5xx: runtime.errors5xx,
  final_state_mismatches: finalStateMismatches,
  rss_second_minute_bytes: rssAtSecondMinute,
  rss_end_bytes: rssAtEnd,
  rss_growth_pct: rssAtSecondMinute
    ? Math.round(((rssAtEnd - rssAtSecondMinute) / rssAtSecondMinute) * 1000) / 10
    : null,
  at: new Date().toISOString(),
  by_kind: byKind,
  notes: [mismatches, runtime.fiveXX, slots.notes, ingest.notes].flatMap((n) => n.slice(0, 10)),
};
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, "soak.json"), `${JSON.stringify(result, null, 2)}\n`);
const failed =
  result.restarts === 0 ||
  gaps + duplicates + lost + result.leaked_slots + result.errors_5xx + finalStateMismatches > 0 ||
  ingested.refused + ingested.unanswered > 0;
console.log(
  `soak ${MINUTES} min: ${STREAMS} streams over ${SESSIONS} sessions, ${updates} updates, ${materialChanges} material changes, ${workflowChanges} workflow changes, ${queueChanges} queue changes, ${eventsSent} events, ${ingest.sent} ingest corrections (refused ${ingested.refused}, unanswered ${ingested.unanswered}), ` +
    `${result.restarts} restarts — gaps ${gaps}, duplicates ${duplicates}, lost ${lost}, leaked slots ${result.leaked_slots}, ` +
    `5xx ${result.errors_5xx}, final-state mismatches ${finalStateMismatches}, RSS growth ${result.rss_growth_pct}% ` +
    `— ${failed ? "FAILED" : "passed"}`,
);
await runCleanups();
process.exit(failed ? 1 : 0);
