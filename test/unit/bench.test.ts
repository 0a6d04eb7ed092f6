/** The benchmark harness's own pieces: percentile math, the result schema, process cleanup. */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { steadyFigures } from "../../bench/lib/paths-scenario.ts";
import {
  cpuSeconds,
  descendants,
  fdLimit,
  onExit,
  openFds,
  rssBytes,
  runCleanups,
} from "../../bench/lib/procs.ts";
import {
  type BenchResult,
  computeRatios,
  markdown,
  validateResult,
} from "../../bench/lib/report.ts";
import { p99Svg } from "../../bench/lib/report-svg.ts";
import { largestDatabase, streamsWithinFds } from "../../bench/lib/scale-scenario.ts";
import { percentile, ratio, summarize } from "../../bench/lib/stats.ts";
import { inTurns, median } from "../../bench/lib/turns.ts";

describe("percentiles", () => {
  it("use the nearest rank", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 99)).toBeNaN();
    expect(() => percentile([1], 0)).toThrow(RangeError);
  });

  it("summarize sorts first and reports p50, p99, max and mean", () => {
    const values = [5, 1, 4, 2, 3, ...Array(95).fill(1)];
    expect(summarize(values)).toEqual({ count: 100, p50: 1, p99: 4, max: 5, mean: 1.1 });
  });

  it("ratios are null when a side is missing or zero", () => {
    expect(ratio(2, 4)).toBe(0.5);
    expect(ratio(1, 0)).toBeNull();
    expect(ratio(undefined, 3)).toBeNull();
    expect(ratio(Number.NaN, 3)).toBeNull();
  });
});

function sampleResult(): BenchResult {
  const latency = (p99: number) => ({
    latency_ms: { p50: p99 / 2, p99, max: p99 * 2 },
    p99_runs_ms: [p99 + 1, p99, p99 - 0.5],
    pooled_ms: { count: 30, p50: p99 / 2, p99: p99 + 1 },
    deliveries: 10,
    expected_deliveries: 10,
    failures: 0,
    bytes_per_update: 500,
    client_cpu: 0.1,
    server_cpu: 0.2,
  });
  const throughput = (deliveries: number) => ({
    posts_per_s: 100,
    deliveries_per_s: deliveries,
    client_cpu: 0.5,
    server_cpu: 0.9,
  });
  const partial: Omit<BenchResult, "ratios"> = {
    schema: 1,
    mode: "smoke",
    started_at: "2026-11-22T00:00:00.000Z",
    seconds: 1,
    machine: { cpus: 2, node: "v22", platform: "linux", state: "/dev/shm" },
    fanout: [
      { subscribers: 1, by_target: { us: latency(6), floor: latency(4), peer: latency(8) } },
    ],
    saturation: [
      {
        subscribers: 1,
        by_target: { us: throughput(300), floor: throughput(600), peer: throughput(200) },
      },
    ],
    ingest: {
      by_target: {
        us: {
          posts_per_s: 80,
          errors: 0,
          client_cpu: 0,
          server_cpu: 0,
          posts_per_s_runs: [90, 80, 70],
        },
        floor: { posts_per_s: 100, errors: 0, client_cpu: 0, server_cpu: 0 },
      },
      stream: {
        posts_per_s: 150,
        errors: 0,
        client_cpu: 0,
        server_cpu: 0,
        posts_per_s_runs: [150, 140, 160],
      },
      batch: {
        sessions: 100,
        stream_updates_per_s: 11_000,
        client: {
          offered_per_s: 10_000,
          answered_per_s: 9_700,
          changes: 2_800,
          answer_ms: { p50: 110, p99: 170 },
          failed: 0,
        },
        errors: 0,
      },
    },
    events: null,
    scale: [
      {
        streams: 10,
        by_target: {
          us: {
            streams: 10,
            create_seconds: 1,
            open_seconds: 1,
            failures: 0,
            rss_per_live_session_bytes: 800_000,
            rss_per_idle_session_bytes: 1,
            storage_bytes_per_session: 24_000,
            storage_by_object: {
              CraftingSession: { objects: 10, bytes_per_object: 12_000 },
              Player: { objects: 10, bytes_per_object: 12_000 },
            },
            objects_per_session: 2,
            rss_per_live_object_bytes: 400_000,
          },
          floor: {
            streams: 10,
            create_seconds: 0,
            open_seconds: 1,
            failures: 0,
            rss_per_live_session_bytes: 320_000,
            rss_per_session_without_stream_bytes: 240_000,
            rss_per_idle_session_bytes: 1,
            storage_bytes_per_session: 0,
            objects_per_session: 1,
            rss_per_live_object_bytes: 320_000,
          },
        },
      },
    ],
    wire: {
      updates: 30,
      updates_per_s: 10,
      json_bytes_per_update: 500,
      binary_bytes_per_update: 200,
      sync_bytes_per_update: 25,
      sync_max_delta_bytes: 22,
      bytes_per_s_per_session: { json: 5000, binary: 2000, sync: 250 },
      compression: {
        negotiated: "permessage-deflate; client_max_window_bits=15",
        json_wire_bytes_per_update: 25,
        binary_wire_bytes_per_update: 18,
        json_wire_bytes_per_update_uncompressed: 502,
        binary_wire_bytes_per_update_uncompressed: 202,
      },
      sync_server: {
        rounds: 20000,
        delta_us: 6.5,
        full_us: 21.25,
        delta_bytes: 17,
        full_bytes: 120,
      },
    },
    idle: {
      sessions: 2,
      seconds: 60,
      wakes: 1,
      rows_written: 1,
      wakes_per_session_hour: 30,
      rows_written_per_session_hour: 30,
    },
    cadence: {
      sessions: 10,
      seconds: 10,
      reports: 100,
      rows_per_report: { session: 1, player: 0.02, workflow: 0, total: 1.02 },
      workflow_steps: {
        sessions: 10,
        reports: 100,
        rows_per_report: { session: 1, player: 0, workflow: 2, total: 3 },
      },
    },
  };
  return { ...partial, ratios: computeRatios(partial) };
}

describe("the result", () => {
  it("carries ratios against the floor and the peer", () => {
    const result = sampleResult();
    expect(result.ratios.fanout_p99).toEqual([
      { subscribers: 1, ratio_vs_floor: 1.5, ratio_vs_peer: 0.75, pooled_ratio_vs_floor: 1.4 },
    ]);
    expect(markdown(result)).toContain("| 1 | 1.5 | 0.75 | 1.4 |");
    expect(result.ratios.saturation_deliveries[0]).toMatchObject({
      ratio_vs_floor: 0.5,
      ratio_vs_peer: 1.5,
    });
    expect(result.ratios.ingest_posts).toEqual({
      ratio_vs_floor: 0.8,
      ratio_vs_peer: null,
      stream_ratio_vs_floor: 1.5,
    });
    expect(markdown(result)).toContain("us on the ingest stream/floor 1.5");
    // The floor's 320 KB live session plus a second object at its 240 KB before a stream: 560 / 320.
    expect(result.ratios.rss_live).toEqual([
      {
        streams: 10,
        per_session_vs_floor: 2.5,
        per_object_vs_floor: 1.25,
        least_per_session_vs_floor: 1.75,
      },
    ]);
    expect(markdown(result)).toContain(
      "2.5 per live session, 1.25 per live Durable Object. The least it could be with our objects per session: 1.75",
    );
  });

  it("compares a session whose player is shared with the floor's at the same count", () => {
    const { ratios: _, ...partial } = sampleResult();
    // Ten sessions, five per player: 12 objects, 480 KB per live session against the floor's 320.
    partial.scale_shared_players = {
      streams: 10,
      sessions_per_player: 5,
      create_seconds: 1,
      open_seconds: 1,
      failures: 0,
      rss_per_live_session_bytes: 480_000,
      rss_per_idle_session_bytes: 1,
      storage_bytes_per_session: 9_800,
      objects_per_session: 1.2,
      rss_per_live_object_bytes: 400_000,
    };
    const result = { ...partial, ratios: computeRatios(partial) };
    expect(result.ratios.rss_shared_players).toEqual({
      streams: 10,
      sessions_per_player: 5,
      per_session_vs_floor: 1.5,
    });
    expect(markdown(result)).toContain(
      "Players with 5 sessions each (a player's queue; us only, 10 sessions, one stream each): 1.2 objects per session, 480,000 B RSS per live session, us/floor 1.5.",
    );
    // Without the step (smoke runs of older results), there is nothing to compare.
    expect(computeRatios({ ...partial, scale_shared_players: null }).rss_shared_players).toBeNull();
  });

  it("compares the waves after the first, opened once the objects before were evicted", () => {
    const partial = sampleResult();
    const step = partial.scale[0];
    const { us, floor } = step?.by_target ?? {};
    if (!step || !us || !floor) throw new Error("sample has no scale step");
    step.streams = 20;
    const warm = (live: number, watched: number, held: number) => ({
      waves: 1,
      streams: 10,
      rss_per_live_session_bytes: live,
      rss_per_watched_session_bytes: watched,
      fds_per_watched_session: 2.06,
      rss_per_held_session_bytes: held,
    });
    Object.assign(us, {
      streams: 20,
      first_wave_streams: 10,
      warm: warm(216_000, 150_000, 460_000),
    });
    Object.assign(floor, {
      streams: 20,
      first_wave_streams: 10,
      warm: warm(172_800, 140_000, 230_000),
    });
    const ratios = computeRatios(partial);
    expect(ratios.rss_live?.[0]).toMatchObject({
      per_session_vs_floor: 2.5,
      warm_live_per_session_vs_floor: 1.25,
      warm_watched_per_session_vs_floor: 1.071,
      held_per_session_vs_floor: 2,
    });
    const text = markdown({ ...partial, ratios });
    expect(text).toContain(
      "RSS us/floor at 20 streams, in the waves after the first: 1.25 per live session, 1.07 per watched session once its objects were evicted; over the whole step, every object evicted: 2 per session held.",
    );
    expect(text).toContain(
      "us (10 sessions in 1 later waves, after a first of 10): 216,000 B RSS per live session, 150,000 B once its objects were evicted (2.06 descriptors per watched session at the end); 460,000 B per session held at the end",
    );
    // The shared-players step (one wave) is compared with the floor's first wave of its count.
    partial.scale_shared_players = { ...us, streams: 10, sessions_per_player: 5, warm: undefined };
    expect(computeRatios(partial).rss_shared_players?.per_session_vs_floor).toBe(2.5);
    // Without later waves, nothing is said of them.
    delete us.warm;
    expect(computeRatios(partial).rss_live?.[0]).not.toHaveProperty(
      "warm_live_per_session_vs_floor",
    );
  });

  it("does not compare memory when a scale run lost handshakes", () => {
    const partial = sampleResult();
    const floor = partial.scale[0]?.by_target.floor;
    if (floor) floor.failures = 5_000;
    const ratios = computeRatios(partial);
    expect(ratios.rss_live).toEqual([
      {
        streams: 10,
        per_session_vs_floor: null,
        per_object_vs_floor: null,
        least_per_session_vs_floor: null,
      },
    ]);
    expect(markdown({ ...partial, ratios })).toContain(
      "RSS us/floor at 10 streams: not compared (handshakes failed",
    );
  });

  it("says what a step held under the descriptor limit, and its count extrapolated", () => {
    const partial = sampleResult();
    const step = partial.scale[0];
    const us = step?.by_target.us;
    if (!step || !us) throw new Error("sample has no scale step");
    step.streams = 10_000;
    Object.assign(us, {
      streams: 2_940,
      requested_streams: 10_000,
      fd_limit: 20_000,
      fds_per_live_session: 6.1,
    });
    const text = markdown({ ...partial, ratios: computeRatios(partial) });
    // 800,000 B × 10,000 = 7.45 GiB; 24,000 B × 10,000 = 228.88 MiB.
    expect(text).toContain(
      "At 10000 streams the step held what fits in 90 % of one workerd process's descriptor limit, in at most 10 waves: us held 2,940 (6.1 descriptors per live session of 20,000), so 10000 live sessions would take 7.45 GiB of RSS all live at once, and 228.88 MiB on disk.",
    );
    // The floor held the whole count: it is not named.
    expect(text).not.toContain("floor held");
    // With later waves, what the count would take watched, at the RSS per session held: 180,000 B × 10,000 = 1.68 GiB.
    us.warm = {
      waves: 9,
      streams: 1_940,
      rss_per_live_session_bytes: 200_000,
      rss_per_watched_session_bytes: 150_000,
      fds_per_watched_session: 2,
      rss_per_held_session_bytes: 180_000,
    };
    expect(markdown({ ...partial, ratios: computeRatios(partial) })).toContain(
      "7.45 GiB of RSS all live at once, 1.68 GiB watched with their objects evicted (at the RSS per session held at the end), and 228.88 MiB on disk.",
    );
  });

  it("passes the schema check when complete, and names what is missing otherwise", () => {
    expect(validateResult(sampleResult())).toEqual([]);
    const broken = sampleResult() as unknown as Record<string, unknown>;
    delete (broken.fanout as BenchResult["fanout"])[0]?.by_target.peer;
    broken.mode = "fast";
    expect(validateResult(broken)).toEqual([
      "mode must be smoke, quick or full",
      "fanout[1] lacks peer",
    ]);
    expect(validateResult(null)).toEqual(["not an object"]);
    const failing = sampleResult();
    if (failing.ingest.stream) failing.ingest.stream.errors = 3;
    expect(validateResult(failing)).toEqual([
      "ingest stream figures missing (or its updates failed)",
    ]);
  });

  it("reports the wire with compression offered: what the runtime agreed to, and the bytes both ways", () => {
    const result = sampleResult();
    const text = markdown(result);
    expect(text).toContain(
      "the runtime negotiated `permessage-deflate; client_max_window_bits=15`",
    );
    expect(text).toContain("| JSON frames | 502 | 25 |");
    expect(text).toContain("| binary frames | 202 | 18 |");
    const refused = sampleResult();
    if (refused.wire) refused.wire.compression.negotiated = "";
    expect(markdown(refused)).toContain("the runtime refused it");
    const missing = sampleResult() as unknown as { wire: Record<string, unknown> };
    delete missing.wire.compression;
    expect(validateResult(missing)).toEqual(["wire sizes with compression offered missing"]);
    expect(text).toContain(
      "a delta 6.5 µs (17 bytes), a full sync 21.3 µs (120 bytes); target < 1 ms (seed 001).",
    );
    const unsynced = sampleResult() as unknown as { wire: Record<string, unknown> };
    delete unsynced.wire.sync_server;
    expect(validateResult(unsynced)).toEqual(["the server's work per sync packet missing"]);
    expect(validateResult({ ...sampleResult(), cadence: null })).toEqual([
      "rows per report at crafting-service's cadence missing",
    ]);
    const refusedByClient = sampleResult();
    refusedByClient.ingest.batch = { ...refusedByClient.ingest.batch, errors: 2 };
    expect(validateResult(refusedByClient)).toEqual([
      "batch path figures missing (or their updates failed)",
    ]);
    const withoutClient = sampleResult();
    delete withoutClient.ingest.batch?.client;
    expect(validateResult(withoutClient)).toEqual([
      "batch path figures missing (or their updates failed)",
    ]);
    const lifecycle = { paced: { events: 40, seen: 40 }, fastest: { events: 40, seen: 40 } };
    expect(
      validateResult({ ...sampleResult(), events: { steady: { lost: 3 }, lifecycle } }),
    ).toEqual(["write paths: 3 updates never reached their watchers"]);
    const unseen = { ...lifecycle, fastest: { events: 40, seen: 38 } };
    expect(
      validateResult({ ...sampleResult(), events: { steady: {}, lifecycle: unseen } }),
    ).toEqual(["lifecycle events: 2 of 40 never seen"]);
    expect(validateResult({ ...sampleResult(), events: { steady: {} } })).toEqual([
      "lifecycle events through POST /v1/events missing",
    ]);
  });

  it("says how many rows a report at crafting-service's cadence writes, by object", () => {
    expect(markdown(sampleResult())).toContain(
      "10 running sessions, each reported once a second for 10 s with the time since its start (100 reports): **rows written per report: 1.02** (the session's 1, the player's 0.02).",
    );
    expect(markdown(sampleResult())).toContain(
      "The same on 10 sessions that are a workflow's first step (100 reports): **3** (the session's 1, the player's 0, the workflow's 2).",
    );
  });

  it("renders a table row per target and a line per target in the plot", () => {
    const result = sampleResult();
    expect(markdown(result)).toContain(
      "| 1 | us | 3 | 6 | 7 / 6 / 5.5 | 3 / 7 (30) | 12 | 10/10 |",
    );
    expect(markdown(result)).toContain(
      "| 1 | floor | 2 | 4 | 5 / 4 / 3.5 | 2 / 5 (30) | 8 | 10/10 |",
    );
    expect(markdown(result)).toContain("| us | 80 | 90 / 80 / 70 | 0 |");
    expect(markdown(result)).toContain("| floor | 100 | – | 0 |");
    expect(markdown(result)).toContain("| us, ingest stream | 150 | 150 / 140 / 160 | 0 |");
    expect(p99Svg(result).match(/<polyline/g)).toHaveLength(3);
  });

  it("says what a busy session keeps on disk: its class's largest database, by SQLite's page count", () => {
    const state = mkdtempSync(join(tmpdir(), "bench-state-"));
    const database = (folder: string, file: string, rows: number) => {
      mkdirSync(join(state, "state", "do", folder), { recursive: true });
      const db = new DatabaseSync(join(state, "state", "do", folder, file));
      db.exec("CREATE TABLE t (v BLOB)");
      const insert = db.prepare("INSERT INTO t VALUES (?)");
      for (let i = 0; i < rows; i++) insert.run(new Uint8Array(1000));
      db.close();
    };
    try {
      database("svc-CraftingSession", "a.sqlite", 1);
      database("svc-CraftingSession", "b.sqlite", 40);
      // Another class's larger database is not a session's.
      database("svc-Player", "c.sqlite", 200);
      const busy = largestDatabase(state, "CraftingSession");
      expect(busy?.pages).toBeGreaterThan(10);
      expect(busy?.pages).toBeLessThan(50);
      expect(busy?.bytes).toBe((busy?.pages ?? 0) * 4096);
      expect(largestDatabase(state, "Nothing")).toBeNull();

      const result = sampleResult();
      result.ingest.busy_session_storage = { pages: 23, bytes: 23 * 4096 };
      expect(markdown(result)).toContain("by SQLite's page count): 23 pages, 92 KB.");
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe("the write paths compared", () => {
  it("judge bridged against direct by the median run's p99, and report each run's and the pooled ratio", () => {
    // 50 updates per path per run (p99: the slowest); each run has its own.
    const run = (direct: number, bridged: number) => ({
      direct: [...Array.from({ length: 49 }, () => 2), direct],
      bridged: [...Array.from({ length: 49 }, () => 2), bridged],
    });
    // A pause hit the bridged path in the first run and the direct one in the third.
    const figures = steadyFigures([run(4, 40), run(5, 6), run(60, 5)]);
    expect(figures.p99_runs_ms).toEqual({ direct: [4, 5, 60], bridged: [40, 6, 5] });
    expect(figures.bridged_vs_direct_p99).toBe(1.2); // medians: 6 / 5
    // Pooled, p99 of 150 is the second slowest: 5 direct, 6 bridged.
    expect(figures.pooled_bridged_vs_direct_p99).toBe(1.2);
    expect(figures.ingest_to_subscriber_ms.count).toBe(150);
    // One run: its own ratio.
    expect(steadyFigures([run(4, 40)]).bridged_vs_direct_p99).toBe(10);
  });
});

describe("processes", () => {
  it("finds a child, reads its CPU and memory, and stops it on cleanup", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    const pid = child.pid as number;
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code, signal) => resolve(signal ? 0 : code)),
    );
    expect(descendants(process.pid)).toContain(pid);
    expect(cpuSeconds([pid])).toBeGreaterThanOrEqual(0);
    expect(rssBytes([pid])).toBeGreaterThan(0);
    onExit(() => {
      child.kill("SIGTERM");
    });
    await runCleanups();
    await exited;
    expect(descendants(process.pid)).not.toContain(pid);
  });
});

describe("the descriptor budget of a scale step", () => {
  it("holds what fits in 90 % of the limit, at the descriptors per session measured before", () => {
    // (20,000 × 0.9 − 62) / 6.1 = 2,940.6
    expect(streamsWithinFds(10_000, 20_000, 62, 6.1)).toBe(2_940);
    expect(streamsWithinFds(1_000, 20_000, 62, 6.1)).toBe(1_000);
    expect(streamsWithinFds(10_000, 20_000, 19_000, 6.1)).toBe(0);
    // The first step has nothing to go by; a limit that cannot be read caps nothing.
    expect(streamsWithinFds(1_000, 20_000, 62, undefined)).toBe(1_000);
    expect(streamsWithinFds(10_000, Number.POSITIVE_INFINITY, 62, 6.1)).toBe(10_000);
  });

  it("counts this process's open descriptors and reads its limit", () => {
    const before = openFds([process.pid]);
    const dir = mkdtempSync(join(tmpdir(), "fds-"));
    const fd = openSync(join(dir, "f"), "w");
    try {
      expect(openFds([process.pid])).toBe(before + 1);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
    const soft = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1];
    expect(fdLimit([process.pid])).toBe(Number(soft));
    expect(fdLimit([])).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("turns", () => {
  it("visits every target in turn, run by run, each round the other way, each run after every target is quiet", async () => {
    const calls: string[] = [];
    const targets = new Map([
      ["floor", "F"],
      ["us", "U"],
    ]);
    const results = await inTurns(
      targets,
      2,
      async (target) => {
        calls.push(`measure ${target}`);
        return `${target}${calls.length}`;
      },
      async (all) => {
        calls.push(`quiet ${all.join("")}`);
      },
    );
    expect(calls).toEqual([
      "quiet FU",
      "measure F",
      "quiet FU",
      "measure U",
      "quiet FU",
      "measure U",
      "quiet FU",
      "measure F",
    ]);
    expect([...results]).toEqual([
      ["floor", ["F2", "F8"]],
      ["us", ["U4", "U6"]],
    ]);
  });

  it("does not measure a target before the previous run's work has settled", async () => {
    let busy = false;
    const seenBusy: boolean[] = [];
    await inTurns(
      new Map([
        ["a", 1],
        ["b", 2],
      ]),
      2,
      async () => {
        seenBusy.push(busy);
        busy = true;
        // Leftover work that outlives the run, as a metrics push does.
        setTimeout(() => {
          busy = false;
        }, 5);
      },
      async () => {
        while (busy) await new Promise((resolve) => setTimeout(resolve, 1));
      },
    );
    expect(seenBusy).toEqual([false, false, false, false]);
  });

  it("takes the run with the median figure, the lower middle of an even count", () => {
    const runs = [{ p99: 9 }, { p99: 3 }, { p99: 5 }, { p99: 7 }];
    expect(median(runs, (r) => r.p99)).toEqual({ p99: 5 });
    expect(median(runs.slice(0, 3), (r) => r.p99)).toEqual({ p99: 5 });
    expect(median([{ p99: 4 }], (r) => r.p99)).toEqual({ p99: 4 });
    expect(() => median([], (r: { p99: number }) => r.p99)).toThrow(/no results/);
  });
});
