/**
 * Kafka-bridged events through the Queues, the consumer and the session
 * objects: order, duplicates, parking, dead letters, message by message.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { SessionEvent } from "../../src/domain/events/session-events";
import { applyNow } from "../../src/events/apply-now";
import { consumeEvents, retryDelaySeconds } from "../../src/events/consumer";
import { metrics } from "../../src/metrics/push";
import { freshId } from "../support/tokens";
import { postEvents, rawEvent, START, startedByEvent, stateOf, until } from "./event-helpers";
import { serviceCall } from "./helpers";

describe("the session applies events whatever their order", () => {
  async function apply(events: Record<string, unknown>[]) {
    const response = await postEvents(JSON.stringify(events));
    expect(response.status).toBe(202);
  }

  it("dedupes by event id and ignores a pause that comes after complete in version order", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const start = rawEvent(sessionId, playerId, "start", 1, START);
    const complete = rawEvent(sessionId, playerId, "complete", 5);
    const latePause = rawEvent(sessionId, playerId, "pause", 6);
    await apply([complete, start, start, complete]);
    await until(
      () => stateOf(sessionId),
      (s) => s?.status === "completed",
      "completed",
    );
    await apply([latePause, start]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await stateOf(sessionId)).toMatchObject({ status: "completed" });
  });

  it("parks events that arrive before the session's start, and applies them when it does", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await apply([
      rawEvent(sessionId, playerId, "progress", 2, { elapsed_seconds: 90 }),
      rawEvent(sessionId, playerId, "pause", 3),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await stateOf(sessionId)).toBeNull();
    await apply([rawEvent(sessionId, playerId, "start", 1, START)]);
    const state = await until(
      () => stateOf(sessionId),
      (s) => s?.status === "paused",
      "paused",
    );
    expect(state?.clock).toMatchObject({ anchorElapsedMs: 90_000 + 1000, running: false });
  });

  it("dead-letters a poison message and an event for another player's session, and nothing else", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await apply([rawEvent(sessionId, playerId, "start", 1, START)]);
    await until(
      () => stateOf(sessionId),
      (s) => s !== null,
      "the session",
    );
    const before = (
      (await (await serviceCall("/v1/events/dead-letters?limit=500", undefined, "GET")).json()) as {
        count: number;
      }
    ).count;
    const marker = crypto.randomUUID();
    await env.EVENTS_QUEUE.send({ poison: marker });
    await apply([
      rawEvent(sessionId, freshId("p"), "pause", 2),
      rawEvent(sessionId, playerId, "pause", 3),
    ]);
    const letters = await until(
      async () =>
        (await (
          await serviceCall("/v1/events/dead-letters?limit=500", undefined, "GET")
        ).json()) as { count: number; letters: { reason: string; body: unknown }[] },
      (list) => list.count >= before + 2,
      "two dead letters",
    );
    expect(letters.letters).toContainEqual(
      expect.objectContaining({
        reason: "malformed: not a crafting event",
        body: { poison: marker },
      }),
    );
    expect(letters.letters).toContainEqual(
      expect.objectContaining({
        reason: expect.stringContaining("belongs to another player"),
        body: expect.objectContaining({ sessionId }),
      }),
    );
    // The good event of the same batch was applied.
    await until(
      () => stateOf(sessionId),
      (s) => s?.status === "paused",
      "paused by the owner's event",
    );
  });
});

/** A parsed event, as the route hands it on. */
const eventOf = (
  sessionId: string,
  playerId: string,
  kind: SessionEvent["kind"],
  version: number,
): SessionEvent => ({
  eventId: crypto.randomUUID(),
  kind,
  occurredAtMs: Date.now(),
  sessionId,
  playerId,
  version,
  acceptedAtMs: Date.now(),
  ...(kind === "start"
    ? {
        start: {
          recipeId: "iron-sword",
          workflowId: null,
          steps: [{ name: "smelt", durationMs: 1000 }],
          materials: [],
        },
      }
    : {}),
});

/**
 * The service's bindings, with the session `overloaded` refusing every call
 * as an overloaded object does, or answering them with `applyEvents`.
 */
function overloadedEnv(
  overloaded: string,
  applyEvents: () => Promise<never> = () =>
    Promise.reject(Object.assign(new Error("Durable Object is overloaded"), { overloaded: true })),
): Env {
  return {
    ...env,
    CRAFTING_SESSION: new Proxy(env.CRAFTING_SESSION, {
      get(target, property) {
        if (property !== "getByName") return Reflect.get(target, property);
        return (name: string) => {
          if (name !== overloaded) return target.getByName(name);
          return { applyEvents };
        };
      },
    }),
  };
}

describe("the consumer, message by message", () => {
  it("acks applied, duplicate and stale events, and dead-letters the poison one alone", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const start = eventOf(sessionId, playerId, "start", 1);
    const batch = createMessageBatch("crafting-events", [
      { id: "m1", timestamp: new Date(), attempts: 1, body: start },
      { id: "m2", timestamp: new Date(), attempts: 1, body: start },
      {
        id: "m3",
        timestamp: new Date(),
        attempts: 1,
        body: { nonsense: true } as unknown as SessionEvent,
      },
      {
        id: "m4",
        timestamp: new Date(),
        attempts: 1,
        body: eventOf(sessionId, playerId, "pause", 2),
      },
    ]);
    const ctx = createExecutionContext();
    await consumeEvents(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["m1", "m2", "m3", "m4"]);
    expect(result.retryMessages).toEqual([]);
    expect(await stateOf(sessionId)).toMatchObject({ status: "paused" });
  });

  it("retries, with backoff, only the group whose session failed (fault injected: an overloaded object)", async () => {
    const healthy = freshId("s");
    const overloaded = freshId("s");
    const playerId = freshId("p");
    const faulty = overloadedEnv(overloaded);
    const batch = createMessageBatch("crafting-events", [
      {
        id: "ok",
        timestamp: new Date(),
        attempts: 1,
        body: eventOf(healthy, playerId, "start", 1),
      },
      {
        id: "busy1",
        timestamp: new Date(),
        attempts: 1,
        body: eventOf(overloaded, playerId, "start", 1),
      },
      {
        id: "busy2",
        timestamp: new Date(),
        attempts: 3,
        body: eventOf(overloaded, playerId, "pause", 2),
      },
    ]);
    const ctx = createExecutionContext();
    await consumeEvents(batch, faulty);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(["ok"]);
    // (getQueueResult does not report the delay; retryDelaySeconds is checked below.)
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(["busy1", "busy2"]);
    expect(result.retryBatch.retry).toBe(false);
  });

  it("backs off 1, 2, 4 … seconds per attempt, at most a minute", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(retryDelaySeconds)).toEqual([1, 2, 4, 8, 16, 32, 60, 60]);
  });
});

describe("events applied at once (POST /v1/events)", () => {
  it("hands back for the Queue every event of a session it could not reach, and applies the others", async () => {
    const healthy = freshId("s");
    const overloaded = freshId("s");
    const started = freshId("s");
    const playerId = freshId("p");
    await startedByEvent(started, playerId);
    const events = [
      eventOf(healthy, playerId, "start", 1),
      eventOf(overloaded, playerId, "start", 1),
      eventOf(healthy, playerId, "pause", 2),
      eventOf(overloaded, playerId, "pause", 2),
      // Another player's: refused by its session, for the Queue's consumer to dead-letter.
      eventOf(started, freshId("intruder"), "cancel", 2),
    ];
    const counted = vi.spyOn(metrics, "count");
    const later = await applyNow(overloadedEnv(overloaded), events);
    const outcomes = counted.mock.calls
      .filter(([name]) => name === "crafting_ingest_events_total")
      .map(([, labels, n]) => `${labels?.outcome} ${n ?? 1}`);
    counted.mockRestore();
    const ids = (list: SessionEvent[]) => list.map((e) => e.eventId).sort();
    expect(ids(later)).toEqual(ids([1, 3, 4].map((i) => events[i] as SessionEvent)));
    // Counted for operators: two applied, three handed to the Queue (counted once more there).
    expect(outcomes.sort()).toEqual(["applied 1", "applied 1", "queued 1", "queued 2"]);
    expect(await stateOf(healthy)).toMatchObject({ status: "paused" });
    expect(await stateOf(overloaded)).toBeNull();
  });

  it("hands back the events of a session that does not answer within the request's budget", async () => {
    const healthy = freshId("s");
    const hung = freshId("s");
    const playerId = freshId("p");
    const events = [eventOf(healthy, playerId, "start", 1), eventOf(hung, playerId, "start", 1)];
    // The call never answers; the request does not wait for it past its budget.
    const later = await applyNow(
      overloadedEnv(hung, () => new Promise<never>(() => {})),
      events,
      200,
    );
    expect(later.map((e) => e.eventId)).toEqual([events[1]?.eventId]);
    expect(await stateOf(healthy)).toMatchObject({ status: "active" });
  });

  it("calls no session once the budget is spent: every event is the Queue's", async () => {
    const sessionId = freshId("s");
    const events = [eventOf(sessionId, freshId("p"), "start", 1)];
    expect(await applyNow(env, events, 0)).toEqual(events);
    expect(await stateOf(sessionId)).toBeNull();
  });
});
