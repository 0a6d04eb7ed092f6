/**
 * Rows written per progress report at crafting-service's likely cadence
 * (us only): running sessions each reported once a second for `seconds`,
 * each report the time since the session started (what the plan says, as
 * a service tracking real crafting would), and the storage rows every
 * object wrote meanwhile counted per report, by object
 * (`crafting_storage_rows_written_total{object}`). Twice: plain sessions,
 * then sessions that are the first step of a two-step workflow. The
 * ingest scenario's rows per update are counted at 1,000 updates a second
 * into one session, where the player's and the workflow's once-a-second
 * notices are lost in the count; here each report is also those notices.
 */
import { progressPoster, type Target, token } from "./targets.ts";

const OBJECTS = ["session", "player", "workflow"] as const;
const rowsOf = (object: string) => `crafting_storage_rows_written_total{object="${object}"}`;

/** Rows written per report, by object, and in all. */
export type RowsPerReport = Record<(typeof OBJECTS)[number] | "total", number>;

export interface CadenceResult {
  sessions: number;
  seconds: number;
  reports: number;
  rows_per_report: RowsPerReport;
  /** The same for sessions that are workflow steps (one workflow each). */
  workflow_steps?: { sessions: number; reports: number; rows_per_report: RowsPerReport };
}

/** A running session to report on: `post(elapsedMs)` answers with the HTTP status. */
interface Reported {
  post: (elapsedMs: number) => Promise<number>;
  startedAt: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function reportCadence(
  target: Target,
  sessions: number,
  seconds: number,
): Promise<CadenceResult> {
  const rooms: Reported[] = [];
  for (let i = 0; i < sessions; i++) {
    // A room of ours is a session created and started.
    const room = await target.room(`cadence-${crypto.randomUUID().slice(0, 8)}`);
    rooms.push({ post: room.post, startedAt: Date.now() });
  }
  const plain = await reportEverySecond(target, rooms, seconds);
  const authorized = {
    Authorization: `Bearer ${await token("crafting-service", "service")}`,
    "Content-Type": "application/json",
  };
  const steps: Reported[] = [];
  for (let i = 0; i < sessions; i++) steps.push(await workflowStep(target, authorized));
  const workflow = await reportEverySecond(target, steps, seconds);
  return {
    sessions,
    seconds,
    ...plain,
    workflow_steps: { sessions, ...workflow },
  };
}

/** Reports on every session once a second for `seconds`; the rows written per report. */
async function reportEverySecond(
  target: Target,
  reported: readonly Reported[],
  seconds: number,
): Promise<{ reports: number; rows_per_report: RowsPerReport }> {
  const counter = target.counter?.bind(target);
  if (!counter) throw new Error("the cadence scenario needs the target's /metrics");
  // What creating and starting wrote is not the reports': count once it has been pushed.
  await sleep(1_500);
  const rows = () => Promise.all(OBJECTS.map((object) => counter(rowsOf(object))));
  const before = await rows();
  let reports = 0;
  for (let second = 0; second < seconds; second++) {
    const due = performance.now() + 1000;
    await Promise.all(
      reported.map(async ({ post, startedAt }) => {
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
    reports,
    rows_per_report: {
      session: per(written[0] ?? 0),
      player: per(written[1] ?? 0),
      workflow: per(written[2] ?? 0),
      total: per(written.reduce((sum, n) => sum + n, 0)),
    },
  };
}

/** A two-step workflow of an hour a step; its first step's session, running. */
async function workflowStep(target: Target, authorized: Record<string, string>): Promise<Reported> {
  const id = `cadence-wf-${crypto.randomUUID().slice(0, 8)}`;
  const step = (name: string) => ({
    name,
    recipe_id: "bench",
    steps: [{ name: "forge", duration_ms: 3_600_000 }],
  });
  const created = await fetch(`${target.baseUrl}/v1/workflows`, {
    method: "POST",
    headers: authorized,
    body: JSON.stringify({
      workflow_id: id,
      player_id: `bench-${id}`,
      steps: [step("a"), step("b")],
    }),
  });
  if (created.status !== 201)
    throw new Error(`workflow ${id}: ${created.status} ${await created.text()}`);
  // Creating a workflow creates and starts its first step's session, `{workflow_id}.0`.
  return { post: progressPoster(target.baseUrl, authorized, `${id}.0`), startedAt: Date.now() };
}
