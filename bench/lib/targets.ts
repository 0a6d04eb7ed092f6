/**
 * The three targets, each run on workerd through Miniflare's API (not
 * `wrangler dev`'s proxy), on 127.0.0.1, with its own state directory.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { type BuildOptions, build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import WebSocket from "ws";
import { signJwt } from "../../src/auth/jwt.ts";
import { onExit, workerdPids } from "./procs.ts";

/** Which implementation a target is. */
export type TargetName = "us" | "floor" | "peer";

/** How a scenario talks to a target. */
export interface Target {
  name: TargetName;
  baseUrl: string;
  stateDir: string;
  /** The workerd processes serving it. */
  pids: () => number[];
  /**
   * Creates a room (a session for us) and returns what a subscriber and a
   * poster need. `owner`: the player whose session it is (us; by default a
   * player of its own).
   */
  room(id: string, owner?: string): Promise<Room>;
  /**
   * Whether `room` brings the room's objects to life (us: create and start
   * touch the session and its player). The others' rooms exist from their
   * first request.
   */
  roomsLiveOnCreate: boolean;
  /** A counter of the target's own /metrics (us only): what the platform bills, such as rows written. */
  counter?(name: string): Promise<number>;
  stop(): Promise<void>;
}

/** One broadcast room. */
export interface Room {
  /** WebSocket URL, and the headers/protocols to open it with. */
  wsUrl: string;
  wsHeaders: Record<string, string>;
  /** Posts one numbered update; resolves with the HTTP status. */
  post(n: number): Promise<number>;
  /** The update number a received text frame carries, or null for frames that are not updates. */
  numberOf(frame: string): number | null;
  /** Opens an ingest stream into this room (us: GET /v1/progress/stream), where the target has one. */
  openIngestStream?(): Promise<IngestStream>;
}

/** An answer of the ingest stream. */
export interface IngestAnswer {
  ref: number;
  error?: unknown;
}

/** Opens our ingest stream (GET /v1/progress/stream) and hands each answer to `onAnswer`. */
export async function openIngestSocket(
  baseUrl: string,
  headers: Record<string, string>,
  onAnswer: (answer: IngestAnswer) => void,
): Promise<WebSocket> {
  const ws = new WebSocket(`${baseUrl.replace("http", "ws")}/v1/progress/stream`, { headers });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  // Each message is an array of answers.
  ws.on("message", (data) => {
    for (const answer of JSON.parse(String(data)) as IngestAnswer[]) onAnswer(answer);
  });
  return ws;
}

/** One ingest stream: `post` sends a numbered update and resolves with its answer (200, or 500 for an error). */
export interface IngestStream {
  post(n: number): Promise<number>;
  close(): void;
}

/** The repository's root, and where the bench writes its bundles (and `bench:ab` its base checkout). */
export const ROOT = new URL("../..", import.meta.url).pathname;
export const BUILD = join(ROOT, "bench", ".build");
const SECRET = `bench-${crypto.randomUUID()}-${crypto.randomUUID()}`;
const COMPATIBILITY_DATE = "2026-11-01";

/** How a Worker is bundled for workerd, as wrangler does it (also checked by test/unit/deploy-config.test.ts). */
export const WORKER_BUNDLE = {
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2024",
  mainFields: ["module", "main"],
  conditions: ["workerd", "worker", "import"],
  external: ["cloudflare:*", "node:*"],
} satisfies BuildOptions;

async function bundle(entry: string, outfile: string, root = ROOT): Promise<string> {
  await build({
    ...WORKER_BUNDLE,
    entryPoints: [join(root, entry)],
    outfile: join(BUILD, outfile),
    logLevel: "error",
  });
  return join(BUILD, outfile);
}

/**
 * Where the targets keep their state: in memory (/dev/shm) when the machine
 * has it, so the figures are the runtime's work and not this VM's disk —
 * each Durable Object's SQLite commit is an fsync on the local disk, whose
 * latency here swung 3× between runs (577 vs 1,891 events/s in the events
 * scenario, same code, minutes apart), and production storage is not a
 * local disk. `BENCH_STATE_ROOT` chooses another place.
 */
export const STATE_ROOT =
  process.env.BENCH_STATE_ROOT ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());

async function start(
  name: TargetName,
  options: Record<string, unknown>,
  place: { port?: number; stateDir?: string } = {},
): Promise<{
  mf: Miniflare;
  baseUrl: string;
  stateDir: string;
  pids: () => number[];
  stop: () => Promise<void>;
}> {
  const stateDir = place.stateDir ?? mkdtempSync(join(STATE_ROOT, `crafting-bench-${name}-`));
  const before = new Set(workerdPids());
  // Miniflare 5 still takes the v4 option shape through its converter; wrangler speaks v4.
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: place.port ?? 0,
      modules: true,
      compatibilityDate: COMPATIBILITY_DATE,
      resourcePersistencePath: join(stateDir, "state"),
      // The service's log lines would drown the progress output; BENCH_RUNTIME_LOGS=1
      // writes them (and what the runtime prints, such as V8's --trace-gc lines
      // asked for with MINIFLARE_WORKERD_V8_FLAGS) to stderr, stamped with the
      // harness's clock in ms.
      handleStructuredLogs: process.env.BENCH_RUNTIME_LOGS
        ? ({ message }: { message: string }) =>
            process.stderr.write(`[${name} ${performance.now().toFixed(0)}] ${message}\n`)
        : () => {},
      // npm run bench:profile-workerd attaches the DevTools profiler here.
      ...(process.env.BENCH_INSPECTOR_PORT
        ? { inspectorPort: Number(process.env.BENCH_INSPECTOR_PORT) }
        : {}),
      ...options,
    } as unknown as Parameters<typeof convertV4MiniflareOptions>[0]),
  );
  const url = await mf.ready;
  const mine = workerdPids().filter((pid) => !before.has(pid));
  const stop = onExit(async () => {
    await mf.dispose();
    // A state directory handed in outlives this run (the soak restarts on it).
    if (!place.stateDir) rmSync(stateDir, { recursive: true, force: true });
  });
  return { mf, baseUrl: url.origin, stateDir, pids: () => mine, stop };
}

/**
 * Posts `elapsed_ms: n` to one of our sessions (`POST /udp/sessions/{id}/progress`)
 * as crafting-service posting at high rates would: asking only where the
 * session stands, not its whole state. Resolves with the HTTP status.
 */
export function progressPoster(
  baseUrl: string,
  authorized: Record<string, string>,
  sessionId: string,
): (n: number) => Promise<number> {
  return async (n) => {
    const response = await fetch(`${baseUrl}/udp/sessions/${sessionId}/progress`, {
      method: "POST",
      headers: { ...authorized, Prefer: "return=minimal" },
      body: JSON.stringify({ elapsed_ms: n }),
    });
    await response.arrayBuffer();
    return response.status;
  };
}

/**
 * Our service, with auth, storage, Queues and rate limiters as in
 * wrangler.toml; from `source`, a checkout of another revision, when given
 * (`npm run bench:ab`).
 */
export async function startUs(source?: string): Promise<Target> {
  const started = await launchUs({ source });
  const service = await token("crafting-service", "service");
  const authorized = { Authorization: `Bearer ${service}`, "Content-Type": "application/json" };
  return {
    name: "us",
    roomsLiveOnCreate: true,
    async counter(name) {
      const response = await fetch(`${started.baseUrl}/metrics`, { headers: authorized });
      const text = await response.text();
      let sum = 0;
      for (const line of text.split("\n"))
        if (line.startsWith(name) && !line.startsWith("#")) sum += Number(line.split(" ").at(-1));
      return sum;
    },
    baseUrl: started.baseUrl,
    stateDir: started.stateDir,
    pids: started.pids,
    stop: started.stop,
    async room(id, owner) {
      const playerId = owner ?? `bench-${id}`;
      const created = await fetch(`${started.baseUrl}/v1/sessions`, {
        method: "POST",
        headers: authorized,
        body: JSON.stringify({
          session_id: id,
          player_id: playerId,
          recipe_id: "bench",
          steps: [{ name: "forge", duration_ms: 7 * 24 * 3_600_000 }],
        }),
      });
      if (created.status !== 201)
        throw new Error(`create ${id}: ${created.status} ${await created.text()}`);
      await fetch(`${started.baseUrl}/v1/sessions/${id}/start`, {
        method: "POST",
        headers: authorized,
      });
      const player = await token(playerId, "player");
      return {
        wsUrl: `${started.baseUrl.replace("http", "ws")}/ws/crafting/${id}`,
        wsHeaders: { Authorization: `Bearer ${player}` },
        post: progressPoster(started.baseUrl, authorized, id),
        async openIngestStream() {
          const waiting = new Map<number, (status: number) => void>();
          const ws = await openIngestSocket(started.baseUrl, authorized, (answer) => {
            waiting.get(answer.ref)?.(answer.error ? 500 : 200);
            waiting.delete(answer.ref);
          });
          ws.on("close", () => {
            for (const settle of waiting.values()) settle(599);
            waiting.clear();
          });
          return {
            post: (n) =>
              new Promise<number>((resolve) => {
                waiting.set(n, resolve);
                ws.send(JSON.stringify({ ref: n, session_id: id, elapsed_ms: n }));
              }),
            close: () => ws.close(1000),
          };
        },
        numberOf(frame) {
          // The update for correction n has its clock anchored at n ms.
          const parsed = JSON.parse(frame) as { update?: { clock?: { anchorElapsedMs?: number } } };
          return parsed.update ? (parsed.update.clock?.anchorElapsedMs ?? 0) : null;
        },
      };
    },
  };
}

/**
 * Runs our service on workerd as the bench measures it: wrangler.toml's
 * bindings, the rate limiters' calls kept and their limits lifted, no static
 * assets; on `port` and `stateDir` when given (the soak restarts on them),
 * and from `source` (a checkout's root, with its own wrangler.toml) instead
 * of this one.
 */
export async function launchUs(
  place: { port?: number; stateDir?: string; vars?: Record<string, string>; source?: string } = {},
): Promise<Awaited<ReturnType<typeof start>>> {
  const root = place.source ?? ROOT;
  const scriptPath = await bundle(
    "src/index.ts",
    place.source ? `us-${basename(place.source)}.js` : "us.js",
    root,
  );
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, "wrangler.toml"));
  const wo = workerOptions as Record<string, unknown> & {
    bindings: Record<string, unknown>;
    ratelimits: Record<string, { simple: { limit: number } }>;
  };
  // The bench measures the API: the dashboard's static assets (and the local
  // asset router in front of every request) are left out, as API paths run
  // worker-first in production.
  delete wo.assets;
  // The bench measures the service, not the limiters: their calls stay in the path, their limits go up.
  for (const limiter of Object.values(wo.ratelimits ?? {})) limiter.simple.limit = 1_000_000_000;
  return start(
    "us",
    {
      ...wo,
      rootPath: ROOT,
      scriptPath,
      modulesRules: undefined,
      bindings: {
        ...wo.bindings,
        JWT_SECRET: SECRET,
        MAX_STREAMS_PER_PLAYER: "100000",
        ...place.vars,
      },
    },
    place,
  );
}

/** The floor: hibernatable WebSockets and a broadcast, nothing else. */
export async function startFloor(): Promise<Target> {
  const scriptPath = await bundle("bench/targets/floor.js", "floor.js");
  const started = await start("floor", {
    scriptPath,
    durableObjects: { ROOM: { className: "Room", useSQLite: true } },
  });
  return simpleTarget("floor", started, (id) => ({ ws: `/ws/${id}`, post: `/post/${id}` }));
}

/** The peer: PartyServer on the same runtime. */
export async function startPeer(): Promise<Target> {
  const scriptPath = await bundle("bench/targets/peer.js", "peer.js");
  const started = await start("peer", {
    scriptPath,
    durableObjects: { CraftingRoom: { className: "CraftingRoom", useSQLite: true } },
  });
  return simpleTarget("peer", started, (id) => ({
    ws: `/parties/crafting-room/${id}`,
    post: `/parties/crafting-room/${id}`,
  }));
}

function simpleTarget(
  name: TargetName,
  started: Awaited<ReturnType<typeof start>>,
  paths: (id: string) => { ws: string; post: string },
): Target {
  return {
    name,
    roomsLiveOnCreate: false,
    baseUrl: started.baseUrl,
    stateDir: started.stateDir,
    pids: started.pids,
    stop: started.stop,
    async room(id) {
      const { ws, post } = paths(id);
      return {
        wsUrl: `${started.baseUrl.replace("http", "ws")}${ws}`,
        wsHeaders: {},
        async post(n) {
          // The same size as our progress body, so neither side is favoured on the way in.
          const response = await fetch(`${started.baseUrl}${post}`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ elapsed_ms: n }),
          });
          await response.arrayBuffer();
          return response.status;
        },
        numberOf(frame) {
          const parsed = JSON.parse(frame) as { elapsed_ms?: number };
          return typeof parsed.elapsed_ms === "number" ? parsed.elapsed_ms : null;
        },
      };
    },
  };
}

/** Starts a target by name. */
export function startTarget(name: TargetName): Promise<Target> {
  return name === "us" ? startUs() : name === "floor" ? startFloor() : startPeer();
}

/** A token for `sub`, signed with the bench's own secret. */
export function token(sub: string, scope: "player" | "service"): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ sub, scope, iat: now, exp: now + 3600 }, SECRET);
}
