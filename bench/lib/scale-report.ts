/** The scale scenario's part of the report: memory against the floor, and its markdown. */
import { MAX_WAVES, type ScaleResult } from "./scale-scenario.ts";
import { fmt, ratio } from "./stats.ts";
import type { TargetName } from "./targets.ts";

/** One scale step, each target's figures (an element of `BenchResult.scale`). */
export interface ScaleStep {
  streams: number;
  by_target: Partial<Record<TargetName, ScaleResult>>;
}

/** RSS of us against the floor at one scale step. */
export interface RssLiveRatio {
  streams: number;
  per_session_vs_floor: number | null;
  per_object_vs_floor: number | null;
  /**
   * The least per_session_vs_floor could be on this runtime: the floor's
   * live session (one object and its stream) plus, for each further
   * object a session of ours keeps, what the floor's room costs before
   * its stream.
   */
  least_per_session_vs_floor?: number | null;
  /**
   * The waves after the first (scale-scenario.ts, `WarmWaves`): RSS per
   * session while a wave's objects live, and once they were evicted.
   */
  warm_live_per_session_vs_floor?: number | null;
  warm_watched_per_session_vs_floor?: number | null;
  /** RSS per session held at the end of the step, every object evicted (`WarmWaves.rss_per_held_session_bytes`). */
  held_per_session_vs_floor?: number | null;
}

/** RSS per live session of us with players sharing their object, against the floor's. */
export interface RssSharedRatio {
  streams: number;
  sessions_per_player: number;
  per_session_vs_floor: number | null;
}

/** The figures the scale ratios read (part of `BenchResult`). */
interface ScaleFigures {
  scale: ScaleStep[];
  scale_shared_players?: ScaleResult | null;
}

/** What the report's scale section reads: the figures and their ratios. */
interface ScaleReport extends ScaleFigures {
  ratios: { rss_live?: RssLiveRatio[]; rss_shared_players?: RssSharedRatio | null };
}

/** RSS of us against the floor, per scale step and with players shared. */
export function scaleRatios(result: ScaleFigures): {
  rss_live: RssLiveRatio[];
  rss_shared_players: RssSharedRatio | null;
} {
  const rss_live = result.scale.map(({ streams, by_target: t }) => {
    // A run that lost handshakes measured the machine (fd and backlog limits), not memory per session.
    const whole = t.us?.failures === 0 && t.floor?.failures === 0;
    const compare = (us: number | undefined, floor: number | undefined) =>
      whole ? ratio(us, floor) : null;
    const { us, floor } = t;
    return {
      streams,
      per_session_vs_floor: compare(
        us?.rss_per_live_session_bytes,
        floor?.rss_per_live_session_bytes,
      ),
      per_object_vs_floor: compare(us?.rss_per_live_object_bytes, floor?.rss_per_live_object_bytes),
      least_per_session_vs_floor:
        us?.objects_per_session && floor?.rss_per_session_without_stream_bytes
          ? compare(
              (us.objects_per_session - 1) * floor.rss_per_session_without_stream_bytes +
                floor.rss_per_live_session_bytes,
              floor.rss_per_live_session_bytes,
            )
          : null,
      ...(us?.warm && floor?.warm
        ? {
            warm_live_per_session_vs_floor: compare(
              us.warm.rss_per_live_session_bytes,
              floor.warm.rss_per_live_session_bytes,
            ),
            warm_watched_per_session_vs_floor: compare(
              us.warm.rss_per_watched_session_bytes,
              floor.warm.rss_per_watched_session_bytes,
            ),
            held_per_session_vs_floor: compare(
              us.warm.rss_per_held_session_bytes,
              floor.warm.rss_per_held_session_bytes,
            ),
          }
        : {}),
    };
  });
  return { rss_live, rss_shared_players: sharedPlayersRatio(result) };
}

/** RSS per live session of us with players sharing their object, against the floor at the same count. */
function sharedPlayersRatio(result: ScaleFigures): RssSharedRatio | null {
  const shared = result.scale_shared_players;
  if (!shared?.sessions_per_player) return null;
  // The floor's first wave of the same count: both processes fresh.
  const floor = result.scale
    .map((entry) => entry.by_target.floor)
    .find((f) => f && (f.first_wave_streams ?? f.streams) === shared.streams);
  const whole = shared.failures === 0 && floor?.failures === 0;
  return {
    streams: shared.streams,
    sessions_per_player: shared.sessions_per_player,
    per_session_vs_floor: whole
      ? ratio(shared.rss_per_live_session_bytes, floor?.rss_per_live_session_bytes)
      : null,
  };
}

/** The report's scale section. */
export function scaleLines(result: ScaleReport): string[] {
  const lines = [
    "",
    "## Scale: one stream per session",
    "",
    "| streams | target | create (s) | open (s) | failures | RSS/session before its stream | RSS/live session | objects/session | RSS/live object | RSS/idle session | storage/session | descriptors/live session |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const { streams, by_target } of result.scale) {
    for (const [target, f] of Object.entries(by_target)) {
      lines.push(
        `| ${streams} | ${target} | ${fmt(f.create_seconds)} | ${fmt(f.open_seconds)} | ${f.failures} | ${fmt(f.rss_per_session_without_stream_bytes, 0)} B | ${fmt(f.rss_per_live_session_bytes, 0)} B | ${fmt(f.objects_per_session)} | ${fmt(f.rss_per_live_object_bytes, 0)} B | ${fmt(f.rss_per_idle_session_bytes, 0)} B | ${fmt(f.storage_bytes_per_session, 0)} B | ${fmt(f.fds_per_live_session)} |`,
      );
    }
  }
  lines.push(...warmLines(result), ...heldLines(result));
  for (const r of result.ratios.rss_live ?? []) {
    const least =
      r.least_per_session_vs_floor == null
        ? ""
        : ` The least it could be with our objects per session: ${fmt(r.least_per_session_vs_floor)} (the floor's live session, plus the floor's room before its stream for each further object).`;
    lines.push(
      "",
      r.per_session_vs_floor === null
        ? `RSS us/floor at ${r.streams} streams: not compared (handshakes failed: the run measured this machine's limits).`
        : `RSS us/floor at ${r.streams} streams: ${fmt(r.per_session_vs_floor)} per live session, ${fmt(r.per_object_vs_floor)} per live Durable Object.${least}`,
    );
    if (r.warm_live_per_session_vs_floor != null && r.warm_watched_per_session_vs_floor != null)
      lines.push(
        "",
        `RSS us/floor at ${r.streams} streams, in the waves after the first: ${fmt(r.warm_live_per_session_vs_floor)} per live session, ${fmt(r.warm_watched_per_session_vs_floor)} per watched session once its objects were evicted; over the whole step, every object evicted: ${fmt(r.held_per_session_vs_floor)} per session held.`,
      );
  }
  const shared = result.scale_shared_players;
  const sharedRatio = result.ratios.rss_shared_players;
  if (shared && sharedRatio)
    lines.push(
      "",
      `Players with ${sharedRatio.sessions_per_player} sessions each (a player's queue; us only, ${shared.streams} sessions, one stream each): ${fmt(shared.objects_per_session)} objects per session, ${fmt(shared.rss_per_live_session_bytes, 0)} B RSS per live session, us/floor ${sharedRatio.per_session_vs_floor === null ? "not compared (handshakes failed)" : fmt(sharedRatio.per_session_vs_floor)}.`,
    );
  for (const { streams, by_target } of result.scale) {
    const objects = by_target.us?.storage_by_object;
    if (objects && Object.keys(objects).length > 0)
      lines.push(
        "",
        `Storage of us at ${streams} streams, by object: ${Object.entries(objects)
          .map(([name, o]) => `${name} ${fmt(o.objects, 0)} × ${fmt(o.bytes_per_object, 0)} B`)
          .join(
            ", ",
          )} (a SQLite database holding one table is 8 KB: the schema's page and the table's).`,
      );
  }
  return lines;
}

/**
 * The waves after a step's first: what one more session costs a process
 * whose evicted objects' memory it reuses.
 */
function warmLines(result: ScaleReport): string[] {
  const lines: string[] = [];
  for (const { streams, by_target } of result.scale) {
    const warm = Object.entries(by_target).filter(([, f]) => f.warm);
    if (warm.length === 0) continue;
    const each = warm.map(
      ([target, f]) =>
        `${target} (${fmt(f.warm?.streams, 0)} sessions in ${fmt(f.warm?.waves, 0)} later waves, after a first of ${fmt(f.first_wave_streams, 0)}): ${fmt(f.warm?.rss_per_live_session_bytes, 0)} B RSS per live session, ${fmt(f.warm?.rss_per_watched_session_bytes, 0)} B once its objects were evicted (${fmt(f.warm?.fds_per_watched_session)} descriptors per watched session at the end); ${fmt(f.warm?.rss_per_held_session_bytes, 0)} B per session held at the end`,
    );
    lines.push(
      "",
      `At ${streams} streams, each wave after the first opened once the runtime had evicted the objects of the waves before (the figures above are the first wave's): ${each.join("; ")}.`,
    );
  }
  return lines;
}

/**
 * What a step held when the descriptor limit would not take its count, and
 * its count extrapolated from the per-session figures (SPEC §6).
 */
function heldLines(result: ScaleReport): string[] {
  const lines: string[] = [];
  for (const { streams, by_target } of result.scale) {
    const held = Object.entries(by_target).filter(([, f]) => f.requested_streams);
    if (held.length === 0) continue;
    const each = held.map(
      ([target, f]) =>
        `${target} held ${fmt(f.streams, 0)} (${fmt(f.fds_per_live_session)} descriptors per live session of ${fmt(f.fd_limit, 0)}), so ${streams} live sessions would take ${fmt((f.rss_per_live_session_bytes * streams) / 2 ** 30)} GiB of RSS all live at once${f.warm ? `, ${fmt((f.warm.rss_per_held_session_bytes * streams) / 2 ** 30)} GiB watched with their objects evicted (at the RSS per session held at the end)` : ""}, and ${fmt((f.storage_bytes_per_session * streams) / 2 ** 20)} MiB on disk`,
    );
    lines.push(
      "",
      `At ${streams} streams the step held what fits in 90 % of one workerd process's descriptor limit, in at most ${MAX_WAVES} waves: ${each.join("; ")}.`,
    );
  }
  return lines;
}
