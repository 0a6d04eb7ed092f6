/** The scenarios, each run the same way against every target. */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import WebSocket from "ws";
import { cpuSeconds, measureCpu, rssBytes } from "./procs.ts";
import { type LatencySummary, round, summarize } from "./stats.ts";
import type { Room, Target } from "./targets.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the server is idle (under 5 % of a core over 250 ms), at most
 * `maxMs`: closing a thousand streams leaves work behind (close handlers,
 * slot releases) that must not be charged to the next scenario.
 */
export async function settle(target: Target, maxMs = 20_000): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const before = cpuSeconds(target.pids());
    await sleep(250);
    if ((cpuSeconds(target.pids()) - before) / 0.25 < 0.05) return;
  }
}

/**
 * A full garbage collection in this (the client's) process, when the bench
 * runs with `--expose-gc` (npm run bench does, with `--no-memory-reducer`
 * so V8 schedules no "reduce" collections of its own after it), just
 * before a measured run.
 * The harness's heap is ~140 MB (Miniflare and wrangler are loaded in it),
 * and its own major GC, 40-60 ms, otherwise lands in a run at random and
 * decides that run's p99 for whichever target is being measured (seen at
 * one subscriber: 14-19 ms posts at the client's Mark-Compact times, for
 * the floor and for us alike). After a full collection, a run of a few
 * seconds does not allocate enough to need another.
 */
export function collectClientGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Runs `work` over `items` with at most `limit` at a time. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index] as T, index);
      }
    }),
  );
  return results;
}

/** A subscriber: counts update frames and their latency from the POST that caused them. */
class Subscriber {
  readonly socket: WebSocket;
  deliveries = 0;
  bytes = 0;
  frames = 0;

  constructor(room: Room, sentAt: Map<number, number>, latencies: number[]) {
    this.socket = new WebSocket(room.wsUrl, { headers: room.wsHeaders, perMessageDeflate: false });
    this.socket.on("message", (data) => {
      const received = performance.now();
      const text = String(data);
      const n = room.numberOf(text);
      if (n === null) return;
      this.deliveries++;
      this.frames++;
      this.bytes += Buffer.byteLength(text);
      const sent = sentAt.get(n);
      if (sent !== undefined) latencies.push(received - sent);
    });
  }

  opened(timeoutMs = 30_000): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.socket.once("open", () => {
        clearTimeout(timer);
        resolve(true);
      });
      this.socket.once("error", () => {
        clearTimeout(timer);
        resolve(false);
      });
      this.socket.once("unexpected-response", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  close(): void {
    this.socket.terminate();
  }
}

async function subscribe(
  room: Room,
  count: number,
  sentAt: Map<number, number>,
  latencies: number[],
) {
  // At most 100 handshakes at a time: a burst of thousands overflows the accept backlog.
  const subscribers: Subscriber[] = [];
  const opened = await pool(Array.from({ length: count }), 100, () => {
    const subscriber = new Subscriber(room, sentAt, latencies);
    subscribers.push(subscriber);
    return subscriber.opened();
  });
  await sleep(200);
  return { subscribers, failures: opened.filter((ok) => !ok).length };
}

/** Fan-out at a fixed post rate: delivery latency from POST to each subscriber. */
export interface FanoutResult {
  subscribers: number;
  posts: number;
  rate_per_s: number;
  expected_deliveries: number;
  deliveries: number;
  failures: number;
  latency_ms: LatencySummary;
  bytes_per_update: number;
  client_cpu: number;
  server_cpu: number;
  /** Every delivery's latency (ms), so runs can be pooled; not kept in the results file. */
  samples: number[];
}

export async function fanout(
  target: Target,
  subscriberCount: number,
  posts: number,
  ratePerS: number,
): Promise<FanoutResult> {
  const room = await target.room(`fanout-${subscriberCount}-${crypto.randomUUID().slice(0, 8)}`);
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const { subscribers, failures } = await subscribe(room, subscriberCount, sentAt, latencies);
  const expected = posts * (subscriberCount - failures);
  collectClientGarbage();
  // Warm-up: a few unmeasured posts (numbered above the measured ones) so no first-call cost is counted.
  for (let n = posts + 1; n <= posts + 5; n++) await room.post(n);
  await sleep(300);
  const measured = await measureCpu(target.pids, async () => {
    const interval = 1000 / ratePerS;
    const started = performance.now();
    for (let n = 1; n <= posts; n++) {
      const due = started + (n - 1) * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      sentAt.set(n, performance.now());
      await room.post(n);
    }
    const deadline = performance.now() + 10_000;
    while (latencies.length < expected && performance.now() < deadline) await sleep(20);
  });
  // Measured deliveries only (the warm-up's are not expected).
  const deliveries = latencies.length;
  const frames = subscribers.reduce((sum, s) => sum + s.frames, 0);
  const bytes = subscribers.reduce((sum, s) => sum + s.bytes, 0);
  for (const s of subscribers) s.close();
  return {
    subscribers: subscriberCount,
    posts,
    rate_per_s: ratePerS,
    expected_deliveries: expected,
    deliveries,
    failures,
    latency_ms: summarize(latencies),
    bytes_per_update: frames ? round(bytes / frames, 1) : 0,
    client_cpu: round(measured.clientCpu),
    server_cpu: round(measured.serverCpu),
    samples: latencies,
  };
}

/** Saturation: posts as fast as they are answered; deliveries per second to all subscribers. */
export interface SaturationResult {
  subscribers: number;
  seconds: number;
  posts_per_s: number;
  deliveries_per_s: number;
  client_cpu: number;
  server_cpu: number;
}

export async function saturation(
  target: Target,
  subscriberCount: number,
  seconds: number,
  concurrency = 4,
): Promise<SaturationResult> {
  const room = await target.room(`saturate-${subscriberCount}-${crypto.randomUUID().slice(0, 8)}`);
  const { subscribers } = await subscribe(room, subscriberCount, new Map(), []);
  let posted = 0;
  collectClientGarbage();
  const measured = await measureCpu(target.pids, async () => {
    const before = subscribers.reduce((sum, s) => sum + s.deliveries, 0);
    const deadline = performance.now() + seconds * 1000;
    let n = 1;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          const status = await room.post(n++);
          if (status < 300) posted++;
        }
      }),
    );
    return subscribers.reduce((sum, s) => sum + s.deliveries, 0) - before;
  });
  for (const s of subscribers) s.close();
  return {
    subscribers: subscriberCount,
    seconds: round(measured.seconds),
    posts_per_s: round(posted / measured.seconds, 1),
    deliveries_per_s: round(measured.result / measured.seconds, 1),
    client_cpu: round(measured.clientCpu),
    server_cpu: round(measured.serverCpu),
  };
}

/** Scale: many rooms, one stream each. */
export interface ScaleResult {
  streams: number;
  /** Sessions each player owns, when more than one (a player's queue): their player's object is shared. */
  sessions_per_player?: number;
  /** Creating the sessions (us: HTTP create + start; the others: one post each, which brings the room to life). */
  create_seconds: number;
  open_seconds: number;
  failures: number;
  rss_per_live_session_bytes: number;
  /**
   * RSS per session once its objects live and before any stream opens (the
   * floor's and the peer's rooms after one post each): on the floor, what
   * this runtime keeps for an object that has served one request.
   */
  rss_per_session_without_stream_bytes?: number;
  rss_per_idle_session_bytes: number;
  storage_bytes_per_session: number;
  /** Durable Object storage on disk by class: how many objects, and bytes per object. */
  storage_by_object?: Record<string, { objects: number; bytes_per_object: number }>;
  /**
   * Durable Objects each session keeps (us: the session and its player's;
   * the others: one room), counted from the databases on disk — and the RSS
   * per live object, the fair comparison of one object with another.
   */
  objects_per_session?: number;
  rss_per_live_object_bytes?: number;
}

export async function scale(
  target: Target,
  count: number,
  idleSeconds: number,
  sessionsPerPlayer = 1,
): Promise<ScaleResult> {
  const rssBefore = rssBytes(target.pids());
  const run = crypto.randomUUID().slice(0, 8);
  const ids = Array.from({ length: count }, (_, i) => `scale-${i}-${run}`);
  const owner = (i: number) =>
    sessionsPerPlayer > 1 ? `bench-${run}-${Math.floor(i / sessionsPerPlayer)}` : undefined;
  const createStarted = performance.now();
  const rooms = await pool(
    ids.map((id, i) => ({ id, owner: owner(i) })),
    32,
    ({ id, owner }) => target.room(id, owner),
  );
  // Every target's objects live before streams open, so that RSS splits into objects and streams.
  if (!target.roomsLiveOnCreate) await pool(rooms, 32, (room) => room.post(0));
  const createSeconds = (performance.now() - createStarted) / 1000;
  await settle(target);
  const rssCreated = rssBytes(target.pids());
  const started = performance.now();
  const subscribers: Subscriber[] = [];
  const opened = await pool(rooms, 100, (room) => {
    const subscriber = new Subscriber(room, new Map(), []);
    subscribers.push(subscriber);
    return subscriber.opened(60_000);
  });
  const openSeconds = (performance.now() - started) / 1000;
  const failures = opened.filter((ok) => !ok).length;
  const live = count - failures;
  const rssLive = rssBytes(target.pids());
  await sleep(idleSeconds * 1000);
  const rssIdle = rssBytes(target.pids());
  const storage = directoryBytes(join(target.stateDir, "state", "do"));
  const byObject = storageByObject(join(target.stateDir, "state", "do"));
  for (const s of subscribers) s.close();
  const objects = Object.values(byObject).reduce((sum, o) => sum + o.objects, 0);
  // A room without storage still is one object; a few shared objects (metrics, dead letters) round away.
  const objectsPerSession = Math.max(1, Math.round((objects / count) * 10) / 10);
  const rssPerLiveSession = live ? Math.round((rssLive - rssBefore) / live) : 0;
  return {
    streams: count,
    ...(sessionsPerPlayer > 1 ? { sessions_per_player: sessionsPerPlayer } : {}),
    create_seconds: round(createSeconds),
    open_seconds: round(openSeconds),
    failures,
    rss_per_live_session_bytes: rssPerLiveSession,
    rss_per_session_without_stream_bytes: Math.round((rssCreated - rssBefore) / count),
    rss_per_idle_session_bytes: live ? Math.round((rssIdle - rssBefore) / live) : 0,
    storage_bytes_per_session: Math.round(storage / count),
    storage_by_object: byObject,
    objects_per_session: objectsPerSession,
    rss_per_live_object_bytes: Math.round(rssPerLiveSession / objectsPerSession),
  };
}

/**
 * Storage per Durable Object class (Miniflare keeps each namespace in a
 * folder of its own, one SQLite database per object): which objects a
 * session costs, so a comparison with one-object targets is fair.
 */
function storageByObject(
  dir: string,
): Record<string, { objects: number; bytes_per_object: number }> {
  const result: Record<string, { objects: number; bytes_per_object: number }> = {};
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return result;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    if (!statSync(path).isDirectory()) continue;
    const objects = readdirSync(path).filter((f) => f.endsWith(".sqlite")).length;
    if (objects === 0) continue;
    const name = entry.replace(/^[^-]*-/, "");
    result[name] = { objects, bytes_per_object: Math.round(directoryBytes(path) / objects) };
  }
  return result;
}

/** A session's database by SQLite's own count (what `databaseSize` reports): pages and bytes. */
export interface DatabaseFootprint {
  pages: number;
  bytes: number;
}

/**
 * The largest session database under a target's state (`className`'s
 * namespace folder), read with SQLite (page_count × page_size): after the
 * ingest runs, a session that took thousands of updates — what a busy
 * session keeps on disk, which the scale scenario's fresh sessions never show.
 */
export function largestDatabase(stateDir: string, className: string): DatabaseFootprint | null {
  const root = join(stateDir, "state", "do");
  let largest: DatabaseFootprint | null = null;
  let folders: string[];
  try {
    folders = readdirSync(root).filter((entry) => entry.endsWith(`-${className}`));
  } catch {
    return null;
  }
  for (const folder of folders) {
    for (const file of readdirSync(join(root, folder)).filter((f) => f.endsWith(".sqlite"))) {
      const db = new DatabaseSync(join(root, folder, file), { readOnly: true });
      try {
        const pages = Number(
          (db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count,
        );
        const size = Number(
          (db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size,
        );
        if (!largest || pages * size > largest.bytes) largest = { pages, bytes: pages * size };
      } finally {
        db.close();
      }
    }
  }
  return largest;
}

/** Bytes of Durable Object storage on disk under `dir`. */
export function directoryBytes(dir: string): number {
  let total = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(dir, entry);
    const stat = statSync(path);
    if (stat.isDirectory()) total += directoryBytes(path);
    // Each object's database and its write-ahead log; not the shared-memory index, not the namespace metadata.
    else if (!entry.startsWith("metadata.") && !entry.endsWith("-shm")) total += stat.size;
  }
  return total;
}

/**
 * Ingest into one session: posts per second it sustains with `concurrency`
 * callers, each posting over HTTP, or (`via: "stream"`, us) sharing one
 * ingest stream with `concurrency` updates in flight on it.
 */
export async function ingest(
  target: Target,
  seconds: number,
  concurrency = 8,
  via: "http" | "stream" = "http",
): Promise<{
  posts_per_s: number;
  errors: number;
  client_cpu: number;
  server_cpu: number;
  rows_written_per_update?: number;
}> {
  const room = await target.room(`ingest-${crypto.randomUUID().slice(0, 8)}`);
  // Counters reach /metrics within a second of being counted (src/metrics/push.ts).
  const settledCounter = async (name: string) => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return (await target.counter?.(name)) ?? 0;
  };
  const rowsBefore = target.counter ? await settledCounter(ROWS_WRITTEN) : 0;
  // On a stream, the callers share one socket: `concurrency` updates in flight on it.
  const stream = via === "stream" ? await room.openIngestStream?.() : undefined;
  if (via === "stream" && !stream) throw new Error(`${target.name} has no ingest stream`);
  const post = stream ? stream.post : room.post;
  let ok = 0;
  let errors = 0;
  let n = 1;
  collectClientGarbage();
  const measured = await measureCpu(target.pids, async () => {
    const deadline = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          if ((await post(n++)) < 300) ok++;
          else errors++;
        }
      }),
    );
  });
  stream?.close();
  const result = {
    posts_per_s: round(ok / measured.seconds, 1),
    errors,
    client_cpu: round(measured.clientCpu),
    server_cpu: round(measured.serverCpu),
  };
  if (!target.counter || ok === 0) return result;
  const rows = (await settledCounter(ROWS_WRITTEN)) - rowsBefore;
  return { ...result, rows_written_per_update: round(rows / ok, 2) };
}

/** SQLite rows written by the session objects (what the platform bills). */
const ROWS_WRITTEN = 'crafting_storage_rows_written_total{object="session"}';
