/**
 * The package's ingest client (`crafting-network-service/client/ingest`)
 * measured as crafting-service would use it: a steady rate of corrections
 * over many sessions, none awaited before the next round. Part of the batch
 * scenario (paths-scenario.ts), on our service only.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { IngestClient } from "crafting-network-service/client/ingest";
import { type LatencySummary, round, summarize } from "./stats.ts";
import { type Target, token } from "./targets.ts";

/** What crafting-service gets from the package's ingest client at a steady rate. */
export interface ClientIngestResult {
  /** Corrections sent per second (one per session per round), and for how long. */
  offered_per_s: number;
  seconds: number;
  /** Corrections answered per second, over the time from the first send to the last answer. */
  answered_per_s: number;
  /** Changes the sessions stored (corrections the client or the service folded into a newer one share its change). */
  changes: number;
  /** Corrections the client folded into a newer one of their session (`superseded` answers). */
  superseded: number;
  /** From `send` to its answer (a folded correction is answered with the newer one). */
  answer_ms: LatencySummary;
  /** Corrections refused or never answered (0 unless something is wrong). */
  failed: number;
  /** The window the client had sized itself to at the end (corrections in flight, at most). */
  window: number;
}

/**
 * `rate` corrections a second over `ids` for `seconds` through the ingest
 * client, with its defaults: a round of one correction per session every
 * `ids.length / rate` seconds, none awaited before the next round, as
 * crafting-service reports a live session's progress, each session moved on
 * from `fromElapsedMs` by 1 ms a round. Every correction is
 * answered; what the sessions could not store one by one is folded into
 * the newer correction (latest wins), which `changes` shows.
 */
export async function clientIngest(
  target: Target,
  ids: readonly string[],
  rate: number,
  seconds: number,
  fromElapsedMs = 0,
): Promise<ClientIngestResult> {
  const client = new IngestClient({
    baseUrl: target.baseUrl,
    token: () => token("crafting-service", "service"),
  });
  // Open before the clock starts: the first round does not wait for the connection.
  await Promise.all(ids.map((id) => client.send({ session_id: id, elapsed_ms: fromElapsedMs })));
  const firstSeq = new Map<string, number>();
  const lastSeq = new Map<string, number>();
  const latencies: number[] = [];
  let superseded = 0;
  const rounds = Math.max(1, Math.round((rate * seconds) / ids.length));
  const started = performance.now();
  const answers: Promise<void>[] = [];
  for (let round = 0; round < rounds; round++) {
    const wait = started + (round * ids.length * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const sentAt = performance.now();
    for (const id of ids)
      answers.push(
        client.send({ session_id: id, elapsed_ms: fromElapsedMs + 1 + round }).then(
          (answer) => {
            latencies.push(performance.now() - sentAt);
            if (answer.superseded) superseded++;
            if (!firstSeq.has(id)) firstSeq.set(id, answer.seq);
            lastSeq.set(id, Math.max(answer.seq, lastSeq.get(id) ?? 0));
          },
          () => {},
        ),
      );
  }
  // Bounded: an answer that never comes is counted as failed, and the bound holds nothing open.
  await Promise.race([Promise.all(answers), sleep(30_000, undefined, { ref: false })]);
  const elapsedS = (performance.now() - started) / 1000;
  const window = client.window;
  client.close();
  let changes = 0;
  for (const [id, last] of lastSeq) changes += last - (firstSeq.get(id) ?? last) + 1;
  const sent = rounds * ids.length;
  return {
    offered_per_s: rate,
    seconds,
    answered_per_s: round(latencies.length / elapsedS, 0),
    changes,
    superseded,
    answer_ms: summarize(latencies),
    failed: sent - latencies.length,
    window,
  };
}
