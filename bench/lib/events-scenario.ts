/**
 * Events through the bridge path: POST /v1/events → Queue → consumer →
 * session objects → subscribers. Throughput and the latency from the POST
 * to a subscriber seeing the state that includes each event.
 */
import { measureCpu } from "./procs.ts";
import { openWatcher, pool } from "./scenarios.ts";
import { type LatencySummary, round, summarize } from "./stats.ts";
import { type Target, token } from "./targets.ts";

export interface EventsResult {
  sessions: number;
  events: number;
  events_per_s: number;
  seen: number;
  ingest_to_subscriber_ms: LatencySummary;
  client_cpu: number;
  server_cpu: number;
}

const T0 = Date.parse("2026-11-22T00:00:00Z");

/**
 * A bridged progress event for a bench room's session (owned by `bench-<id>`):
 * version `n` places the clock at `n` seconds, so a subscriber can tell which one it sees.
 */
export function progressEvent(sessionId: string, version: number): Record<string, unknown> {
  return {
    event_id: crypto.randomUUID(),
    event_type: "crafting.session.progress",
    occurred_at: new Date(T0 + version).toISOString(),
    session_id: sessionId,
    player_id: `bench-${sessionId}`,
    version,
    payload: { elapsed_seconds: version },
  };
}

export async function eventsIngest(
  target: Target,
  sessions: number,
  perSession: number,
  concurrency = 4,
): Promise<EventsResult> {
  const service = await token("crafting-service", "service");
  const rooms = await pool(
    Array.from({ length: sessions }, (_, i) => `events-${i}-${crypto.randomUUID().slice(0, 8)}`),
    16,
    async (id) => ({
      id,
      room: await target.room(id),
    }),
  );
  const sentAt = new Map<string, number[]>();
  const recorded = new Map<string, number>();
  const latencies: number[] = [];
  const sockets = await pool(rooms, 100, ({ id, room }) => {
    sentAt.set(id, []);
    recorded.set(id, 0);
    return openWatcher(room, (data, now) => {
      const frame = data as { update?: { clock?: { anchorElapsedMs?: number } } };
      const version = Math.round((frame.update?.clock?.anchorElapsedMs ?? 0) / 1000);
      const sent = sentAt.get(id) as number[];
      for (let v = (recorded.get(id) as number) + 1; v <= version; v++) {
        const at = sent[v];
        if (at !== undefined) latencies.push(now - at);
      }
      recorded.set(id, Math.max(recorded.get(id) as number, version));
    });
  });

  // Events interleaved across sessions, in version order per session, 100 per request.
  const events: { id: string; version: number; body: Record<string, unknown> }[] = [];
  for (let version = 1; version <= perSession; version++) {
    for (const { id } of rooms) {
      events.push({
        id,
        version,
        body: progressEvent(id, version),
      });
    }
  }
  const batches: (typeof events)[] = [];
  for (let i = 0; i < events.length; i += 100) batches.push(events.slice(i, i + 100));

  const total = events.length;
  const measured = await measureCpu(target.pids, async () => {
    await pool(batches, concurrency, async (batch) => {
      const now = performance.now();
      for (const event of batch) (sentAt.get(event.id) as number[])[event.version] = now;
      const response = await fetch(`${target.baseUrl}/v1/events`, {
        method: "POST",
        headers: { Authorization: `Bearer ${service}`, "Content-Type": "application/json" },
        body: JSON.stringify(batch.map((event) => event.body)),
      });
      await response.arrayBuffer();
      if (response.status !== 202) throw new Error(`POST /v1/events: ${response.status}`);
    });
    const deadline = performance.now() + 60_000;
    while (latencies.length < total && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
  });
  for (const socket of sockets) socket.terminate();
  return {
    sessions,
    events: total,
    events_per_s: round(latencies.length / measured.seconds, 1),
    seen: latencies.length,
    ingest_to_subscriber_ms: summarize(latencies),
    client_cpu: round(measured.clientCpu),
    server_cpu: round(measured.serverCpu),
  };
}
