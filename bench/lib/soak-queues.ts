/**
 * The soak's crafting queues (bench/soak.ts): each a fresh player's, whose
 * requests are created, started and ended (completed, failed or cancelled)
 * and whose slots go between 1 and 2, while streams of its own watch it
 * (JSON and the queue RPC); at the end, read back through
 * `GET /v1/players/{id}/queue` and compared with what was done.
 */
import type { ServiceCall } from "./soak-runtime.ts";
import { firstFrame } from "./soak-watcher.ts";
import { token } from "./targets.ts";

/** A soak queue and what was done to it. */
export interface SoakQueue {
  playerId: string;
  bearer: string;
  slots: number;
  /** The requests in the queue, oldest first: started ones are processing. */
  requests: { requestId: string; started: boolean }[];
  created: number;
}

/** A request's planned time: it never ends on its own during a soak. */
const STEP_MS = 7 * 24 * 3_600_000;
/** Requests a queue holds at most, so it keeps moving. */
const MOST = 4;
const ENDINGS = ["complete", "fail", "cancel"] as const;

/** A fresh player's queue, holding one queued request (so its streams have something to show). */
export async function createQueue(index: number, call: ServiceCall): Promise<SoakQueue> {
  const playerId = `soak-qp${index}-${crypto.randomUUID().slice(0, 8)}`;
  const q: SoakQueue = {
    playerId,
    bearer: await token(playerId, "player"),
    slots: 1,
    requests: [],
    created: 0,
  };
  if (!(await request(q, call))) throw new Error(`queue ${playerId}: its first request failed`);
  return q;
}

async function request(q: SoakQueue, call: ServiceCall): Promise<boolean> {
  const requestId = `${q.playerId}-r${q.created}`;
  const response = await call("/v1/sessions", {
    session_id: requestId,
    player_id: q.playerId,
    recipe_id: "soak",
    steps: [{ name: "work", duration_ms: STEP_MS }],
  });
  // 409: a retried create that had landed before the runtime died.
  if (response.status !== 201 && response.status !== 409) return false;
  q.created++;
  q.requests.push({ requestId, started: false });
  return true;
}

/**
 * Moves a queue on by one change a client sees: its slots changed, a
 * request created, the oldest queued one started while a slot is free,
 * or the oldest processing one ended. True when the service took it.
 */
export async function moveQueue(q: SoakQueue, call: ServiceCall): Promise<boolean> {
  const processing = q.requests.filter((r) => r.started);
  const queued = q.requests.find((r) => !r.started);
  const roll = Math.random();
  if (roll < 0.1) {
    const slots = q.slots === 1 ? 2 : 1;
    const response = await call(`/v1/players/${q.playerId}/slots`, { slots }, "PUT");
    if (response.status !== 200) return false;
    q.slots = slots;
    return true;
  }
  if (q.requests.length < 2 || (roll < 0.4 && q.requests.length < MOST)) return request(q, call);
  if (queued && processing.length < q.slots) {
    // A retried start finds it started: 200 with it unchanged.
    const response = await call(`/v1/sessions/${queued.requestId}/start`);
    if (response.status !== 200) return false;
    queued.started = true;
    return true;
  }
  const ending = processing[0] ?? queued;
  if (!ending) return request(q, call);
  // A request still queued can only be cancelled.
  const action = ending.started
    ? (ENDINGS[Math.floor(Math.random() * ENDINGS.length)] as (typeof ENDINGS)[number])
    : "cancel";
  const response = await call(`/v1/sessions/${ending.requestId}/${action}`, {
    reason: `soak ${action}`,
  });
  if (response.status !== 200) return false;
  q.requests = q.requests.filter((r) => r !== ending);
  return true;
}

/** How the queue read back differs from what was done to it (null: as done). */
export async function queueProblem(q: SoakQueue, call: ServiceCall): Promise<string | null> {
  const response = await call(`/v1/players/${q.playerId}/queue`, undefined, "GET");
  const read = (await response.json()) as {
    slots?: number;
    entries?: { requestId: string; status: string }[];
  };
  const actual = {
    slots: read.slots,
    entries: (read.entries ?? []).map((e) => `${e.requestId} ${e.status}`).sort(),
  };
  const expected = {
    slots: q.slots,
    entries: q.requests
      .map((r) => `${r.requestId} QUEUE_ENTRY_STATUS_${r.started ? "PROCESSING" : "QUEUED"}`)
      .sort(),
  };
  return JSON.stringify(actual) === JSON.stringify(expected)
    ? null
    : `${q.playerId}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`;
}

/** The queue's seq, as a fresh stream's first frame says: what its watchers must reach. */
export async function queueSeq(wsBase: string, q: SoakQueue): Promise<number> {
  return (await firstFrame<{ seq: number }>(`${wsBase}/ws/queue/${q.playerId}`, q.bearer)).seq;
}
