/**
 * Bridged events applied at once. A session object stores, dedupes and
 * orders its events itself (by event id and version, parking what comes
 * before its start), so `POST /v1/events` hands every event straight to its
 * session (grouped by session, one call each) and answers `202` once they
 * are stored, instead of waiting for a Queue's delivery. What cannot be
 * applied now (an object that is unreachable or overloaded, an event the
 * session rejects, such as another player's session) goes to its topic's
 * Queue, whose consumer retries it or dead-letters it with its reason:
 * nothing is lost, and a copy applied twice changes nothing.
 */
import type { EventResult, SessionEvent } from "../domain/events/session-events";
import type { Placement } from "../domain/placement/placement";
import { answeredWithin, OBJECT_CALLS_BUDGET_MS, placementOf, sessionStub } from "../durable";
import { log } from "../log";
import { metrics } from "../metrics/push";

/** Sessions called at once by one request. */
const CONCURRENCY = 50;

/**
 * Applies one session's events in one call, saying what became of each. A
 * start may create the session's object: it is placed as a create call
 * places it. Throws when the object cannot be reached (nothing applied).
 */
export async function applyToSession(
  env: Env,
  sessionId: string,
  events: readonly SessionEvent[],
): Promise<EventResult[]> {
  const start = events.findIndex((event) => event.kind === "start");
  const starting = events[start];
  let placement: Placement | null = null;
  if (starting) placement = await placementOf(env, starting.playerId, starting.start?.region);
  const results = await sessionStub(env, sessionId, placement?.hint).applyEvents([...events]);
  if (starting && placement && results[start]?.outcome === "applied")
    log("info", "session.placed", {
      session_id: sessionId,
      player_id: starting.playerId,
      location_hint: placement.hint,
      source: placement.source,
      via: "event",
    });
  return results;
}

/**
 * Applies events at once, waiting `budgetMs` at most for the sessions
 * (what is not applied by then, from a session that hangs or a call not
 * yet made, goes to the Queue too); returns those a Queue must carry.
 */
export async function applyNow(
  env: Env,
  events: readonly SessionEvent[],
  budgetMs = OBJECT_CALLS_BUDGET_MS,
): Promise<SessionEvent[]> {
  const later: SessionEvent[] = [];
  const groups = [...Map.groupBy(events, (event) => event.sessionId)];
  const deadline = Date.now() + budgetMs;
  const handBack = (sessionId: string, group: SessionEvent[], message: string) => {
    log("warn", "events.apply_now_failed", { session_id: sessionId, count: group.length, message });
    metrics.count("crafting_ingest_events_total", { outcome: "queued" }, group.length);
    later.push(...group);
  };
  const work = async (): Promise<void> => {
    for (let next = groups.shift(); next; next = groups.shift()) {
      const [sessionId, group] = next;
      const left = deadline - Date.now();
      if (left <= 0) {
        handBack(sessionId, group, `not called: the request's ${budgetMs} ms were spent`);
        continue;
      }
      try {
        const results = await answeredWithin(applyToSession(env, sessionId, group), left, budgetMs);
        results.forEach((result, i) => {
          // A rejected event is counted once, by the consumer that dead-letters it.
          const outcome = result.outcome === "rejected" ? "queued" : result.outcome;
          metrics.count("crafting_ingest_events_total", { outcome });
          if (result.outcome === "rejected") later.push(group[i] as SessionEvent);
        });
      } catch (e: unknown) {
        handBack(sessionId, group, e instanceof Error ? e.message : String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, groups.length) }, work));
  return later;
}
