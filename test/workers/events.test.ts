import { describe, expect, it } from "vitest";
import { EVENT_LIMITS } from "../../src/events/event-input";
import { freshId, serviceToken, token } from "../support/tokens";
import { postEvents, rawEvent, START, startedByEvent, stateOf, until } from "./event-helpers";
import { call, serviceCall } from "./helpers";

describe("events applied at once", () => {
  it("has applied lifecycle events by the time it answers 202, a start placing and creating the session", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const response = await postEvents(
      JSON.stringify([
        rawEvent(sessionId, playerId, "start", 1, START),
        rawEvent(sessionId, playerId, "pause", 2),
      ]),
    );
    expect(response.status).toBe(202);
    // No polling: the state already holds both when the answer arrives.
    expect(await stateOf(sessionId)).toMatchObject({ sessionId, playerId, status: "paused" });
    expect(
      (await postEvents(JSON.stringify(rawEvent(sessionId, playerId, "resume", 3)))).status,
    ).toBe(202);
    expect((await stateOf(sessionId))?.status).toBe("active");
  });

  it("parks at once an event that comes before its start, and applies it when the start does", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect(
      (await postEvents(JSON.stringify(rawEvent(sessionId, playerId, "pause", 2)))).status,
    ).toBe(202);
    expect(await stateOf(sessionId)).toBeNull();
    expect(
      (await postEvents(JSON.stringify(rawEvent(sessionId, playerId, "start", 1, START)))).status,
    ).toBe(202);
    expect((await stateOf(sessionId))?.status).toBe("paused");
  });

  it("sends a lifecycle event the session refuses to the Queue, whose consumer dead-letters it with the reason", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await startedByEvent(sessionId, playerId);
    const foreign = rawEvent(sessionId, freshId("intruder"), "cancel", 2, { reason: "mine now" });
    expect((await postEvents(JSON.stringify([foreign]))).status).toBe(202);
    const letter = await deadLetterOf(foreign.event_id as string);
    expect(letter.reason).toMatch(/^rejected: .*another player/);
    expect((await stateOf(sessionId))?.status).toBe("active");
  });

  it("has applied a progress event by the time it answers 202: no wait for the Queue", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const started = await startedByEvent(sessionId, playerId);
    const response = await postEvents(
      JSON.stringify([rawEvent(sessionId, playerId, "progress", 2, { elapsed_seconds: 42 })]),
    );
    expect(response.status).toBe(202);
    // No polling: the state already holds the event when the answer arrives.
    const state = await stateOf(sessionId);
    expect(state?.seq).toBe((started?.seq ?? 0) + 1);
    expect(state?.clock.anchorElapsedMs).toBe(42_000);
  });

  it("sends what the session refuses to the Queue, whose consumer dead-letters it with the reason", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await startedByEvent(sessionId, playerId);
    const foreign = rawEvent(sessionId, freshId("intruder"), "progress", 2, { elapsed_seconds: 5 });
    expect((await postEvents(JSON.stringify([foreign]))).status).toBe(202);
    const letter = await deadLetterOf(foreign.event_id as string);
    expect(letter.reason).toMatch(/^rejected: .*another player/);
    expect((await stateOf(sessionId))?.clock.anchorElapsedMs).toBe(0);
  });
});

describe("POST /v1/events", () => {
  it("takes one event, answers 202 with how many it accepted, and the session holds it", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const response = await postEvents(
      JSON.stringify(rawEvent(sessionId, playerId, "start", 1, START)),
    );
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 1 });
    const state = await until(
      () => stateOf(sessionId),
      (s) => s !== null,
      "the session",
    );
    expect(state).toMatchObject({ sessionId, playerId, recipeId: "iron-sword", status: "active" });
  });

  it("accepts the shapes Kafka Connect HTTP sinks send: a JSON array, an array of JSON strings, JSON lines", async () => {
    const bodies = (sessionId: string, playerId: string) => [
      rawEvent(sessionId, playerId, "start", 1, START),
      rawEvent(sessionId, playerId, "pause", 2),
    ];
    const [a, b, c] = [freshId("s"), freshId("s"), freshId("s")];
    const player = freshId("p");
    const shapes: [string, string, string][] = [
      [a, JSON.stringify(bodies(a, player)), "application/json"],
      [
        b,
        JSON.stringify(bodies(b, player).map((event) => JSON.stringify(event))),
        "application/json",
      ],
      [
        c,
        bodies(c, player)
          .map((event) => JSON.stringify(event))
          .join("\n"),
        "application/x-ndjson",
      ],
    ];
    for (const [, body, type] of shapes) {
      const response = await postEvents(body, type);
      expect(response.status).toBe(202);
      expect(await response.json()).toEqual({ accepted: 2 });
    }
    for (const [sessionId] of shapes) {
      await until(
        () => stateOf(sessionId),
        (s) => s?.status === "paused",
        `${sessionId} paused`,
      );
    }
  });

  it("refuses bad records by index and reason, and still applies the good ones", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const good = rawEvent(sessionId, playerId, "start", 1, START);
    const records = [
      good,
      { ...rawEvent(sessionId, playerId, "pause", 2), event_id: "not-a-uuid" },
      { ...rawEvent(sessionId, playerId, "pause", 2), event_type: "crafting.session.explode" },
      { ...rawEvent(sessionId, playerId, "pause", 2), occurred_at: "yesterday" },
      { ...rawEvent(sessionId, playerId, "pause", 2), version: 0 },
      rawEvent(sessionId, playerId, "start", 3, { recipe_id: "x", steps: [] }),
      rawEvent(sessionId, playerId, "progress", 4, { progress_percent: 140 }),
      "not json",
      rawEvent(sessionId, playerId, "progress", 5, { elapsed_seconds: 30 }),
    ];
    const response = await postEvents(JSON.stringify(records));
    expect(response.status).toBe(400);
    const body = (await response.json()) as {
      accepted: number;
      rejected: { index: number; error: { message: string } }[];
    };
    expect(body.accepted).toBe(2);
    expect(body.rejected.map((r) => r.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(body.rejected.map((r) => r.error.message)).toEqual([
      expect.stringContaining("event_id"),
      expect.stringContaining("event_type"),
      expect.stringContaining("occurred_at"),
      expect.stringContaining("version"),
      expect.stringContaining("steps"),
      expect.stringContaining("progress"),
      expect.stringContaining("JSON"),
    ]);
    const state = await until(
      () => stateOf(sessionId),
      (s) => s?.clock.anchorElapsedMs === 30_000,
      "start and progress applied",
    );
    expect(state?.clock.anchorElapsedMs).toBe(30_000);
  });

  it("with ?on_invalid=dead_letter, answers 202 and keeps the refused records in the dead-letter log", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const marker = crypto.randomUUID();
    const body = [
      rawEvent(sessionId, playerId, "start", 1, START),
      { ...rawEvent(sessionId, playerId, "pause", 2), event_id: `bad-${marker}` },
    ]
      .map((e) => JSON.stringify(e))
      .join("\n");
    const response = await call("/v1/events?on_invalid=dead_letter", {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await serviceToken()}`,
        "Content-Type": "application/x-ndjson",
      },
      body,
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({
      accepted: 1,
      dead_lettered: 1,
      rejected: [{ index: 1 }],
    });
    const list = await until(
      async () =>
        (await (
          await serviceCall("/v1/events/dead-letters?limit=500", undefined, "GET")
        ).json()) as { letters: { reason: string; body: { event_id?: string } }[] },
      (l) => l.letters.some((letter) => letter.body?.event_id === `bad-${marker}`),
      "the refused record in the dead-letter log",
    );
    expect(
      list.letters.find((letter) => letter.body?.event_id === `bad-${marker}`)?.reason,
    ).toMatch(/^refused at ingest: event_id/);
    await until(
      () => stateOf(sessionId),
      (s) => s?.status === "active",
      "the good record applied",
    );
    expect(
      (
        await postEvents(
          JSON.stringify(rawEvent(sessionId, playerId, "pause", 3)),
          "application/json",
        )
      ).status,
    ).toBe(202);
    const bad = await call("/v1/events?on_invalid=ignore", {
      method: "POST",
      headers: { Authorization: `Bearer ${await serviceToken()}` },
      body: "{}",
    });
    expect(bad.status).toBe(400);
  }, 20_000);

  it("enforces its caps and its credentials before queueing anything", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const many = Array.from({ length: EVENT_LIMITS.maxRecords + 1 }, (_, i) =>
      rawEvent(sessionId, playerId, "progress", i + 1, { elapsed_seconds: i }),
    );
    expect((await postEvents(JSON.stringify(many))).status).toBe(413);
    expect((await postEvents("x".repeat(EVENT_LIMITS.maxBodyBytes + 1))).status).toBe(413);
    expect(
      (
        await postEvents(
          JSON.stringify(rawEvent(sessionId, playerId, "start", 1, START)),
          "text/xml",
        )
      ).status,
    ).toBe(415);
    expect((await postEvents("")).status).toBe(400);
    const anonymous = await call("/v1/events", { method: "POST", body: "[]" });
    expect(anonymous.status).toBe(401);
    const asPlayer = await call("/v1/events", {
      method: "POST",
      headers: { Authorization: `Bearer ${await token(playerId)}` },
      body: "[]",
    });
    expect(asPlayer.status).toBe(403);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await stateOf(sessionId)).toBeNull();
  });
});

describe("progress for one session from concurrent requests", () => {
  it("applies every event whatever order the requests reach the object in: the newest version wins", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const started = await startedByEvent(sessionId, playerId);
    const requests = 12;
    const responses = await Promise.all(
      Array.from({ length: requests }, (_, i) =>
        postEvents(
          JSON.stringify([
            rawEvent(sessionId, playerId, "progress", i + 2, { elapsed_seconds: i }),
          ]),
        ),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(requests).fill(202));
    // Answered means applied: the newest version is in the state, at most
    // one update per event (one that arrives after a newer one changes nothing).
    const state = await stateOf(sessionId);
    expect(state?.clock.anchorElapsedMs).toBe((requests - 1) * 1000);
    const updates = (state?.seq ?? 0) - (started?.seq ?? 0);
    expect(updates).toBeGreaterThan(0);
    expect(updates).toBeLessThanOrEqual(requests);
  });
});

/** The dead letter holding the event `eventId`, once the consumer has recorded it. */
async function deadLetterOf(eventId: string): Promise<{ reason: string }> {
  type Letters = { letters: { reason: string; body: { eventId?: string } }[] };
  const letters = await until(
    async () =>
      (await (
        await serviceCall("/v1/events/dead-letters?limit=500", undefined, "GET")
      ).json()) as Letters,
    (list) => list.letters.some((letter) => letter.body?.eventId === eventId),
    "the dead letter",
  );
  return letters.letters.find((letter) => letter.body?.eventId === eventId) as { reason: string };
}
