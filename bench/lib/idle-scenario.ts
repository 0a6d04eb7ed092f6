/**
 * Idle cost (us only): watched sessions in which nothing happens. Each of
 * `sessions` sessions is watched by one stream that keeps alive the way a
 * well-behaved client does — the text `ping` the runtime answers without
 * waking the object, every 10 s. Reports, per idle watched session per hour,
 * the events that reach the objects and would wake them from hibernation
 * (alarms, client frames, slot calls: `crafting_object_wakes_total`) and the
 * storage rows written by every object (`crafting_storage_rows_written_total`).
 */
import WebSocket from "ws";
import type { Target } from "./targets.ts";

const WAKES = "crafting_object_wakes_total";
const ROWS = "crafting_storage_rows_written_total";

export interface IdleResult {
  sessions: number;
  seconds: number;
  wakes: number;
  rows_written: number;
  wakes_per_session_hour: number;
  rows_written_per_session_hour: number;
}

export async function idleCost(
  target: Target,
  sessions: number,
  seconds: number,
): Promise<IdleResult> {
  if (!target.counter) throw new Error("idle cost needs the target's /metrics");
  const counter = target.counter.bind(target);
  const sockets: WebSocket[] = [];
  for (let i = 0; i < sessions; i++) {
    const room = await target.room(`idle-${crypto.randomUUID().slice(0, 8)}`);
    const ws = new WebSocket(room.wsUrl, ["crafting.v1.json"], { headers: room.wsHeaders });
    await new Promise<void>((resolve, reject) => {
      ws.once("message", () => resolve());
      ws.once("error", reject);
    });
    sockets.push(ws);
  }
  const keepalive = setInterval(() => {
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send("ping");
  }, 10_000);
  try {
    // What opening the streams cost is not idle cost: start counting once it has been pushed.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const before = { wakes: await counter(WAKES), rows: await counter(ROWS) };
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const elapsed = (performance.now() - started) / 1000;
    // Counts reach /metrics within a second of being counted.
    await counter(WAKES);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const wakes = (await counter(WAKES)) - before.wakes;
    const rows = (await counter(ROWS)) - before.rows;
    const perHour = (n: number) => Math.round((n / sessions / elapsed) * 3600 * 10) / 10;
    return {
      sessions,
      seconds: Math.round(elapsed),
      wakes,
      rows_written: rows,
      wakes_per_session_hour: perHour(wakes),
      rows_written_per_session_hour: perHour(rows),
    };
  } finally {
    clearInterval(keepalive);
    for (const ws of sockets) ws.close(1000);
  }
}
