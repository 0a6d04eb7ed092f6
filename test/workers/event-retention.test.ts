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

  it("drops the acceptance index older objects kept (a row written per event)", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const stub = env.CRAFTING_SESSION.getByName(sessionId);
    await stub.applyEvents([event(sessionId, playerId, "start", 1, Date.now())]);
    const indexes = () =>
      runInDurableObject(stub, (_i: CraftingSession, state) =>
        state.storage.sql
          .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index'")
          .toArray()
          .map((row) => row.name),
      );
    await runInDurableObject(stub, (_i: CraftingSession, state) => {
      state.storage.sql.exec("CREATE INDEX events_by_acceptance ON events (accepted_at_ms)");
    });
    expect(await indexes()).toContain("events_by_acceptance");
    await evictDurableObject(stub);
    await stub.applyEvents([event(sessionId, playerId, "progress", 2, Date.now())]);
    expect(await indexes()).not.toContain("events_by_acceptance");
  });
});
