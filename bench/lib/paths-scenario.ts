/**
 * The write paths compared, on our service only:
 * - `steadyPaths`: the same progress updates at a steady rate over several
 *   watched sessions, sent both ways at once — directly
 *   (`POST /udp/sessions/{id}/progress`) and as Kafka-bridged events
 *   (`POST /v1/events`) — and the latency from each POST to the watcher.
 * - `batchIngest`: progress updates across 100 sessions through the batch
 *   paths (`POST /v1/progress`, `POST /v1/events`) and the ingest stream
 *   (`GET /v1/progress/stream`), as fast as they go; then the same count
 *   through the package's ingest client at a steady rate
 *   (ingest-client-scenario.ts).
 */
import WebSocket from "ws";
import { progressEvent } from "./events-scenario.ts";
import { type ClientIngestResult, clientIngest } from "./ingest-client-scenario.ts";
import { measureCpu } from "./procs.ts";
import { pool } from "./scenarios.ts";
import { type LatencySummary, round, summarize } from "./stats.ts";
import { openIngestSocket, type Target, token } from "./targets.ts";
import { median } from "./turns.ts";

export interface SteadyPathsResult {
  sessions: number;
  rate_per_s: number;
  /** Runs of `updates_per_path` each per path, one after another over the same watched sessions. */
  runs: number;
  updates_per_path: number;
  /** Every run's latencies pooled. */
  direct_to_subscriber_ms: LatencySummary;
  ingest_to_subscriber_ms: LatencySummary;
  /** Each run's p99, per path. */
  p99_runs_ms: { direct: number[]; bridged: number[] };
  /**
   * The median run's p99 bridged / the median run's p99 direct: a single
   * run's p99 of a few hundred updates is its few slowest, which a pause
   * of the process decides whichever path it falls on.
   */
  bridged_vs_direct_p99: number | null;
  /** p99 bridged / p99 direct over every run's latencies pooled. */
  pooled_bridged_vs_direct_p99: number | null;
  /** Updates no watcher saw within 10 s of the run's last POST (0 unless something is wrong). */
  lost: number;
}

/** One run's latencies (ms) from each POST to its watcher, per path. */
export interface PathsRun {
  direct: number[];
  bridged: number[];
}

/** The steady scenario's figures from its runs (`SteadyPathsResult` without the load's shape). */
export function steadyFigures(
  runs: readonly PathsRun[],
): Omit<SteadyPathsResult, "sessions" | "rate_per_s" | "runs" | "updates_per_path" | "lost"> {
  const direct = summarize(runs.flatMap((run) => run.direct));
  const bridged = summarize(runs.flatMap((run) => run.bridged));
  const p99s = {
    direct: runs.map((run) => summarize(run.direct).p99),
    bridged: runs.map((run) => summarize(run.bridged).p99),
  };
  const middle = (values: number[]) => median(values, (v) => v);
  const medianDirect = middle(p99s.direct);
  return {
    direct_to_subscriber_ms: direct,
    ingest_to_subscriber_ms: bridged,
    p99_runs_ms: p99s,
    bridged_vs_direct_p99: medianDirect > 0 ? round(middle(p99s.bridged) / medianDirect) : null,
    pooled_bridged_vs_direct_p99: direct.p99 > 0 ? round(bridged.p99 / direct.p99) : null,
  };
}

export interface BatchIngestResult {
  sessions: number;
  updates: number;
  /** Updates applied per second through POST /v1/progress (1,000 per request). */
  progress_batch_updates_per_s: number;
  /** Progress events applied per second through POST /v1/events (1,000 per request). */
  events_batch_updates_per_s: number;
  /** Updates applied per second on one ingest stream, in arrays of STREAM_CHUNK (STREAM_WINDOW in flight). */
  stream_updates_per_s: number;
  /** The package's ingest client, at `CLIENT_RATE` corrections a second for as many as the others took. */
  client: ClientIngestResult;
  errors: number;
}

/** Updates in flight on the ingest stream (its limit is 1,000 waiting), sent in arrays of STREAM_CHUNK. */
const STREAM_WINDOW = 1000;
const STREAM_CHUNK = 250;
/** Corrections a second offered through the ingest client: the product's progress rate (goal 4). */
const CLIENT_RATE = 10_000;

interface Watched {
  id: string;
  /** Send time of each update, by the elapsed seconds it places the clock at. */
  sentAt: Map<number, number>;
  seen: { direct: number[]; bridged: number[] };
  socket: WebSocket;
}

/** Opens one watched session per id; each update carries its number in the clock it sets. */
async function watched(target: Target, count: number, prefix: string): Promise<Watched[]> {
  return pool(
    Array.from({ length: count }, (_, i) => `${prefix}-${i}-${crypto.randomUUID().slice(0, 8)}`),
    16,
    async (id) => {
      const room = await target.room(id);
      const entry = {
        id,
        sentAt: new Map<number, number>(),
        seen: { direct: [] as number[], bridged: [] as number[] },
        socket: new WebSocket(room.wsUrl, { headers: room.wsHeaders, perMessageDeflate: false }),
      };
      entry.socket.on("message", (data) => {
        const now = performance.now();
        const text = String(data);
        if (text === "pong") return;
        const frame = JSON.parse(text) as {
          update?: { clock?: { anchorElapsedMs?: number } };
        };
        const ms = frame.update?.clock?.anchorElapsedMs;
        if (ms === undefined) return;
        // Odd seconds went direct, even ones as events.
        const n = Math.round(ms / 1000);
        const at = entry.sentAt.get(n);
        if (at === undefined) return;
        entry.sentAt.delete(n);
        (n % 2 === 1 ? entry.seen.direct : entry.seen.bridged).push(now - at);
      });
      await new Promise((resolve, reject) => {
        entry.socket.once("open", resolve);
        entry.socket.once("error", reject);
      });
      // As the SDKs do: a stream nothing arrives from for 30 s is dead (4008), and the runs last longer.
      const keepAlive = setInterval(() => entry.socket.send("ping"), KEEPALIVE_MS);
      entry.socket.once("close", () => clearInterval(keepAlive));
      return entry;
    },
  );
}

/** How often a watcher sends the text `ping` (docs/streams.md, "Heartbeat and idle"). */
const KEEPALIVE_MS = 10_000;

/**
 * `rate` updates/s spread over `sessions` watched sessions for `seconds`,
 * alternating per session between the direct route and a bridged event, so
 * both paths see the same load at the same time; `runs` times over the same
 * sessions, each run's p99 reported (as the fan-out's are).
 */
export async function steadyPaths(
  target: Target,
  sessions: number,
  rate: number,
  seconds: number,
  runs = 1,
): Promise<SteadyPathsResult> {
  const service = await token("crafting-service", "service");
  const headers = { Authorization: `Bearer ${service}`, "Content-Type": "application/json" };
  const rooms = await watched(target, sessions, "paths");
  const total = Math.round(rate * seconds);
  // Per session each run sends `perSession` updates, numbered on from the run before (odd direct, even bridged).
  const perSession = 2 * Math.ceil(total / sessions / 2);
  const results: PathsRun[] = [];
  let lost = 0;
  for (let run = 0; run < runs; run++) {
    for (const room of rooms) room.seen = { direct: [], bridged: [] };
    lost += await oneRun(target, rooms, headers, rate, total, run * perSession);
    results.push({
      direct: rooms.flatMap((room) => room.seen.direct),
      bridged: rooms.flatMap((room) => room.seen.bridged),
    });
  }
  for (const room of rooms) room.socket.terminate();
  return {
    sessions,
    rate_per_s: rate,
    runs,
    updates_per_path: Math.floor(total / 2),
    ...steadyFigures(results),
    lost,
  };
}

/**
 * One run of `steadyPaths`: `total` updates at `rate`, numbered per session
 * from `first` + 1; waits for what reaches the watchers and says how many
 * did not.
 */
async function oneRun(
  target: Target,
  rooms: Watched[],
  headers: Record<string, string>,
  rate: number,
  total: number,
  first: number,
): Promise<number> {
  const sessions = rooms.length;
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const room = rooms[i % sessions] as Watched;
    const n = first + Math.floor(i / sessions) + 1; // per session: 1, 2, 3 … (odd direct, even bridged)
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    room.sentAt.set(n, performance.now());
    const url =
      n % 2 === 1
        ? `${target.baseUrl}/udp/sessions/${room.id}/progress`
        : `${target.baseUrl}/v1/events`;
    const body = n % 2 === 1 ? { elapsed_ms: n * 1000 } : [progressEvent(room.id, n)];
    sends.push(
      fetch(url, {
        method: "POST",
        headers: n % 2 === 1 ? { ...headers, Prefer: "return=minimal" } : headers,
        body: JSON.stringify(body),
      }).then((r) => r.arrayBuffer()),
    );
  }
  await Promise.all(sends);
  const deadline = performance.now() + 10_000;
  while (rooms.some((room) => room.sentAt.size > 0) && performance.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  // What never arrived is counted, and left out of the next run's matching.
  let lost = 0;
  for (const room of rooms) {
    lost += room.sentAt.size;
    room.sentAt.clear();
  }
  return lost;
}

/** `updates` progress updates over `sessions` sessions through each batch path, 1,000 per request. */
export async function batchIngest(
  target: Target,
  sessions: number,
  updates: number,
  concurrency = 4,
): Promise<BatchIngestResult> {
  const service = await token("crafting-service", "service");
  const headers = { Authorization: `Bearer ${service}`, "Content-Type": "application/json" };
  const ids = await pool(
    Array.from({ length: sessions }, (_, i) => `batch-${i}-${crypto.randomUUID().slice(0, 8)}`),
    16,
    async (id) => {
      await target.room(id);
      return id;
    },
  );
  let errors = 0;
  const requests = Math.ceil(updates / 1000);
  const run = async (body: (request: number) => unknown, path: string) => {
    let applied = 0;
    const measured = await measureCpu(target.pids, async () => {
      await pool(
        Array.from({ length: requests }, (_, r) => r),
        concurrency,
        async (r) => {
          const response = await fetch(`${target.baseUrl}${path}`, {
            method: "POST",
            headers,
            body: JSON.stringify(body(r)),
          });
          await response.arrayBuffer();
          if (response.status >= 300) errors++;
          else applied += 1000;
        },
      );
    });
    return round(applied / measured.seconds, 0);
  };
  // Each request: 10 updates for each of 100 sessions (one change per session).
  const progress = await run(
    (r) => ({
      updates: Array.from({ length: 1000 }, (_, i) => ({
        session_id: ids[i % sessions],
        elapsed_ms: r * 1000 + Math.floor(i / sessions) + 1,
      })),
    }),
    "/v1/progress",
  );
  const events = await run(
    (r) =>
      Array.from({ length: 1000 }, (_, i) =>
        progressEvent(ids[i % sessions] as string, r * 1000 + Math.floor(i / sessions) + 1),
      ),
    "/v1/events",
  );
  // The same number of updates on one ingest stream, in arrays: each answered with the seq that stored it.
  const streamed = await measureCpu(target.pids, () =>
    streamUpdates(target.baseUrl, headers, ids, requests * 1000),
  );
  errors += streamed.result.failed;
  // Moving each session on from where the paths before left it.
  const seconds = (requests * 1000) / CLIENT_RATE;
  const client = await clientIngest(target, ids, CLIENT_RATE, seconds, requests * 1000 + 1);
  errors += client.failed;
  return {
    sessions,
    updates: requests * 1000,
    progress_batch_updates_per_s: progress,
    events_batch_updates_per_s: events,
    stream_updates_per_s: round(streamed.result.applied / streamed.seconds, 0),
    client,
    errors,
  };
}

/** Sends `updates` corrections round-robin over `ids` on one ingest stream, STREAM_WINDOW unanswered at most. */
async function streamUpdates(
  baseUrl: string,
  headers: Record<string, string>,
  ids: readonly string[],
  updates: number,
): Promise<{ applied: number; failed: number }> {
  let sent = 0;
  let applied = 0;
  let failed = 0;
  let answered = () => {};
  const ws = await openIngestSocket(baseUrl, headers, (answer) => {
    if (answer.error) failed++;
    else applied++;
    answered();
  });
  return new Promise((resolve) => {
    const more = () => {
      while (sent < updates && sent + STREAM_CHUNK - applied - failed <= STREAM_WINDOW) {
        const chunk = Array.from({ length: Math.min(STREAM_CHUNK, updates - sent) }, (_, i) => {
          const ref = sent + i;
          return { ref, session_id: ids[ref % ids.length], elapsed_ms: ref + 1 };
        });
        sent += chunk.length;
        ws.send(JSON.stringify(chunk));
      }
    };
    answered = () => {
      if (applied + failed < updates) more();
      else ws.close(1000);
    };
    ws.on("close", () => resolve({ applied, failed: updates - applied }));
    more();
  });
}
