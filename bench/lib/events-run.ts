/**
 * The bench's bridged-events scenarios on our service, one after another
 * (the floor has no bridge): a burst of progress events, lifecycle events
 * at a steady rate and as fast as they are seen, then the same progress
 * updates posted directly and bridged at a steady rate. Returns
 * `events` of the bench's result.
 */
import { eventsIngest } from "./events-scenario.ts";
import { lifecycleIngest } from "./lifecycle-scenario.ts";
import { steadyPaths } from "./paths-scenario.ts";
import { settle } from "./scenarios.ts";
import type { Target } from "./targets.ts";
import { median } from "./turns.ts";

/** The sizes of a bench mode these scenarios take. */
export interface EventsSizes {
  /** The burst: sessions, and progress events to each. */
  events: readonly [number, number];
  lifecycle: { sessions: number; perSession: number; offered: number };
  steady: { sessions: number; rate: number; seconds: number };
  /** Runs of the burst (its median is reported) and of the steady paths. */
  fanoutRuns: number;
  pathsRuns: number;
}

export async function bridgedEvents(
  target: Target,
  sizes: EventsSizes,
  say: (message: string) => void,
): Promise<Record<string, unknown>> {
  const [sessions, perSession] = sizes.events;
  say(`events   us    ${sessions} sessions × ${perSession} events through POST /v1/events`);
  // Noisy like the fan-out tail: the run with the median events/s.
  const bursts: Awaited<ReturnType<typeof eventsIngest>>[] = [];
  for (let run = 0; run < sizes.fanoutRuns; run++) {
    bursts.push(await eventsIngest(target, sessions, perSession));
    await settle(target);
  }
  const burst = {
    ...median(bursts, (b) => b.events_per_s),
    events_per_s_runs: bursts.map((b) => b.events_per_s),
  };
  say(
    `         ${burst.events_per_s} events/s (runs ${burst.events_per_s_runs.join(", ")}), p99 ${burst.ingest_to_subscriber_ms.p99} ms, ${burst.seen}/${burst.events} seen`,
  );
  const { sessions: cycled, perSession: cycles, offered: steadyRate } = sizes.lifecycle;
  say(
    `lifecycle us   ${cycled} sessions × ${cycles} pauses and resumes through POST /v1/events, at ${steadyRate}/s, then as fast as they go`,
  );
  const paced = await lifecycleIngest(target, cycled, cycles, steadyRate);
  await settle(target);
  const fastest = await lifecycleIngest(target, cycled, cycles);
  await settle(target);
  say(
    `         at ${steadyRate}/s: p50 ${paced.ingest_to_subscriber_ms.p50} / p99 ${paced.ingest_to_subscriber_ms.p99} ms; as fast as they go: ${fastest.events_per_s} events/s, p99 ${fastest.ingest_to_subscriber_ms.p99} ms; ${paced.seen + fastest.seen}/${paced.events + fastest.events} seen`,
  );
  const { sessions: watched, rate, seconds } = sizes.steady;
  say(
    `paths    us    ${rate} updates/s over ${watched} sessions, half direct, half bridged, ${sizes.pathsRuns} runs`,
  );
  const steady = await steadyPaths(target, watched, rate, seconds, sizes.pathsRuns);
  say(
    `         p99 direct ${steady.p99_runs_ms.direct.join(" / ")} ms, bridged ${steady.p99_runs_ms.bridged.join(" / ")} ms: median run ${steady.bridged_vs_direct_p99}, pooled ${steady.pooled_bridged_vs_direct_p99}, ${steady.lost} not seen`,
  );
  return {
    direct_to_subscriber_ms: steady.direct_to_subscriber_ms,
    ingest_to_subscriber_ms: steady.ingest_to_subscriber_ms,
    bridged_vs_direct_p99: steady.bridged_vs_direct_p99,
    steady,
    burst,
    lifecycle: { paced, fastest },
  };
}
