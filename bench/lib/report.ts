/** The result file, its schema check and the markdown table (the plot: report-svg.ts). */
import type { CadenceResult } from "./cadence-scenario.ts";
import type { IdleResult } from "./idle-scenario.ts";
import type { LifecycleResult } from "./lifecycle-scenario.ts";
import {
  type RssLiveRatio,
  type RssSharedRatio,
  type ScaleStep,
  scaleLines,
  scaleRatios,
} from "./scale-report.ts";
import type { DatabaseFootprint, ScaleResult } from "./scale-scenario.ts";
import { fmt, ratio } from "./stats.ts";
import type { WireResult } from "./wire-scenario.ts";

/** Per-target figures of one scenario variant. */
export type ByTarget<T> = Partial<Record<"us" | "floor" | "peer", T>>;

/** Updates into one session: the median run's figures. */
export interface IngestFigures {
  posts_per_s: number;
  errors: number;
  client_cpu: number;
  server_cpu: number;
  rows_written_per_update?: number;
  /** The posts/s of each run, in the order run; the figures above are the median run's. */
  posts_per_s_runs?: number[];
}

/** The machine-readable result (bench/results/latest.json). */
export interface BenchResult {
  schema: 1;
  mode: "smoke" | "quick" | "full";
  started_at: string;
  seconds: number;
  /** `state`: where the targets' storage lived (bench/lib/targets.ts, STATE_ROOT). */
  machine: {
    cpus: number;
    node: string;
    platform: string;
    state: string;
    /** The client's garbage was collected before each measured run (`--expose-gc`). */
    client_gc_between_runs?: boolean;
  };
  fanout: {
    subscribers: number;
    by_target: ByTarget<{
      latency_ms: { p50: number; p99: number; max: number };
      deliveries: number;
      expected_deliveries: number;
      failures: number;
      bytes_per_update: number;
      client_cpu: number;
      server_cpu: number;
      /** The p99 of each run; the figures above are the median run's. */
      p99_runs_ms?: number[];
      /** Every run's deliveries pooled: a stable p99 where a run has few (1 subscriber). */
      pooled_ms?: { count: number; p50: number; p99: number };
    }>;
  }[];
  saturation: {
    subscribers: number;
    by_target: ByTarget<{
      posts_per_s: number;
      deliveries_per_s: number;
      client_cpu: number;
      server_cpu: number;
    }>;
  }[];
  ingest: {
    by_target: ByTarget<IngestFigures>;
    /** The same updates into one session on our ingest stream (GET /v1/progress/stream), 8 in flight. */
    stream?: IngestFigures;
    /** The largest session database after the ingest runs (us): what a busy session keeps on disk. */
    busy_session_storage?: DatabaseFootprint | null;
    /** Progress updates/s across 100 sessions through the batch paths (us). */
    batch_updates_per_s?: number;
    batch?: Record<string, unknown>;
  };
  events: Record<string, unknown> | null;
  scale: ScaleStep[];
  /**
   * Us only: one wave of the first scale step again, with players owning
   * several sessions each (a player's queue), so their objects are shared.
   */
  scale_shared_players?: ScaleResult | null;
  wire: WireResult | null;
  /** Idle watched sessions (us): wakes and rows written per session per hour. */
  idle: IdleResult | null;
  /** Running sessions each reported once a second (us): rows written per report, by object. */
  cadence?: CadenceResult | null;
  ratios: {
    fanout_p99: {
      subscribers: number;
      ratio_vs_floor: number | null;
      ratio_vs_peer: number | null;
      /** The same ratio of the pooled p99s (every run's deliveries together). */
      pooled_ratio_vs_floor?: number | null;
    }[];
    saturation_deliveries: {
      subscribers: number;
      ratio_vs_floor: number | null;
      ratio_vs_peer: number | null;
    }[];
    ingest_posts: {
      ratio_vs_floor: number | null;
      ratio_vs_peer: number | null;
      /** Updates/s on our ingest stream against the floor's posts/s. */
      stream_ratio_vs_floor?: number | null;
    };
    /** RSS of us against the floor per live session, and per live Durable Object (us keeps two per session). */
    rss_live?: RssLiveRatio[];
    /** RSS per live session of us with players sharing their object (scale_shared_players) against the floor's at the same count. */
    rss_shared_players?: RssSharedRatio | null;
  };
}

/** Ratios of us against the floor and the peer, from the figures. */
export function computeRatios(result: Omit<BenchResult, "ratios">): BenchResult["ratios"] {
  return {
    fanout_p99: result.fanout.map(({ subscribers, by_target: t }) => ({
      subscribers,
      ratio_vs_floor: ratio(t.us?.latency_ms.p99, t.floor?.latency_ms.p99),
      ratio_vs_peer: ratio(t.us?.latency_ms.p99, t.peer?.latency_ms.p99),
      pooled_ratio_vs_floor: ratio(t.us?.pooled_ms?.p99, t.floor?.pooled_ms?.p99),
    })),
    saturation_deliveries: result.saturation.map(({ subscribers, by_target: t }) => ({
      subscribers,
      ratio_vs_floor: ratio(t.us?.deliveries_per_s, t.floor?.deliveries_per_s),
      ratio_vs_peer: ratio(t.us?.deliveries_per_s, t.peer?.deliveries_per_s),
    })),
    ingest_posts: {
      ratio_vs_floor: ratio(
        result.ingest.by_target.us?.posts_per_s,
        result.ingest.by_target.floor?.posts_per_s,
      ),
      ratio_vs_peer: ratio(
        result.ingest.by_target.us?.posts_per_s,
        result.ingest.by_target.peer?.posts_per_s,
      ),
      stream_ratio_vs_floor: ratio(
        result.ingest.stream?.posts_per_s,
        result.ingest.by_target.floor?.posts_per_s,
      ),
    },
    ...scaleRatios(result),
  };
}

/** What is wrong with a result file; empty when it is well-formed. */
export function validateResult(value: unknown): string[] {
  const problems: string[] = [];
  const r = value as Partial<BenchResult> | null;
  if (!r || typeof r !== "object") return ["not an object"];
  if (r.schema !== 1) problems.push("schema must be 1");
  if (!["smoke", "quick", "full"].includes(r.mode as string))
    problems.push("mode must be smoke, quick or full");
  for (const key of ["fanout", "saturation", "scale"] as const) {
    if (!Array.isArray(r[key]) || r[key]?.length === 0)
      problems.push(`${key} must be a non-empty array`);
  }
  for (const entry of r.fanout ?? []) {
    for (const target of ["us", "floor", "peer"] as const) {
      const figures = entry.by_target?.[target];
      if (!figures) problems.push(`fanout[${entry.subscribers}] lacks ${target}`);
      else if (!(figures.latency_ms?.p99 >= 0))
        problems.push(`fanout[${entry.subscribers}].${target} lacks a p99`);
    }
  }
  if (!r.ratios || !Array.isArray(r.ratios.fanout_p99)) problems.push("ratios.fanout_p99 missing");
  if (!r.wire || !(r.wire.json_bytes_per_update > 0) || !(r.wire.sync_bytes_per_update > 0))
    problems.push("wire sizes missing");
  else if (!(r.wire.compression?.json_wire_bytes_per_update > 0))
    problems.push("wire sizes with compression offered missing");
  else if (!(r.wire.sync_server && r.wire.sync_server.delta_us > 0))
    problems.push("the server's work per sync packet missing");
  if (!(r.ingest?.stream && r.ingest.stream.posts_per_s > 0 && r.ingest.stream.errors === 0))
    problems.push("ingest stream figures missing (or its updates failed)");
  const batch = r.ingest?.batch as
    | { client?: { answered_per_s?: number }; errors?: number }
    | undefined;
  if (!(batch && (batch.client?.answered_per_s ?? 0) > 0 && batch.errors === 0))
    problems.push("batch path figures missing (or their updates failed)");
  if (!(r.cadence && r.cadence.reports > 0 && r.cadence.rows_per_report.session > 0))
    problems.push("rows per report at crafting-service's cadence missing");
  const lifecycle = r.events?.lifecycle as Record<string, LifecycleResult> | undefined;
  for (const run of Object.values(lifecycle ?? {}))
    if (run.seen < run.events)
      problems.push(`lifecycle events: ${run.events - run.seen} of ${run.events} never seen`);
  if (r.events && !lifecycle) problems.push("lifecycle events through POST /v1/events missing");
  const lost = (r.events?.steady as { lost?: number } | undefined)?.lost ?? 0;
  if (lost > 0) problems.push(`write paths: ${lost} updates never reached their watchers`);
  return problems;
}

/** The human summary. */
export function markdown(result: BenchResult): string {
  const lines = [
    `# Benchmark (${result.mode}, ${result.started_at}, ${result.machine.cpus} CPUs, Node ${result.machine.node}, state in ${result.machine.state ?? "a temporary directory"})`,
    "",
    "## Fan-out: delivery latency from POST to each subscriber (ms)",
    "",
    "| subscribers | target | p50 | p99 (median run) | p99 of each run | p50 / p99 pooled (deliveries) | max | delivered | client CPU | server CPU |",
    "| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const { subscribers, by_target } of result.fanout) {
    for (const [target, f] of Object.entries(by_target)) {
      const runs = f.p99_runs_ms?.map((r) => fmt(r, 1)).join(" / ") || "–";
      const pooled = f.pooled_ms
        ? `${fmt(f.pooled_ms.p50)} / ${fmt(f.pooled_ms.p99)} (${f.pooled_ms.count})`
        : "–";
      lines.push(
        `| ${subscribers} | ${target} | ${fmt(f.latency_ms.p50)} | ${fmt(f.latency_ms.p99)} | ${runs} | ${pooled} | ${fmt(f.latency_ms.max)} | ${f.deliveries}/${f.expected_deliveries} | ${fmt(f.client_cpu)} | ${fmt(f.server_cpu)} |`,
      );
    }
  }
  lines.push(
    "",
    "| subscribers | p99 us/floor | p99 us/peer | pooled p99 us/floor |",
    "| ---: | ---: | ---: | ---: |",
  );
  for (const r of result.ratios.fanout_p99)
    lines.push(
      `| ${r.subscribers} | ${fmt(r.ratio_vs_floor)} | ${fmt(r.ratio_vs_peer)} | ${fmt(r.pooled_ratio_vs_floor)} |`,
    );
  lines.push(
    "",
    "## Saturation: deliveries per second",
    "",
    "| subscribers | target | posts/s | deliveries/s | client CPU | server CPU |",
    "| ---: | --- | ---: | ---: | ---: | ---: |",
  );
  for (const { subscribers, by_target } of result.saturation) {
    for (const [target, f] of Object.entries(by_target)) {
      lines.push(
        `| ${subscribers} | ${target} | ${fmt(f.posts_per_s, 0)} | ${fmt(f.deliveries_per_s, 0)} | ${fmt(f.client_cpu)} | ${fmt(f.server_cpu)} |`,
      );
    }
  }
  lines.push(
    "",
    "## Ingest into one session (posts/s)",
    "",
    "| target | posts/s (median run) | runs | errors | server CPU | SQLite rows written per update |",
    "| --- | ---: | --- | ---: | ---: | ---: |",
  );
  const ingestRows = Object.entries(result.ingest.by_target);
  if (result.ingest.stream) ingestRows.push(["us, ingest stream", result.ingest.stream]);
  for (const [target, f] of ingestRows) {
    const rows = f.rows_written_per_update === undefined ? "–" : fmt(f.rows_written_per_update);
    const runs = f.posts_per_s_runs?.map((r) => fmt(r, 0)).join(" / ") || "–";
    lines.push(
      `| ${target} | ${fmt(f.posts_per_s, 0)} | ${runs} | ${f.errors} | ${fmt(f.server_cpu)} | ${rows} |`,
    );
  }
  const streamed = result.ingest.stream
    ? `; us on the ingest stream/floor ${fmt(result.ratios.ingest_posts.stream_ratio_vs_floor)}`
    : "";
  lines.push(
    "",
    `us/floor ${fmt(result.ratios.ingest_posts.ratio_vs_floor)}, us/peer ${fmt(result.ratios.ingest_posts.ratio_vs_peer)}${streamed}`,
  );
  const busy = result.ingest.busy_session_storage;
  if (busy)
    lines.push(
      "",
      `A busy session on disk (us, the largest session database after the ingest runs, by SQLite's page count): ${busy.pages} pages, ${fmt(busy.bytes / 1024, 1)} KB.`,
    );
  if (result.ingest.batch) {
    lines.push(
      "",
      `Batch paths (us): ${fmt(result.ingest.batch_updates_per_s, 0)} progress updates/s across ${String(result.ingest.batch.sessions)} sessions, the fastest of: 1,000 updates per request (a session's share of a request is one change), and the ingest stream (each update its own change). \`client\`: the package's ingest client offered a round of one correction per session at a steady rate, none awaited before the next (updates waiting for their session are folded into its newer one, latest wins: \`changes\` is what the sessions stored; \`window\`: the corrections in flight the client had sized itself to at the end).`,
      "",
      "```json",
      JSON.stringify(result.ingest.batch, null, 2),
      "```",
    );
  }
  if (result.idle) {
    const idle = result.idle;
    lines.push(
      "",
      "## Idle watched sessions (us)",
      "",
      `${idle.sessions} sessions, each watched by one stream keeping alive with the runtime-answered text \`ping\`, nothing happening for ${idle.seconds} s: **${fmt(idle.wakes_per_session_hour, 1)} object wakes** (alarms, client frames, slot calls) and **${fmt(idle.rows_written_per_session_hour, 1)} storage rows written** per idle watched session per hour (${idle.wakes} wakes, ${idle.rows_written} rows in the run).`,
    );
    lines.push(
      "",
      "(No stream sets an alarm since session 15, so nothing of ours wakes an idle watched session however long it idles; until then a 5-minute sweep cost up to 12 wakes and 12 rows an hour, seen by `--full`'s 330 s.)",
    );
  }
  if (result.cadence) {
    const { sessions, seconds, reports, rows_per_report: rows, workflow_steps } = result.cadence;
    lines.push(
      "",
      "## Rows written per report at crafting-service's cadence (us)",
      "",
      `${sessions} running sessions, each reported once a second for ${seconds} s with the time since its start (${reports} reports): **rows written per report: ${fmt(rows.total, 2)}** (the session's ${fmt(rows.session, 2)}, the player's ${fmt(rows.player, 2)}). A report that agrees with the plan moves nothing in the player's queue, so it writes nothing there.`,
    );
    if (workflow_steps) {
      const steps = workflow_steps.rows_per_report;
      lines.push(
        "",
        `The same on ${workflow_steps.sessions} sessions that are a workflow's first step (${workflow_steps.reports} reports): **${fmt(steps.total, 2)}** (the session's ${fmt(steps.session, 2)}, the player's ${fmt(steps.player, 2)}, the workflow's ${fmt(steps.workflow, 2)}). The workflow holds each step's clock, so a report that keeps the step on its course writes nothing there either.`,
      );
    }
  }
  if (result.events) {
    lines.push(
      "",
      "## Events and the write paths (us)",
      "",
      "`direct_to_subscriber_ms` / `ingest_to_subscriber_ms`: the same progress updates at a steady rate, half posted directly, half as bridged events, every run pooled; `bridged_vs_direct_p99`: the median run's p99s (`steady.p99_runs_ms`); `burst`: progress events through POST /v1/events as fast as they go; `lifecycle`: watched sessions paused and resumed by bridged events (one in flight per session), from the POST to the watcher seeing the new status, `paced` at a steady rate and `fastest` as fast as they are seen.",
      "",
      "```json",
      JSON.stringify(result.events, null, 2),
      "```",
    );
  }
  lines.push(...scaleLines(result));
  lines.push("", "## Wire (us)", "", ...wireLines(result.wire), "");
  return lines.join("\n");
}

/** The wire table: bytes per progress update and per second, by encoding. */
function wireLines(wire: WireResult | null): string[] {
  if (!wire) return ["(not measured)"];
  const { bytes_per_s_per_session: perS } = wire;
  return [
    `The same ${wire.updates} progress updates at ${wire.updates_per_s}/s, watched three ways at once (first frame excluded; the sync channel's periodic full syncs included):`,
    "",
    "| encoding | bytes per update | bytes/s per active session |",
    "| --- | --: | --: |",
    `| JSON frames (\`crafting.v1.json\`) | ${fmt(wire.json_bytes_per_update, 1)} | ${fmt(perS.json, 0)} |`,
    `| binary frames (\`crafting.v1.bin\`) | ${fmt(wire.binary_bytes_per_update, 1)} | ${fmt(perS.binary, 0)} |`,
    `| sync channel (\`crafting.sync.v1\`, deltas) | ${fmt(wire.sync_bytes_per_update, 1)} | ${fmt(perS.sync, 0)} |`,
    "",
    `Largest delta packet: ${fmt(wire.sync_max_delta_bytes, 0)} bytes (target ≤ 32).`,
    "",
    ...(wire.sync_server
      ? [
          `The server's work per sync packet (\`encodeSync\`, timed in V8 over ${fmt(wire.sync_server.rounds, 0)} packets; the runtime's send not included): a delta ${fmt(wire.sync_server.delta_us, 1)} µs (${fmt(wire.sync_server.delta_bytes, 0)} bytes), a full sync ${fmt(wire.sync_server.full_us, 1)} µs (${fmt(wire.sync_server.full_bytes, 0)} bytes); target < 1 ms (seed 001).`,
          "",
        ]
      : []),
    ...compressionLines(wire.compression),
  ];
}

/** Bytes on the TCP connection for watchers that offer permessage-deflate, as browsers do. */
function compressionLines(compression: WireResult["compression"] | undefined): string[] {
  if (!compression) return [];
  const negotiated = compression.negotiated
    ? `the runtime negotiated \`${compression.negotiated}\``
    : "the runtime refused it";
  return [
    `Watchers offering permessage-deflate, as browsers always do: ${negotiated}. Bytes per update on the TCP connection, WebSocket framing included:`,
    "",
    "| encoding | not offered | offered |",
    "| --- | --: | --: |",
    `| JSON frames | ${fmt(compression.json_wire_bytes_per_update_uncompressed, 1)} | ${fmt(compression.json_wire_bytes_per_update, 1)} |`,
    `| binary frames | ${fmt(compression.binary_wire_bytes_per_update_uncompressed, 1)} | ${fmt(compression.binary_wire_bytes_per_update, 1)} |`,
  ];
}
