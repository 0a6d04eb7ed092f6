/**
 * Faults the platform really has, in workerd: a session object reset in the
 * middle of a batch, an overloaded object, a Queue consumer that dies
 * mid-batch and is redelivered, and a deploy closing every stream. In each,
 * nothing is lost and nothing is applied twice. (A lost `webSocketClose` is
 * in operations.test.ts: the sweep closes the stream and frees its slot.)
 */
import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  runInDurableObject,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { SessionEvent } from "../../src/domain/events/session-events";
import { consumeEvents } from "../../src/events/consumer";
import { parseEventRecord } from "../../src/events/event-input";
import { freshId, serviceToken, token } from "../support/tokens";
import { postEvents, rawEvent, START, stateOf, until } from "./event-helpers";
import { callWith, createSession, overloaded, serviceCall, stubsFrom, watch } from "./helpers";
import { activeSession, sessionObject } from "./stream-helpers";

/** A session's history as producers would write it: start, then progress and a pause. */
function history(sessionId: string, playerId: string, count: number) {
  const events = [rawEvent(sessionId, playerId, "start", 1, START)];
  for (let v = 2; v < count; v++)
    events.push(rawEvent(sessionId, playerId, "progress", v, { elapsed_seconds: v }));
  events.push(rawEvent(sessionId, playerId, "pause", count));
  return events;
}

/** Where a session ends once `events` are applied: its status, clock and how many changes it took. */
async function settled(sessionId: string) {
  const state = await until(
    () => stateOf(sessionId),
    (s) => s?.status === "paused",
    `${sessionId} paused`,
  );
  return { status: state?.status, clock: state?.clock, seq: state?.seq };
}

describe("a session object reset in the middle of a batch", () => {
  it("applies nothing by halves: the batch retried lands exactly once", async () => {
    const playerId = freshId("p");
    const control = freshId("s");
    const reset = freshId("s");
    expect((await postEvents(JSON.stringify(history(control, playerId, 40)))).status).toBe(202);
    const expected = await settled(control);

    const batch = JSON.stringify(history(reset, playerId, 40));
    // The object is reset while the batch is on its way in (as an eviction or a crash would).
    const first = await Promise.allSettled([
      postEvents(batch),
      runInDurableObject(sessionObject(reset), (_instance, state) => state.abort("reset")),
    ]);
    expect(first[0].status).toBe("fulfilled");
    // The producer retries the same records (same event ids), whatever it was told.
    expect((await postEvents(batch)).status).toBe(202);
    const landed = await settled(reset);
    // The same end state; the first delivery may have landed on its own (one more change), never in part twice.
    expect({ ...landed, seq: 0 }).toEqual({ ...expected, seq: 0 });
    // And again: nothing changes.
    expect((await postEvents(batch)).status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await settled(reset)).toEqual(landed);
  });
});

describe("an overloaded session object", () => {
  it("answers 503 with Retry-After in the one error shape, and the retried update lands once", async () => {
    const { sessionId } = await activeSession();
    const before = (await stateOf(sessionId))?.seq ?? 0;
    const busy = {
      ...env,
      CRAFTING_SESSION: stubsFrom(env.CRAFTING_SESSION, () => ({ correctProgress: overloaded })),
    };
    const post = async (configured: Env) =>
      callWith(configured)(`/udp/sessions/${sessionId}/progress`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${await serviceToken()}`,
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ elapsed_ms: 5_000 }),
      });
    const refused = await post(busy);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: { code: "unavailable" } });
    expect((await stateOf(sessionId))?.seq).toBe(before);
    // The caller retries after Retry-After: applied once.
    expect((await post(env)).status).toBe(200);
    expect((await stateOf(sessionId))?.seq).toBe(before + 1);
  });
});

describe("a session object that hangs", () => {
  it("holds POST /v1/progress for the request's budget only: 503 naming it, the other session applied", async () => {
    const healthy = await activeSession();
    const hung = await activeSession();
    const before = (await stateOf(healthy.sessionId))?.seq ?? 0;
    const hanging = {
      ...env,
      CRAFTING_SESSION: stubsFrom(env.CRAFTING_SESSION, (name) =>
        name === hung.sessionId
          ? { correctProgressBatch: () => new Promise<never>(() => {}) }
          : undefined,
      ),
    };
    const response = await callWith(hanging)("/v1/progress", {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await serviceToken()}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({
        updates: [
          { session_id: healthy.sessionId, elapsed_ms: 5_000 },
          { session_id: hung.sessionId, elapsed_ms: 5_000 },
        ],
      }),
    });
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("1");
    const { sessions } = (await response.json()) as { sessions: unknown[] };
    expect(sessions).toEqual([
      { session_id: healthy.sessionId, updates: [0], seq: before + 1 },
      {
        session_id: hung.sessionId,
        updates: [1],
        error: {
          code: "unavailable",
          message: "the session did not answer within the request's 5000 ms",
        },
      },
    ]);
  });
});

describe("a Queue consumer that dies in the middle of a batch", () => {
  it("is redelivered whole, and each event is applied exactly once", async () => {
    const playerId = freshId("p");
    const first = freshId("s");
    const second = freshId("s");
    const control = freshId("s");
    expect((await postEvents(JSON.stringify(history(control, playerId, 12)))).status).toBe(202);
    const expected = await settled(control);

    const records = [...history(first, playerId, 12), ...history(second, playerId, 12)];
    const messages = records.map((record, i) => {
      const parsed = parseEventRecord(record, Date.now());
      if (!parsed.ok) throw new Error(`bad fixture: ${parsed.message}`);
      return { id: `m${i}`, timestamp: new Date(), attempts: 1, body: parsed.event };
    });
    // The first session's group is applied; the second's call never returns (the isolate dies).
    let died = false;
    const dying = {
      ...env,
      CRAFTING_SESSION: stubsFrom(env.CRAFTING_SESSION, (name) =>
        name === second
          ? {
              applyEvents: async (_events: SessionEvent[]) => {
                died = true;
                throw new Error("the isolate was terminated");
              },
            }
          : undefined,
      ),
    };
    await consumeEvents(createMessageBatch("crafting-events", messages), dying);
    expect(died).toBe(true);
    expect(await settled(first)).toEqual(expected);

    // The platform redelivers every message of a batch whose invocation failed.
    const redelivered = createMessageBatch(
      "crafting-events",
      messages.map((m) => ({ ...m, attempts: 2 })),
    );
    const ctx = createExecutionContext();
    await consumeEvents(redelivered, env);
    const result = await getQueueResult(redelivered, ctx);
    // Duplicates are acknowledged, not dead-lettered, and change nothing.
    expect(result.explicitAcks).toHaveLength(messages.length);
    expect(result.retryMessages).toEqual([]);
    expect(await settled(first)).toEqual(expected);
    expect(await settled(second)).toEqual(expected);
  });
});

describe("a deploy", () => {
  it("closes streams with 1012 or 1001, and a client that resumes misses nothing and repeats nothing", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
    const bearer = await token(playerId);
    for (const code of [1012, 1001]) {
      const socket = await watch(sessionId, bearer);
      const [snapshot] = await socket.frameCount(1);
      const seen = snapshot?.seq as number;
      // What a deploy does to the object's sockets; then updates go on while the client is away.
      await runInDurableObject(sessionObject(sessionId), (_instance, state) => {
        for (const ws of state.getWebSockets()) ws.close(code, "deploying");
      });
      expect((await socket.closing()).code).toBe(code);
      for (let i = 1; i <= 3; i++)
        expect(
          (await serviceCall(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: i * 1_000 }))
            .status,
        ).toBe(200);
      const epoch = snapshot?.epoch as number;
      const resumed = await watch(sessionId, bearer, `?resume_epoch=${epoch}&resume_seq=${seen}`);
      const frames = await resumed.frameCount(4);
      expect(frames.slice(0, 3).map((f) => f.seq)).toEqual([seen + 1, seen + 2, seen + 3]);
      expect(frames[3]).toMatchObject({ resumed: { fromSeq: seen, replayed: 3 } });
      resumed.ws.close(1000);
    }
  });
});
