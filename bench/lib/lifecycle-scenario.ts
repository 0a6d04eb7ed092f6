/**
 * Lifecycle events through the bridge (seed 002's `game.crafting.events`:
 * 5,000/s, P99 < 50 ms from ingest to the session's state): each watched
 * session is paused and resumed by bridged events, one in flight per
 * session, the sessions' events gathered into requests of up to 100 (as a
 * sink batches them). Throughput, and the latency from the POST to the
 * subscriber seeing the status the event leads to.
 */
import { measureCpu } from "./procs.ts";
import { openWatcher, pool } from "./scenarios.ts";
import { type LatencySummary, round, summarize } from "./stats.ts";
import type { Target } from "./targets.ts";
import { token } from "./targets.ts";

export interface LifecycleResult {
  sessions: number;
  offered_per_s: number | null;
  events: number;
  events_per_s: number;
  seen: number;
  requests: number;
  ingest_to_subscriber_ms: LatencySummary;
  client_cpu: number;
  server_cpu: number;
}

/** Most events one request carries (a sink's batch is larger; this keeps requests many). */
const PER_REQUEST = 100;
/** How long the scenario waits for the last event to be seen. */
const DEADLINE_MS = 60_000;

/** A session being paused and resumed: the version in flight and when it was sent. */
interface Driven {
  id: string;
  wsUrl: string;
  wsHeaders: Record<string, string>;
  sent: number;
  sentAt: number;
}

/** The bridged lifecycle event `version` of a bench room's session: odd versions pause, even resume. */
export function lifecycleEvent(sessionId: string, version: number): Record<string, unknown> {
  return {
    event_id: crypto.randomUUID(),
    event_type: version % 2 === 1 ? "crafting.session.pause" : "crafting.session.resume",
    occurred_at: new Date().toISOString(),
    session_id: sessionId,
    player_id: `bench-${sessionId}`,
    version,
    payload: {},
  };
}

/** The status a session is in once `version` is applied. */
const statusAfter = (version: number) =>
  version % 2 === 1 ? "SESSION_STATUS_PAUSED" : "SESSION_STATUS_ACTIVE";

export async function lifecycleIngest(
  target: Target,
  sessions: number,
  perSession: number,
  /** Events a second offered over all sessions; as fast as they are seen when left out. */
  offeredPerS?: number,
  concurrency = 4,
): Promise<LifecycleResult> {
  const service = await token("crafting-service", "service");
  const driven: Driven[] = await pool(
    Array.from({ length: sessions }, (_, i) => `lifecycle-${i}-${crypto.randomUUID().slice(0, 8)}`),
    16,
    async (id) => ({ id, ...(await target.room(id)), sent: 0, sentAt: 0 }),
  );
  const total = sessions * perSession;
  const latencies: number[] = [];
  const ready: Driven[] = [];
  let inFlight = 0;
  let requests = 0;
  const failed: { error?: Error } = {};
  let finished: () => void = () => {};
  const allSeen = new Promise<void>((resolve) => {
    finished = resolve;
  });

  const post = async (batch: Driven[]): Promise<void> => {
    const now = performance.now();
    const body = batch.map((session) => {
      session.sent++;
      session.sentAt = now;
      return lifecycleEvent(session.id, session.sent);
    });
    requests++;
    const response = await fetch(`${target.baseUrl}/v1/events`, {
      method: "POST",
      headers: { Authorization: `Bearer ${service}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    await response.arrayBuffer();
    if (response.status !== 202) throw new Error(`POST /v1/events: ${response.status}`);
  };
  /** Sends what is ready, up to `concurrency` requests at once; batches form while they wait. */
  const pump = (): void => {
    while (inFlight < concurrency && ready.length > 0 && !failed.error) {
      inFlight++;
      post(ready.splice(0, PER_REQUEST)).then(
        () => {
          inFlight--;
          pump();
        },
        (e: unknown) => {
          failed.error = e instanceof Error ? e : new Error(String(e));
          finished();
        },
      );
    }
  };

  /** Makes `session` ready to send its next event in `afterMs` (at once if none). */
  const sendNext = (session: Driven, afterMs = 0): void => {
    const send = () => {
      ready.push(session);
      pump();
    };
    if (afterMs > 0) setTimeout(send, afterMs);
    else send();
  };

  const sockets = await pool(driven, 100, (session) =>
    openWatcher(session, (data, now) => {
      const { sentAt, sent } = session;
      // Seen once the status its event leads to arrives (none in flight: sentAt 0).
      const status = (data as { update?: { status?: string } }).update?.status;
      if (sentAt === 0 || status !== statusAfter(sent)) return;
      latencies.push(now - sentAt);
      session.sentAt = 0;
      if (latencies.length === total) finished();
      // Paced: each session sends once per sessions/offered seconds at most.
      else if (sent < perSession)
        sendNext(session, sentAt + (offeredPerS ? (sessions * 1000) / offeredPerS : 0) - now);
    }),
  );

  const measured = await measureCpu(target.pids, async () => {
    // Paced, the sessions start spread over one interval, not all at once.
    driven.forEach((session, i) => {
      sendNext(session, offeredPerS ? (i * 1000) / offeredPerS : 0);
    });
    await Promise.race([allSeen, new Promise((r) => setTimeout(r, DEADLINE_MS))]);
  });
  for (const socket of sockets) socket.terminate();
  if (failed.error) throw failed.error;
  return {
    sessions,
    offered_per_s: offeredPerS ?? null,
    events: total,
    events_per_s: round(latencies.length / measured.seconds, 1),
    seen: latencies.length,
    requests,
    ingest_to_subscriber_ms: summarize(latencies),
    client_cpu: round(measured.clientCpu),
    server_cpu: round(measured.serverCpu),
  };
}
