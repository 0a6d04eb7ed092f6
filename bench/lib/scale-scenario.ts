/**
 * The scale scenario (many rooms, one stream each: RSS and storage per
 * session) and what it reads from the targets' state on disk.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import { fdLimit, openFds, rssBytes } from "./procs.ts";
import { pool, Subscriber, settle } from "./scenarios.ts";
import { round } from "./stats.ts";
import type { Target } from "./targets.ts";
import { median } from "./turns.ts";

/** Scale: many rooms, one stream each, opened in waves. */
export interface ScaleResult {
  /** Sessions (and streams) held at the end, over every wave: the step's count, or what the descriptors allowed. */
  streams: number;
  /**
   * The step's count, when it was more than the target's descriptor budget
   * allowed (`streams` then says what was held): one local workerd process
   * cannot hold 10,000 live sessions (SPEC §6), so a step stays under the
   * limit and the report extrapolates from the per-session figures.
   */
  requested_streams?: number;
  /**
   * Sessions of the first wave, when the step opened more than one: the
   * figures below (create, open, RSS, descriptors, storage) are the first
   * wave's, in a process that had never held an object.
   */
  first_wave_streams?: number;
  /** The workerd process's open-file limit, and descriptors per live session (its objects and its stream). */
  fd_limit?: number;
  fds_per_live_session?: number;
  /** Sessions each player owns, when more than one (a player's queue): their player's object is shared. */
  sessions_per_player?: number;
  /** Creating the sessions (us: HTTP create + start; the others: one post each, which brings the room to life). */
  create_seconds: number;
  open_seconds: number;
  /** Handshakes that failed, in every wave. */
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
  /** The waves after the first (absent when the step opened one). */
  warm?: WarmWaves;
}

/**
 * The waves after the first, each opened once the runtime had evicted the
 * objects of the waves before (their streams stay open, hibernated): what
 * one more session costs a process that has been serving a while, where
 * the memory of evicted objects is reused (session 19: the first wave of
 * 1,000 grew us by 749 KB per session, the next two by 216 and 211).
 */
export interface WarmWaves {
  waves: number;
  streams: number;
  /** RSS growth per session while a wave's objects live, its streams just opened (median over the waves). */
  rss_per_live_session_bytes: number;
  /**
   * RSS growth per session once a wave's objects were evicted and only its
   * streams remain (median over the waves): what one more watched, idle
   * session costs the process.
   */
  rss_per_watched_session_bytes: number;
  /** Descriptors per session held at the end, every object evicted: its stream's. */
  fds_per_watched_session: number;
  /**
   * The process's RSS growth over the whole step, every wave's objects
   * evicted, per session held (the first wave's included): what a process
   * holding this many watched sessions costs for each. Steadier than the
   * per-wave medians, which swing with where the allocator reuses memory.
   */
  rss_per_held_session_bytes: number;
}

/** Waves a step opens at most: each waits for the runtime to evict the objects of the one before. */
export const MAX_WAVES = 10;

/** Share of the descriptor limit a scale step may fill: the rest is for the runtime's own files and sockets. */
export const FD_HEADROOM = 0.9;

/**
 * Sessions a step may hold within `limit` descriptors when `inUse` are
 * open and each live session takes `perSession` (from an earlier step).
 */
export function streamsWithinFds(
  requested: number,
  limit: number,
  inUse: number,
  perSession: number | undefined,
): number {
  if (!perSession || perSession <= 0 || !Number.isFinite(limit)) return requested;
  const budget = Math.floor((limit * FD_HEADROOM - inUse) / perSession);
  return Math.max(0, Math.min(requested, budget));
}

/** One wave: sessions created and watched, and what the process held before, with them live, and once idle. */
interface Wave {
  count: number;
  subscribers: Subscriber[];
  createSeconds: number;
  openSeconds: number;
  failures: number;
  live: number;
  rssBefore: number;
  rssCreated: number;
  rssLive: number;
  rssIdle: number;
  fdsBefore: number;
  fdsLive: number;
}

/**
 * Opens `count` sessions with one stream each, measures the process with
 * them live, then waits `idleSeconds` (past the runtime's eviction of idle
 * objects, 10 s here) and measures it again.
 */
async function openWave(
  target: Target,
  count: number,
  idleSeconds: number,
  sessionsPerPlayer: number,
): Promise<Wave> {
  const fdsBefore = openFds(target.pids());
  const rssBefore = rssBytes(target.pids());
  const run = crypto.randomUUID().slice(0, 8);
  const ids = Array.from({ length: count }, (_, i) => `scale-${i}-${run}`);
  const createStarted = performance.now();
  const rooms = await pool(
    ids.map((id, i) => ({
      id,
      owner:
        sessionsPerPlayer > 1 ? `bench-${run}-${Math.floor(i / sessionsPerPlayer)}` : undefined,
    })),
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
  const rssLive = rssBytes(target.pids());
  const fdsLive = openFds(target.pids());
  await sleep(idleSeconds * 1000);
  return {
    count,
    subscribers,
    createSeconds,
    openSeconds,
    failures,
    live: count - failures,
    rssBefore,
    rssCreated,
    rssLive,
    rssIdle: rssBytes(target.pids()),
    fdsBefore,
    fdsLive,
  };
}

/**
 * Opens `requested` sessions with one stream each, in waves of at most
 * `waveSize` (fewer when the descriptors per live session measured — by
 * the first wave, or `fdsPerSession` from an earlier step — say they would
 * not fit under the target's limit), each opened after the objects of the
 * waves before were evicted; reads memory, descriptors and storage per
 * session. The first wave's figures are those of a process that never held
 * an object; the later waves' (`warm`), those of one that has.
 */
export async function scale(
  target: Target,
  requested: number,
  idleSeconds: number,
  {
    sessionsPerPlayer = 1,
    fdsPerSession,
    waveSize = requested,
  }: { sessionsPerPlayer?: number; fdsPerSession?: number; waveSize?: number } = {},
): Promise<ScaleResult> {
  const limit = fdLimit(target.pids());
  const fdsStart = openFds(target.pids());
  const rssStart = rssBytes(target.pids());
  const first = Math.min(requested, waveSize);
  const waves = [
    await openWave(
      target,
      streamsWithinFds(first, limit, fdsStart, fdsPerSession),
      idleSeconds,
      sessionsPerPlayer,
    ),
  ];
  const cold = waves[0] as Wave;
  const fdsPerLive = cold.live ? (cold.fdsLive - cold.fdsBefore) / cold.live : fdsPerSession;
  let held = cold.count;
  while (held < requested && waves.length < MAX_WAVES) {
    const fdsNow = openFds(target.pids());
    const count = streamsWithinFds(Math.min(requested - held, waveSize), limit, fdsNow, fdsPerLive);
    // Too few to measure a wave by: the descriptors are spent.
    if (count < Math.min(50, requested - held)) break;
    waves.push(await openWave(target, count, idleSeconds, sessionsPerPlayer));
    held += count;
  }
  const storage = directoryBytes(join(target.stateDir, "state", "do"));
  const byObject = storageByObject(join(target.stateDir, "state", "do"));
  const fdsEnd = openFds(target.pids());
  const rssEnd = rssBytes(target.pids());
  const failures = waves.reduce((sum, wave) => sum + wave.failures, 0);
  for (const wave of waves) for (const s of wave.subscribers) s.close();
  const objects = Object.values(byObject).reduce((sum, o) => sum + o.objects, 0);
  // A room without storage still is one object; a few shared objects (metrics, dead letters) round away.
  const objectsPerSession = Math.max(1, Math.round((objects / Math.max(1, held)) * 10) / 10);
  const perSession = (bytes: number, sessions: number) =>
    sessions ? Math.round(bytes / sessions) : 0;
  const rssPerLiveSession = perSession(cold.rssLive - cold.rssBefore, cold.live);
  const later = waves.slice(1);
  const liveHeld = held - failures;
  return {
    streams: held,
    ...(held < requested ? { requested_streams: requested } : {}),
    ...(waves.length > 1 ? { first_wave_streams: cold.count } : {}),
    ...(Number.isFinite(limit) ? { fd_limit: limit } : {}),
    ...(cold.live
      ? { fds_per_live_session: round((cold.fdsLive - cold.fdsBefore) / cold.live) }
      : {}),
    ...(sessionsPerPlayer > 1 ? { sessions_per_player: sessionsPerPlayer } : {}),
    create_seconds: round(cold.createSeconds),
    open_seconds: round(cold.openSeconds),
    failures,
    rss_per_live_session_bytes: rssPerLiveSession,
    rss_per_session_without_stream_bytes: perSession(cold.rssCreated - cold.rssBefore, cold.count),
    rss_per_idle_session_bytes: perSession(cold.rssIdle - cold.rssBefore, cold.live),
    storage_bytes_per_session: perSession(storage, held),
    storage_by_object: byObject,
    objects_per_session: objectsPerSession,
    rss_per_live_object_bytes: Math.round(rssPerLiveSession / objectsPerSession),
    ...(later.length > 0
      ? {
          warm: {
            waves: later.length,
            streams: later.reduce((sum, wave) => sum + wave.count, 0),
            rss_per_live_session_bytes: Math.round(
              median(
                later.map((w) => perSession(w.rssLive - w.rssBefore, w.live)),
                (x) => x,
              ),
            ),
            rss_per_watched_session_bytes: Math.round(
              median(
                later.map((w) => perSession(w.rssIdle - w.rssBefore, w.live)),
                (x) => x,
              ),
            ),
            fds_per_watched_session: liveHeld ? round((fdsEnd - fdsStart) / liveHeld) : 0,
            rss_per_held_session_bytes: perSession(rssEnd - rssStart, liveHeld),
          },
        }
      : {}),
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
