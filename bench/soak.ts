/**
 * npm run soak -- --minutes N [--sessions 100] [--streams 1000] [--rate 200]
 *
 * The real service on workerd (as the bench runs it) under a mixed load for
 * N minutes: streams over every session (JSON, binary, sync-channel and a few
 * RPC clients), progress updates at --rate per second plus lifecycle and
 * material changes, workflows moved on step by step under streams of their
 * own, Kafka-bridged events with duplicates and shuffling, clients
 * dropping and resuming at random, and the runtime killed (SIGKILL) and
 * restarted every --restart-every seconds (at least once). Then, per client:
 * no gap and no duplicate across resumes, every change seen; per session: the
 * final state equal to what was sent, folded in order; stream slots back to
 * zero once clients leave; no 5xx; RSS growth from the second minute to the
 * end. Prints one summary line, writes bench/results/soak.json (or --out),
 * and exits 1 if any counter is not zero. 127.0.0.1 only; bounded; stops by
 * itself and on Ctrl-C.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { commandLine, numberOption } from "../scripts/command-line.mjs";
import { foldEvents } from "../src/domain/events/session-events.ts";
import { parseEventRecord } from "../src/events/event-input.ts";
import { SessionStateSchema } from "../src/gen/crafting/v1/session_pb.ts";
import { sessionStateMessage } from "../src/protocol/session-wire.ts";
import { freePort } from "../test/support/dev-server.ts";
import { fdLimit, onExit, rssBytes, runCleanups } from "./lib/procs.ts";
import { type ClientKind, type SoakService, Watcher } from "./lib/soak-watcher.ts";
import {
  createWorkflow,
  moveWorkflow,
  type SoakWorkflow,
  workflowSnapshot,
} from "./lib/soak-workflows.ts";
import { launchUs, token } from "./lib/targets.ts";

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
/** Every fifth session is driven by bridged events only; the others by HTTP. */
const EVENT_SESSION_EVERY = 5;
/** Streams per session a player may hold, with room for a reconnect overlapping its close. */
const MAX_STREAMS = Math.ceil(STREAMS / SESSIONS) + 4;
/** Concurrent callers posting progress. */
const PROGRESS_CALLERS = 8;
const STEP_MS = 7 * 24 * 3_600_000;
/** What each HTTP session's recipe needs of its one material (available in full at first). */
const ORE_REQUIRED = 5;
const T0 = Date.parse("2026-11-30T00:00:00Z");

// --- The service, restartable ------------------------------------------------

const port = await freePort();
const stateDir = mkdtempSync(join(tmpdir(), "crafting-soak-"));
const openFiles = fdLimit([process.pid]);
const vars = {
  MAX_STREAMS_PER_PLAYER: String(MAX_STREAMS),
  // A descriptor budget as a plain workerd would keep (80 % of the limit it
  // inherits: scripts/descriptor-budget.mjs's share, without its halving for
  // wrangler dev's proxy): any refusal of it is a 503, which fails the soak.
  DESCRIPTOR_BUDGET: Number.isFinite(openFiles) ? String(Math.floor(openFiles * 0.8)) : "0",
};
let service = await launchUs({ port, stateDir, vars });
const baseUrl = `http://127.0.0.1:${port}`;
const wsBase = baseUrl.replace("http", "ws");
let restarts = 0;
let restarting: Promise<void> | null = null;
onExit(() => rmSync(stateDir, { recursive: true, force: true }));

/** SIGKILLs workerd (no chance to flush or close anything), then starts it again on the same state. */
async function killAndRestart(): Promise<void> {
  for (const pid of service.pids()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await service.stop().catch(() => {});
  service = await launchUs({ port, stateDir, vars });
  restarts++;
}

const serviceBearer = await token("crafting-service", "service");
let errors5xx = 0;
const fiveXX: string[] = [];

/** A service call, retried while the runtime is down or restarting; counts any 5xx. */
async function serviceCall(path: string, body?: unknown, method = "POST"): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    if (restarting) await restarting;
    try {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { Authorization: `Bearer ${serviceBearer}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      if (response.status >= 500) {
        errors5xx++;
        fiveXX.push(`${method} ${path} ${response.status} ${await response.text()}`);
        await sleep(200);
        continue;
      }
      return response;
    } catch (error) {
      // Connection refused or reset: the runtime was killed. The caller's request is retried.
      if (attempt > 300) throw error;
      await sleep(100);
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

// --- Sessions and what was sent to them --------------------------------------

interface SoakSession {
  sessionId: string;
  playerId: string;
  bearer: string;
  byEvents: boolean;
  /** HTTP sessions: paused now. */
  paused: boolean;
  /** HTTP sessions: how much of their one material the last change made available. */
  ore: number;
  /** Event sessions: every record produced, and the next version. */
  records: Record<string, unknown>[];
  version: number;
}

const sessions: SoakSession[] = [];
for (let i = 0; i < SESSIONS; i++) {
  const sessionId = `soak-s${i}-${crypto.randomUUID().slice(0, 8)}`;
  const playerId = `soak-p${i}-${crypto.randomUUID().slice(0, 8)}`;
  sessions.push({
    sessionId,
    playerId,
    bearer: await token(playerId, "player"),
    byEvents: i % EVENT_SESSION_EVERY === EVENT_SESSION_EVERY - 1,
    paused: false,
    ore: ORE_REQUIRED,
    records: [],
    version: 1,
  });
}

function record(s: SoakSession, type: string, payload: Record<string, unknown> = {}) {
  const version = s.version++;
  const produced = {
    event_id: crypto.randomUUID(),
    event_type: `crafting.session.${type}`,
    occurred_at: new Date(T0 + version * 1000).toISOString(),
    session_id: s.sessionId,
    player_id: s.playerId,
    version,
    payload,
  };
  s.records.push(produced);
  return produced;
}

const START = { recipe_id: "soak", steps: [{ name: "forge", duration_ms: STEP_MS }] };
for (const s of sessions) {
  if (s.byEvents) {
    record(s, "start", START);
    continue;
  }
  const created = await serviceCall("/v1/sessions", {
    session_id: s.sessionId,
    player_id: s.playerId,
    recipe_id: "soak",
    steps: [{ name: "forge", duration_ms: STEP_MS }],
    materials: [{ material_id: "ore", required: ORE_REQUIRED }],
  });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
  await serviceCall(`/v1/sessions/${s.sessionId}/start`);
}
const eventSessions = sessions.filter((s) => s.byEvents);
const httpSessions = sessions.filter((s) => !s.byEvents);
// The bridge's first batch creates the event sessions.
await postEvents(eventSessions.flatMap((s) => s.records));

/** Posts records as the Kafka sink would: in batches, shuffled, some twice. */
async function postEvents(records: Record<string, unknown>[]): Promise<void> {
  const batch = [...records, ...records.filter(() => Math.random() < 0.1)];
  for (let i = batch.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [batch[i], batch[j]] = [
      batch[j] as Record<string, unknown>,
      batch[i] as Record<string, unknown>,
    ];
  }
  for (let i = 0; i < batch.length; i += 200) {
    const response = await serviceCall("/v1/events", batch.slice(i, i + 200));
    if (response.status !== 202)
      throw new Error(`events: ${response.status} ${await response.text()}`);
  }
}

// Workflows, each a fresh player's, watched over streams of their own.
const workflows: SoakWorkflow[] = [];
for (let i = 0; i < Math.max(1, Math.round(SESSIONS / 10)); i++)
  workflows.push(await createWorkflow(i, serviceCall));

// --- Clients -----------------------------------------------------------------

/** Where the watchers connect, and how they wait out a restart. */
const endpoint: SoakService = { baseUrl, wsBase, ready: () => restarting ?? Promise.resolve() };
const watchers: Watcher[] = [];
for (let i = 0; i < STREAMS; i++) {
  const session = sessions[i % SESSIONS] as SoakSession;
  // Of every 100: 70 JSON, 20 binary, 8 sync channel, 2 RPC.
  const slot = Math.floor(i / SESSIONS) % 100;
  const kind: ClientKind =
    i % 50 === 7 ? "rpc" : slot % 10 < 7 ? "json" : slot % 10 < 9 ? "binary" : "sync";
  watchers.push(new Watcher(kind, session, endpoint));
}
// Three watchers a workflow.
for (const w of workflows) {
  for (let i = 0; i < 3; i++)
    watchers.push(new Watcher("workflow", { sessionId: w.workflowId, bearer: w.bearer }, endpoint));
}

// --- The run -----------------------------------------------------------------

const started = Date.now();
const deadline = started + MINUTES * 60_000;
const running = watchers.map((w) => w.run());
let updates = 0;
let lifecycle = 0;
let materialChanges = 0;
let workflowChanges = 0;
let eventsSent = 0;
let rssAtSecondMinute = 0;
const stopped = () => Date.now() >= deadline || interrupted;
let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
});

const loops: Promise<void>[] = [
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
      const response = await serviceCall(`/udp/sessions/${s.sessionId}/progress`, {
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
      const response = await serviceCall(`/v1/sessions/${s.sessionId}/${action}`);
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
      if (await moveWorkflow(pick(workflows), serviceCall)) workflowChanges++;
      await sleep(250);
    }
  })(),
  // Materials: a few availability changes a second (a retried change, stamped as
  // observed, is applied once).
  (async () => {
    while (!stopped()) {
      const s = pick(httpSessions);
      const quantity = Math.floor(Math.random() * (ORE_REQUIRED * 2));
      const response = await serviceCall(`/udp/sessions/${s.sessionId}/materials`, {
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
      await postEvents(fresh);
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
    while (!stopped()) {
      if (Date.now() >= next) {
        restarting = killAndRestart();
        await restarting;
        restarting = null;
        next = Date.now() + every;
      }
      if (!rssAtSecondMinute && Date.now() - started >= Math.min(120_000, (MINUTES * 60_000) / 3))
        rssAtSecondMinute = rssBytes(service.pids());
      await sleep(250);
    }
  })(),
  // Progress to the console.
  (async () => {
    while (!stopped()) {
      await sleep(10_000);
      const s = Math.round((Date.now() - started) / 1000);
      console.log(
        `soak ${s}s: ${updates} updates, ${eventsSent} events, ${restarts} restarts, ${errors5xx} 5xx`,
      );
    }
  })(),
];
await Promise.all(loops);
if (restarting) await restarting;
const rssAtEnd = rssBytes(service.pids());

// --- Quiesce and check -------------------------------------------------------

// Every HTTP session resumed, then one last correction: its final state is known.
const FINAL_MS = Date.now() - started;
for (const s of httpSessions) {
  if (s.paused) {
    await serviceCall(`/v1/sessions/${s.sessionId}/resume`);
    s.paused = false;
  }
  await serviceCall(`/udp/sessions/${s.sessionId}/progress`, { elapsed_ms: FINAL_MS });
}
for (const w of workflows) {
  if (w.paused) {
    await serviceCall(`/v1/workflows/${w.workflowId}/resume`);
    w.paused = false;
  }
}
// And the bridge sends everything once more, as a sink replaying from an old offset would.
await postEvents(eventSessions.flatMap((s) => s.records));

/** A session's state as GET /v1/sessions/{id} says. */
async function readState(sessionId: string) {
  const response = await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET");
  return (await response.json()) as {
    seq: number;
    status: string;
    clock: { anchorElapsedMs?: string | number; running?: boolean };
    materials?: { materialId: string; available?: number }[];
  };
}

/** The in-order fold of an event session's records, as the wire would show it. */
function expectedOf(s: SoakSession) {
  const events = s.records.flatMap((r) => {
    const parsed = parseEventRecord(r, Date.now());
    return parsed.ok ? [parsed.event] : [];
  });
  const { state } = foldEvents(null, events, 1);
  if (!state) return null;
  const wire = toJson(SessionStateSchema, sessionStateMessage(state, Date.now())) as {
    status: string;
    clock?: { anchorElapsedMs?: string | number };
  };
  return { status: wire.status, anchorElapsedMs: String(wire.clock?.anchorElapsedMs ?? 0) };
}

const SESSION_STATUS_ACTIVE = "SESSION_STATUS_ACTIVE";
let finalStateMismatches = 0;
const mismatches: string[] = [];
const finalSeq = new Map<string, number>();
// Events are applied within a few seconds (the lifecycle ones through the Queue).
const settleBy = Date.now() + 60_000;
/** Waits until `problem()` finds none; one still found at `settleBy` is a final-state mismatch. */
async function settled(problem: () => Promise<string | null>): Promise<void> {
  for (;;) {
    const found = await problem();
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
    const state = await readState(s.sessionId);
    finalSeq.set(s.sessionId, state.seq);
    if (s.byEvents) {
      const expected = expectedOf(s);
      const actual = {
        status: state.status,
        anchorElapsedMs: String(state.clock.anchorElapsedMs ?? 0),
      };
      return JSON.stringify(actual) === JSON.stringify(expected)
        ? null
        : `${s.sessionId}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`;
    }
    const ore = state.materials?.find((m) => m.materialId === "ore")?.available ?? 0;
    return state.status === SESSION_STATUS_ACTIVE &&
      String(state.clock.anchorElapsedMs) === String(FINAL_MS) &&
      ore === s.ore
      ? null
      : `${s.sessionId}: ${state.status} ${state.clock.anchorElapsedMs} ore ${ore} ≠ active ${FINAL_MS} ore ${s.ore}`;
  });
}
// Each workflow is at the step it was moved to, active, and its seq is what its watchers must reach.
for (const w of workflows) {
  await settled(async () => {
    const { seq, workflow } = await workflowSnapshot(wsBase, w);
    finalSeq.set(w.workflowId, seq);
    const at = workflow.currentStepIndex ?? 0;
    return at === w.completed && workflow.status === "WORKFLOW_STATUS_ACTIVE"
      ? null
      : `${w.workflowId}: step ${at} ${workflow.status} ≠ step ${w.completed} active`;
  });
}

// Each watcher catches up to its session's last change (live, or by resume).
const catchUpBy = Date.now() + 30_000;
while (
  Date.now() < catchUpBy &&
  watchers.some((w) => w.seq < (finalSeq.get(w.session.sessionId) ?? 0))
)
  await sleep(250);
let lost = 0;
for (const w of watchers) lost += Math.max(0, (finalSeq.get(w.session.sessionId) ?? 0) - w.seq);
for (const w of watchers) w.stop();
await Promise.allSettled(running);

// Slots: with every client gone, each player can open its full quota again
// (within a sweep: an RPC stream whose caller vanished is noticed at its next
// keepalive, 25 s without a message).
/** How many of a player's `MAX_STREAMS` slots a fresh batch of streams cannot get. */
async function slotsRefused(s: SoakSession): Promise<number> {
  const opened: WebSocket[] = [];
  let refused = 0;
  for (let i = 0; i < MAX_STREAMS; i++) {
    const ws = new WebSocket(`${wsBase}/ws/crafting/${s.sessionId}`, ["crafting.v1.json"], {
      headers: { Authorization: `Bearer ${s.bearer}` },
    });
    const ok = await new Promise<boolean>((resolve) => {
      ws.once("open", () => resolve(true));
      ws.once("unexpected-response", () => resolve(false));
      ws.once("error", () => resolve(false));
    });
    if (ok) opened.push(ws);
    else refused++;
  }
  await Promise.all(
    opened.map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.once("close", () => resolve());
          ws.close(1000);
          setTimeout(resolve, 1_000);
        }),
    ),
  );
  return refused;
}
await sleep(2_000);
let leakedSlots = 0;
const leaks: string[] = [];
const slotsBy = Date.now() + 45_000;
for (const s of sessions) {
  for (;;) {
    const refused = await slotsRefused(s);
    if (refused === 0) break;
    if (Date.now() > slotsBy) {
      leakedSlots += refused;
      leaks.push(`${s.sessionId}: ${refused} of ${MAX_STREAMS} slots still held`);
      break;
    }
    await sleep(2_000);
  }
}

const gaps = watchers.reduce((sum, w) => sum + w.gaps, 0);
const duplicates = watchers.reduce((sum, w) => sum + w.duplicates, 0);
const result = {
  minutes: MINUTES,
  streams: STREAMS,
  sessions: SESSIONS,
  clients: Object.fromEntries(
    (["json", "binary", "sync", "rpc", "workflow"] as const).map((k) => [
      k,
      watchers.filter((w) => w.kind === k).length,
    ]),
  ),
  updates,
  lifecycle_changes: lifecycle,
  material_changes: materialChanges,
  workflows: workflows.length,
  workflow_changes: workflowChanges,
  events: eventsSent,
  reconnects: watchers.reduce((sum, w) => sum + w.reconnects, 0),
  restarts,
  gaps,
  duplicates,
  lost,
  leaked_slots: leakedSlots,
  errors_5xx: errors5xx,
  final_state_mismatches: finalStateMismatches,
  rss_second_minute_bytes: rssAtSecondMinute,
  rss_end_bytes: rssAtEnd,
  rss_growth_pct: rssAtSecondMinute
    ? Math.round(((rssAtEnd - rssAtSecondMinute) / rssAtSecondMinute) * 1000) / 10
    : null,
  at: new Date().toISOString(),
  by_kind: Object.fromEntries(
    (["json", "binary", "sync", "rpc", "workflow"] as const).map((k) => {
      const of = watchers.filter((w) => w.kind === k);
      return [
        k,
        {
          gaps: of.reduce((sum, w) => sum + w.gaps, 0),
          duplicates: of.reduce((sum, w) => sum + w.duplicates, 0),
          undecodable: of.reduce((sum, w) => sum + w.undecodable, 0),
          lost: of.reduce(
            (sum, w) => sum + Math.max(0, (finalSeq.get(w.session.sessionId) ?? 0) - w.seq),
            0,
          ),
        },
      ];
    }),
  ),
  notes: [...mismatches.slice(0, 10), ...fiveXX.slice(0, 10), ...leaks.slice(0, 10)],
};
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, "soak.json"), `${JSON.stringify(result, null, 2)}\n`);
const failed =
  restarts === 0 || gaps + duplicates + lost + leakedSlots + errors5xx + finalStateMismatches > 0;
console.log(
  `soak ${MINUTES} min: ${STREAMS} streams over ${SESSIONS} sessions, ${updates} updates, ${materialChanges} material changes, ${workflowChanges} workflow changes, ${eventsSent} events, ` +
    `${restarts} restarts — gaps ${gaps}, duplicates ${duplicates}, lost ${lost}, leaked slots ${leakedSlots}, ` +
    `5xx ${errors5xx}, final-state mismatches ${finalStateMismatches}, RSS growth ${result.rss_growth_pct}% ` +
    `— ${failed ? "FAILED" : "passed"}`,
);
await runCleanups();
process.exit(failed ? 1 : 0);
