/** Bridged events as pure logic: parsing every documented shape, and the version-ordered fold. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  admitEvents,
  foldEvents,
  foldNew,
  type SessionEvent,
} from "../../../src/domain/events/session-events";
import type { Session } from "../../../src/domain/session/session";
import { type EventLog, transition } from "../../../src/domain/session/session-machine";
import { EVENT_LIMITS, parseEventRecord, recordsOf } from "../../../src/events/event-input";

const EXAMPLES = join(import.meta.dirname, "../../../proto/examples");

function parsed(raw: unknown): SessionEvent {
  const result = parseEventRecord(raw, 0);
  if (!result.ok) throw new Error(result.message);
  return result.event;
}

function ev(
  kind: SessionEvent["kind"],
  version: number,
  extra: Partial<SessionEvent> = {},
): SessionEvent {
  return {
    eventId: `00000000-0000-4000-8000-${String(version).padStart(12, "0")}`,
    kind,
    occurredAtMs: 1_000_000 + version * 1000,
    sessionId: "s-1",
    playerId: "p-1",
    version,
    acceptedAtMs: 0,
    ...(kind === "start"
      ? {
          start: {
            recipeId: "r",
            workflowId: null,
            steps: [{ name: "a", durationMs: 100_000 }],
            materials: [],
          },
        }
      : {}),
    ...extra,
  };
}

describe("event records", () => {
  it("parses every shipped example, one per event type", () => {
    const files = readdirSync(EXAMPLES).filter((file) => file.endsWith(".json"));
    const kinds = files.map(
      (file) => parsed(JSON.parse(readFileSync(join(EXAMPLES, file), "utf8"))).kind,
    );
    expect(new Set(kinds)).toEqual(
      new Set(["start", "progress", "pause", "resume", "complete", "fail", "cancel"]),
    );
  });

  it("accepts the proto3 JSON form too (lowerCamelCase, payload under its type, int64 as a string)", () => {
    const event = parsed({
      eventId: "0b7e2b8e-5f2a-4c1e-9a51-3f0d2c9e8a01",
      eventType: "crafting.session.start",
      occurredAt: "2026-11-22T18:00:00Z",
      sessionId: "s-1",
      playerId: "p-1",
      version: "7",
      start: {
        recipeId: "iron-sword",
        steps: [{ name: "smelt", durationMs: 1000 }],
        materials: [{ materialId: "ore", required: 3 }],
      },
    });
    expect(event).toMatchObject({
      version: 7,
      start: {
        recipeId: "iron-sword",
        steps: [{ name: "smelt", durationMs: 1000 }],
        materials: [{ materialId: "ore", required: 3 }],
      },
    });
  });

  /** A valid envelope of an event of `type`, in our JSON or the proto3 form. */
  const envelope = (type: string, proto: boolean) =>
    proto
      ? {
          eventId: "0b7e2b8e-5f2a-4c1e-9a51-3f0d2c9e8a01",
          eventType: `crafting.session.${type}`,
          occurredAt: "2026-11-22T18:00:00Z",
          sessionId: "s-1",
          playerId: "p-1",
          version: "1",
        }
      : {
          event_id: "0b7e2b8e-5f2a-4c1e-9a51-3f0d2c9e8a01",
          event_type: `crafting.session.${type}`,
          occurred_at: "2026-11-22T18:00:00Z",
          session_id: "s-1",
          player_id: "p-1",
          version: 1,
        };
  /** What a record is told: "accepted", or its refusal. */
  const refusal = (record: object) => {
    const result = parseEventRecord(record, 0);
    return result.ok ? "accepted" : result.message;
  };

  it("names a payload's field where and as the producer wrote it", () => {
    const badStep = { name: "smelt", durationMs: -1 };
    expect(
      refusal({ ...envelope("start", true), start: { recipeId: "r", steps: [badStep] } }),
    ).toBe("start.steps[0].durationMs must be a positive whole number of milliseconds");
    expect(
      refusal({
        ...envelope("start", false),
        payload: { recipe_id: "r", steps: [{ name: "smelt", duration_ms: -1 }] },
      }),
    ).toBe("payload.steps[0].duration_ms must be a positive whole number of milliseconds");
    expect(
      refusal({ ...envelope("start", true), start: { steps: [{ name: "a", durationMs: 1 }] } }),
    ).toBe("start.recipeId must be 1-64 characters of letters, digits, '_', '-', '.' or ':'");
    expect(refusal({ ...envelope("progress", true), progress: { progressPercent: "x" } })).toBe(
      "progress needs elapsedSeconds (≥ 0) or progressPercent (0-100)",
    );
    expect(refusal({ ...envelope("progress", false), payload: { progress_percent: 101 } })).toBe(
      "payload needs elapsed_seconds (≥ 0) or progress_percent (0-100)",
    );
    expect(refusal({ ...envelope("fail", false), payload: { reason: 7 } })).toMatch(
      /^payload\.reason must be a string/,
    );
    expect(refusal({ ...envelope("fail", false), payload: [] })).toBe(
      "payload must be a JSON object",
    );
  });

  it("names every fault of a payload under its place, and a payload left out where the envelope's form puts it", () => {
    const [snake, proto] = [envelope("start", false), envelope("start", true)];
    const ID_RULE = "must be 1-64 characters of letters, digits, '_', '-', '.' or ':'";
    const both = (at: string, recipe: string) =>
      `${at}.${recipe} ${ID_RULE}; ${at}.steps must be an array of 1-64 steps`;
    expect(refusal({ ...snake, payload: {} })).toBe(both("payload", "recipe_id"));
    expect(refusal(snake)).toBe(both("payload", "recipe_id"));
    expect(refusal({ ...proto, start: {} })).toBe(both("start", "recipeId"));
    expect(refusal(proto)).toBe(both("start", "recipeId"));
    expect(refusal({ ...snake, event_type: "crafting.session.progress" })).toBe(
      "payload needs elapsed_seconds (≥ 0) or progress_percent (0-100)",
    );
    expect(refusal({ ...proto, eventType: "crafting.session.progress" })).toBe(
      "progress needs elapsedSeconds (≥ 0) or progressPercent (0-100)",
    );
    // Said beside the envelope's, and counted past the five said.
    expect(refusal({ ...snake, event_id: "x", session_id: "", player_id: "", version: 0 })).toBe(
      `event_id must be a UUID; session_id ${ID_RULE}; player_id ${ID_RULE}; version must be a positive whole number; payload.recipe_id ${ID_RULE}; and 1 more`,
    );
  });

  it("keeps a start's region for placing its session; proto3's empty string is none", () => {
    const start = (payload: Record<string, unknown>) =>
      parseEventRecord(
        {
          event_id: "0b7e2b8e-5f2a-4c1e-9a51-3f0d2c9e8a01",
          event_type: "crafting.session.start",
          occurred_at: "2026-11-22T18:00:00Z",
          session_id: "s-1",
          player_id: "p-1",
          version: 1,
          payload: {
            recipe_id: "iron-sword",
            steps: [{ name: "smelt", duration_ms: 1000 }],
            ...payload,
          },
        },
        0,
      );
    expect(start({ region: "apac" })).toMatchObject({
      ok: true,
      event: { start: { region: "apac" } },
    });
    for (const none of [{}, { region: "" }]) {
      const result = start(none);
      expect(result.ok && result.event.start && "region" in result.event.start).toBe(false);
    }
    expect(start({ region: "APAC" })).toEqual({
      ok: false,
      message: expect.stringMatching(/^payload\.region must be one of wnam, enam/),
    });
  });

  it("reads a JSON object, a JSON array and JSON lines; a bad line stays an error at its index", () => {
    expect(recordsOf('{"a":1}')).toEqual([{ a: 1 }]);
    expect(recordsOf('[{"a":1},"{\\"b\\":2}"]')).toEqual([{ a: 1 }, '{"b":2}']);
    const lines = recordsOf('{"a":1}\n\nnot json\n{"c":3}\n');
    expect(lines).toHaveLength(3);
    expect(parseEventRecord(lines[1], 0)).toEqual({
      ok: false,
      message: "the line is not valid JSON",
    });
  });
});

describe("the fold", () => {
  const run = [
    ev("start", 1),
    ev("progress", 2, { progress: { elapsedMs: 20_000 } }),
    ev("pause", 3),
    ev("resume", 4),
    ev("complete", 5),
  ];

  it("gives the same state for every delivery order", () => {
    const inOrder = foldEvents(null, run, 9).state;
    const orders = [
      [4, 3, 2, 1, 0],
      [2, 0, 4, 1, 3],
      [1, 3, 0, 4, 2],
    ];
    for (const order of orders) {
      expect(
        foldEvents(
          null,
          order.map((i) => run[i] as SessionEvent),
          9,
        ).state,
      ).toEqual(inOrder);
    }
    expect(inOrder).toMatchObject({ status: "completed", pausedTotalMs: 1000, epoch: 9 });
  });

  it("applies each event at its occurred_at, not when it arrives", () => {
    const state = foldEvents(null, run.slice(0, 3), 1).state;
    // Started at 1,001 s, corrected to 20 s at 1,002 s, paused at 1,003 s: 21 s elapsed.
    expect(state?.clock).toMatchObject({
      anchorElapsedMs: 21_000,
      running: false,
      anchorAtMs: 1_003_000,
    });
  });

  it("ignores, with a reason, what is illegal at its place in version order", () => {
    const fold = foldEvents(null, [ev("start", 1), ev("complete", 2), ev("pause", 3)], 1);
    expect(fold.state?.status).toBe("completed");
    expect(fold.outcomes.get(ev("pause", 3).eventId)).toEqual({
      outcome: "ignored",
      reason: "cannot pause a session that is completed",
    });
  });

  it("parks events until a start creates the session", () => {
    const early = foldEvents(null, [ev("pause", 2)], 1);
    expect(early.state).toBeNull();
    expect(early.outcomes.get(ev("pause", 2).eventId)).toEqual({ outcome: "parked" });
    expect(foldEvents(null, [ev("pause", 2), ev("start", 1)], 1).state?.status).toBe("paused");
  });
});

describe("the shipped Kafka Connect sinks", () => {
  const dir = join(import.meta.dirname, "../../../deploy/kafka-connect");
  const read = (folder: string) =>
    readdirSync(folder)
      .filter((file) => file.endsWith(".json"))
      .map(
        (file) =>
          JSON.parse(readFileSync(join(folder, file), "utf8")) as {
            config: Record<string, string>;
          },
      );
  const withStaticToken = read(dir);
  const withOauth2 = read(join(dir, "oauth2"));

  it("cover both topics and send what POST /v1/events accepts", () => {
    for (const configs of [withStaticToken, withOauth2]) {
      expect(configs.map((c) => c.config.topics).sort()).toEqual([
        "game.crafting.events",
        "game.crafting.progress",
      ]);
    }
    for (const { config } of [...withStaticToken, ...withOauth2]) {
      expect(new URL(config["http.url"] as string).pathname).toBe("/v1/events");
      expect(new URL(config["http.url"] as string).searchParams.get("on_invalid")).toBe(
        "dead_letter",
      );
      expect(Number(config["batch.max.size"])).toBeLessThanOrEqual(EVENT_LIMITS.maxRecords);
      // A batch is a JSON array.
      expect([config["batch.prefix"], config["batch.separator"], config["batch.suffix"]]).toEqual([
        "[",
        ",",
        "]",
      ]);
    }
    for (const { config } of withStaticToken)
      expect(config["http.headers.authorization"]).toMatch(/^Bearer \$\{file:/);
  });

  it("can take short-lived service tokens from an identity provider (client credentials)", () => {
    for (const { config } of withOauth2) {
      expect(config["http.authorization.type"]).toBe("oauth2");
      expect(config).not.toHaveProperty("http.headers.authorization");
      expect(new URL(config["oauth2.access.token.url"] as string).protocol).toBe("https:");
      // The credentials come from a file, never from the connector's JSON.
      expect(config["oauth2.client.id"]).toMatch(/^\$\{file:/);
      expect(config["oauth2.client.secret"]).toMatch(/^\$\{file:/);
      // The scope the service maps to a crafting-service token (src/auth/jwt.ts).
      expect(config["oauth2.client.scope"]?.split(" ")).toContain("service");
    }
  });
});

describe("admission", () => {
  const owner = { sessionId: "s-1", playerId: "p-1" };

  it("refuses duplicates (stored or earlier in the batch), stale versions and other players' events, by position", () => {
    const stored = ev("start", 1);
    const pause = ev("pause", 5);
    const foreign = ev("resume", 6, { playerId: "p-2" });
    const { fresh, refused } = admitEvents([stored, pause, pause, ev("progress", 2), foreign], {
      floor: 3,
      maxVersion: 4,
      owner,
      seen: (id) => id === stored.eventId,
    });
    expect(refused).toEqual([
      { outcome: "duplicate" },
      null,
      { outcome: "duplicate" },
      { outcome: "stale" },
      { outcome: "rejected", reason: "session s-1 belongs to another player" },
    ]);
    expect(fresh).toEqual([pause]);
  });

  it("admits anything for a session that does not exist yet", () => {
    expect(
      admitEvents([ev("pause", 2, { playerId: "p-9" })], {
        floor: 0,
        maxVersion: 0,
        owner: null,
        seen: () => false,
      }).fresh,
    ).toHaveLength(1);
  });

  it("looks up only events at or below the highest stored version (a copy carries its original's version)", () => {
    const asked: number[] = [];
    const events = [ev("progress", 3), ev("progress", 7), ev("progress", 8)];
    const { fresh, refused } = admitEvents(events, {
      floor: 0,
      maxVersion: 7,
      owner,
      seen: (id) => {
        asked.push(events.findIndex((e) => e.eventId === id));
        return id === events[1]?.eventId;
      },
    });
    expect(asked).toEqual([0, 1]);
    expect(refused).toEqual([null, { outcome: "duplicate" }, null]);
    expect(fresh).toEqual([events[0], events[2]]);
  });
});

describe("folding new events", () => {
  const start = ev("start", 1);
  const pause = ev("pause", 3);
  const resume = ev("resume", 4);

  it("applies events that come after every stored one incrementally, without reading the store", () => {
    const current = foldEvents(null, [start, pause], 1).state;
    const stored = () => {
      throw new Error("the store must not be read");
    };
    expect(foldNew(current, { base: null, maxVersion: 3, stored }, [resume], 1).state?.status).toBe(
      "active",
    );
  });

  it("re-folds from the base with every stored event when one arrives late", () => {
    // Stored: start and resume (the resume was ignored: nothing to resume). The pause arrives late.
    const current = foldEvents(null, [start, resume], 1).state;
    const fold = foldNew(
      current,
      { base: null, maxVersion: 4, stored: () => [start, resume] },
      [pause],
      1,
    );
    expect(fold.state?.status).toBe("active");
    expect(fold.state?.pausedTotalMs).toBe(1000);
  });
});

describe("bridged events through the one transition", () => {
  const start = ev("start", 1);
  const progress = ev("progress", 2, { progress: { elapsedMs: 20_000 }, acceptedAtMs: 50 });
  const pause = ev("pause", 3, { acceptedAtMs: 40, traceId: "t-3" });

  /** An event log holding `stored`, as the session object reads it from SQLite. */
  function logOf(stored: SessionEvent[], base: Session | null = null): EventLog {
    return {
      floor: 0,
      maxVersion: Math.max(0, ...stored.map((e) => e.version)),
      base,
      seen: (id) => stored.some((e) => e.eventId === id),
      stored: () => stored,
    };
  }

  function events(state: Session | null, batch: SessionEvent[], stored: SessionEvent[] = []) {
    const result = transition(state, {
      type: "events",
      events: batch,
      log: logOf(stored),
      epoch: 5,
      atMs: 2_000_000,
    });
    if (!result.ok) throw new Error(result.error.message);
    return result;
  }

  it("creates the session at seq 1 without delivering, storing the events with it", () => {
    const result = events(null, [start]);
    expect(result.state).toMatchObject({ seq: 1, status: "active", epoch: 5 });
    expect(result.effects[0]).toEqual({
      type: "persist",
      settleEvents: false,
      events: { fresh: [start], maxVersion: 1 },
    });
    expect(result.effects.some((e) => e.type === "deliver")).toBe(false);
    expect(result.outcome).toEqual({
      type: "events",
      results: [{ eventId: start.eventId, outcome: "applied" }],
    });
  });

  it("assigns one seq to a batch and delivers one update, caused by the last event applied", () => {
    const created = events(null, [start]).state as Session;
    const result = events(created, [progress, pause], [start]);
    expect(result.state?.seq).toBe(created.seq + 1);
    const delivered = result.effects.filter((e) => e.type === "deliver");
    // Latency counts from the oldest event of the batch; the trace is the newest one's.
    expect(delivered).toEqual([
      {
        type: "deliver",
        frame: "update",
        cause: "pause",
        statusChanged: true,
        latestWins: false,
        receivedAtMs: 40,
        traceId: "t-3",
      },
    ]);
  });

  it("acknowledges a duplicate without storing or changing anything, telling the queue again if unknown", () => {
    const created = events(null, [start]).state as Session;
    const result = events(created, [start], [start]);
    expect(result.state).toBe(created);
    // A redelivery (its consumer may have died before the player was told):
    // nothing stored or delivered; the queue is told again unless known to hold it.
    expect(result.effects).toEqual([
      {
        type: "notify_player",
        playerId: created.playerId,
        summary: expect.objectContaining({ seq: created.seq }),
        wait: true,
        repeat: true,
      },
    ]);
    expect(result.outcome).toEqual({
      type: "events",
      results: [{ eventId: start.eventId, outcome: "duplicate" }],
    });
  });

  it("takes no new seq when a late event re-folds to the same state", () => {
    // A progress event at version 2 arrives after version 4 already placed the clock.
    const later = ev("progress", 4, { progress: { elapsedMs: 30_000 } });
    const state = events(null, [start, later]).state as Session;
    const result = events(state, [progress], [start, later]);
    expect(result.state).toBe(state);
    expect(result.effects).toEqual([
      {
        type: "persist",
        settleEvents: false,
        events: { fresh: [progress], maxVersion: 4 },
      },
    ]);
  });

  it("parks events that precede the session's start, and stores them", () => {
    const result = events(null, [pause]);
    expect(result.state).toBeNull();
    expect(result.effects).toEqual([
      { type: "persist", settleEvents: false, events: { fresh: [pause], maxVersion: 3 } },
    ]);
    expect(result.outcome).toEqual({
      type: "events",
      results: [{ eventId: pause.eventId, outcome: "parked" }],
    });
  });
});
