/**
 * Rows written per progress report at crafting-service's likely cadence
 * (us only): each of `sessions` running sessions is reported once a second
 * for `seconds`, each report the time since its start (what the plan
 * says, as a service tracking real crafting would), and the storage rows
 * every object wrote meanwhile are counted per report, by object
 * (`crafting_storage_rows_written_total{object}`). The ingest scenario's
 * rows per update are counted at 1,000 updates a second into one session,
 * where the player's once-a-second notice is lost in the count; here each
 * report is also that notice.
 */
import type { Target } from "./targets.ts";

const OBJECTS = ["session", "player"] as const;
const rowsOf = (object: string) => `crafting_storage_rows_written_total{object="${object}"}`;

export interface CadenceResult {
  sessions: number;
  seconds: number;
  reports: number;
  /** Rows written per report, by object, and in all. */
  rows_per_report: Record<(typeof OBJECTS)[number] | "total", number>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function reportCadence(
  target: Target,
  sessions: number,
  seconds: number,
): Promise<CadenceResult> {
  if (!target.counter) throw new Error("the cadence scenario needs the target's /metrics");
  const counter = target.counter.bind(target);
  const rooms: { post: (n: number) => Promise<number>; startedAt: number }[] = [];
  for (let i = 0; i < sessions; i++) {
    // A room of ours is a session created and started.
    const room = await target.room(`cadence-${crypto.randomUUID().slice(0, 8)}`);
    rooms.push({ post: room.post, startedAt: Date.now() });
  }
  // What creating and starting wrote is not the reports': count once it has been pushed.
  await sleep(1_500);
  const rows = () => Promise.all(OBJECTS.map((object) => counter(rowsOf(object))));
  const before = await rows();
  let reports = 0;
  for (let second = 0; second < seconds; second++) {
    const due = performance.now() + 1000;
    await Promise.all(
      rooms.map(async ({ post, startedAt }) => {
        if ((await post(Date.now() - startedAt)) < 300) reports++;
      }),
    );
    await sleep(due - performance.now());
  }
  // Counts reach /metrics within a second of being counted; the last notices within another.
  await sleep(2_500);
  const after = await rows();
  const per = (n: number) => (reports ? Math.round((n / reports) * 100) / 100 : 0);
  const written = OBJECTS.map((_, i) => (after[i] ?? 0) - (before[i] ?? 0));
  return {
    sessions,
    seconds,
    reports,
    rows_per_report: {
      session: per(written[0] ?? 0),
      player: per(written[1] ?? 0),
      total: per(written.reduce((sum, n) => sum + n, 0)),
    },
  };
}
