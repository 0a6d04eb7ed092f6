/** The scenarios, each run the same way against every target. */
import WebSocket from "ws";
import { cpuSeconds, measureCpu } from "./procs.ts";
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

/**
 * Opens one JSON watcher of `room` (no compression offered), calling
 * `onFrame` with each frame parsed and the time it arrived; resolves once
 * open, rejects if it cannot open.
 */
export function openWatcher(
  room: Pick<Room, "wsUrl" | "wsHeaders">,
  onFrame: (frame: unknown, now: number) => void,
): Promise<WebSocket> {
  return new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(room.wsUrl, { headers: room.wsHeaders, perMessageDeflate: false });
    socket.on("message", (data) => {
      const now = performance.now();
      onFrame(JSON.parse(String(data)), now);
    });
    socket.once("open", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** A subscriber: counts update frames and their latency from the POST that caused them. */
export class Subscriber {
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
