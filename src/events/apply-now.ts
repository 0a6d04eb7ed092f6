/**
 * Progress events applied at once. Progress is latest-wins and idempotent
 * by version, so `POST /v1/events` hands bridged progress straight to the
 * session objects (grouped by session, one call each) instead of waiting
 * for the Queue's delivery; the session stores and dedupes them exactly as
 * the consumer would. What cannot be applied now — an object that is
 * unreachable or overloaded, or an event the session rejects (another
 * player's session, dead-lettered with its reason) — goes to the progress
 * Queue, whose consumer retries or dead-letters it: nothing is lost, and a
 * copy applied twice changes nothing. Lifecycle events always take the
 * Queue (durable, ordered by version, retried, dead-lettered).
 */
import type { SessionEvent } from "../domain/events/session-events";
import { sessionStub } from "../durable";
import { log } from "../log";
import { metrics } from "../metrics/push";

/** Sessions called at once by one request. */
const CONCURRENCY = 50;

/** Applies progress events at once; returns those the Queue must still carry. */
export async function applyProgressNow(
  env: Env,
  events: readonly SessionEvent[],
): Promise<SessionEvent[]> {
  const later: SessionEvent[] = [];
  const groups = [...Map.groupBy(events, (event) => event.sessionId)];
  const work = async (): Promise<void> => {
    for (let next = groups.shift(); next; next = groups.shift()) {
      const [sessionId, group] = next;
      try {
        const results = await sessionStub(env, sessionId).applyEvents(group);
        results.forEach((result, i) => {
          metrics.count("crafting_ingest_events_total", { outcome: result.outcome });
          if (result.outcome === "rejected") later.push(group[i] as SessionEvent);
        });
      } catch (e: unknown) {
        log("warn", "events.apply_now_failed", {
          session_id: sessionId,
          count: group.length,
          message: e instanceof Error ? e.message : String(e),
        });
        later.push(...group);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, groups.length) }, work));
  return later;
}
