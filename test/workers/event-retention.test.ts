/**
 * A session's stored events past their retention (a day): folded into the
 * base, their rows dropped, the floor raised, so a late copy is stale and a
 * late event still folds in version order onto what remains.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CraftingSession } from "../../durable-objects/crafting-session/crafting-session";
import { EVENT_RETENTION_MS } from "../../durable-objects/crafting-session/event-store";
import { foldEvents, type SessionEvent } from "../../src/domain/events/session-events";
import { freshId } from "../support/tokens";
import { stateOf } from "./event-helpers";

const T0 = Date.parse("2026-11-22T12:00:00Z");

function event(
  sessionId: string,
  playerId: string,
  kind: SessionEvent["kind"],
  version: number,
  acceptedAtMs: number,
): SessionEvent {
  const e: SessionEvent = {
    eventId: crypto.randomUUID(),
    kind,
    occurredAtMs: T0 + version * 1000,
    sessionId,
    playerId,
    version,
    acceptedAtMs,
  };
  if (kind === "start")
    e.start = {
      recipeId: "iron-sword",
      workflowId: null,
      steps: [{ name: "smelt", durationMs: 600_000 }],
      materials: [],
    };
  if (kind === "progress") e.progress = { elapsedMs: version * 1000 };
  return e;
}

async function storedEvents(sessionId: string) {
  return runInDurableObject(
    env.CRAFTING_SESSION.getByName(sessionId),
    (_i: CraftingSession, state) =>
      state.storage.sql
        .exec<{ version: number }>("SELECT version FROM events ORDER BY version")
        .toArray()
        .map((row) => row.version),
  );
}

describe("event retention", () => {
  it("settles events accepted more than a day ago: rows dropped, floor raised, the state unchanged", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const stub = env.CRAFTING_SESSION.getByName(sessionId);
    const old = Date.now() - EVENT_RETENTION_MS - 60_000;
    const start = event(sessionId, playerId, "start", 10, old);
    const early = event(sessionId, playerId, "progress", 20, old);
    const recent = event(sessionId, playerId, "progress", 30, Date.now());
    await stub.applyEvents([start, early]);
    await stub.applyEvents([recent]);
    expect(await storedEvents(sessionId)).toEqual([10, 20, 30]);

    // A new instance looks for expired events before its first batch.
    await evictDurableObject(stub);
    const next = event(sessionId, playerId, "progress", 40, Date.now());
    expect(await stub.applyEvents([next])).toEqual([{ eventId: next.eventId, outcome: "applied" }]);
    expect(await storedEvents(sessionId)).toEqual([30, 40]);

    // A copy of a settled event is stale; a late event folds in version order onto the base.
    const latePause = event(sessionId, playerId, "pause", 35, Date.now());
    const results = await stub.applyEvents([{ ...start }, latePause]);
    expect(results.map((r) => r.outcome)).toEqual(["stale", "applied"]);
    const expected = foldEvents(null, [start, early, recent, next, latePause], 1).state;
    const state = await stateOf(sessionId);
    expect(state?.status).toBe("paused");
    expect(state?.clock).toEqual(expected?.clock);
  });

  it("moves an older events table (a rowid table with an acceptance index) to the keyed layout, keeping its events", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const stub = env.CRAFTING_SESSION.getByName(sessionId);
    const start = event(sessionId, playerId, "start", 1, Date.now());
    await stub.applyEvents([start]);
    const layout = () =>
      runInDurableObject(stub, (_i: CraftingSession, state) =>
        state.storage.sql
          .exec<{ type: string; name: string; sql: string | null }>(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'events'",
          )
          .toArray(),
      );
    // The layout of earlier deployments, holding the start event.
    await runInDurableObject(stub, (_i: CraftingSession, state) => {
      const { sql } = state.storage;
      sql.exec("DROP TABLE events");
      sql.exec(
        `CREATE TABLE events (event_id TEXT PRIMARY KEY, version INTEGER NOT NULL,
           accepted_at_ms INTEGER NOT NULL, body TEXT NOT NULL)`,
      );
      sql.exec("CREATE INDEX events_by_acceptance ON events (accepted_at_ms)");
      sql.exec(
        "INSERT INTO events VALUES (?, ?, ?, ?)",
        start.eventId,
        start.version,
        start.acceptedAtMs,
        JSON.stringify(start),
      );
    });
    expect((await layout()).map((o) => o.name)).toContain("events_by_acceptance");
    await evictDurableObject(stub);

    const progress = event(sessionId, playerId, "progress", 2, Date.now());
    const results = await stub.applyEvents([{ ...start }, progress]);
    expect(results.map((r) => r.outcome)).toEqual(["duplicate", "applied"]);
    const objects = await layout();
    expect(objects.map((o) => o.name)).toEqual(["events"]);
    expect(objects[0]?.sql).toMatch(/WITHOUT ROWID/);
    expect(await storedEvents(sessionId)).toEqual([1, 2]);
  });
});
