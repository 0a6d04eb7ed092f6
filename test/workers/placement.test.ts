/**
 * Sessions placed near their players, in workerd: the create call's location
 * hint is the `region` it names, else where the player's object last saw the
 * player connect from, else none. The same rule places a workflow and its
 * steps' sessions, and a session a bridged `start` event creates. (Where the
 * platform then places an object cannot be observed locally; the hint chosen
 * is in the create answer's header, the `session.placed` log line, and what
 * the namespace is asked for.)
 */
import { createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { consumeEvents } from "../../src/events/consumer";
import { parseEventRecord } from "../../src/events/event-input";
import { freshId, serviceToken, token } from "../support/tokens";
import { postEvents, rawEvent, START, stateOf, until } from "./event-helpers";
import { call, captureLogs, serviceCall } from "./helpers";

async function create(playerId: string, extra: Record<string, unknown> = {}) {
  return call("/v1/sessions", {
    method: "POST",
    headers: {
      Authorization: `Bearer ${await serviceToken()}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      player_id: playerId,
      recipe_id: "iron-sword",
      steps: [{ name: "forge", duration_ms: 60_000 }],
      ...extra,
    }),
  });
}

/** The player watches their session from Tokyo: their object keeps `apac` as where they were last seen. */
async function watchFromTokyo(playerId: string, sessionId: string): Promise<void> {
  const watched = await call(`/ws/crafting/${sessionId}`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(playerId)}` },
    cf: { continent: "AS", country: "JP", longitude: "139.7" },
  } as RequestInit);
  expect(watched.status).toBe(101);
  watched.webSocket?.accept();
  watched.webSocket?.close(1000);
}

/** A player with a session, seen in Tokyo. */
async function seenInTokyo(playerId: string): Promise<void> {
  const sessionId = freshId("s");
  expect((await create(playerId, { session_id: sessionId })).status).toBe(201);
  await watchFromTokyo(playerId, sessionId);
}

describe("placing a session", () => {
  it("uses the region the create call names", async () => {
    const response = await create(freshId("p"), { region: "weur" });
    expect(response.status).toBe(201);
    expect(response.headers.get("Crafting-Location-Hint")).toBe("weur; source=region");
  });

  it("else where the player last connected from, else nowhere in particular", async () => {
    const playerId = freshId("p");
    const first = await create(playerId);
    expect(first.headers.get("Crafting-Location-Hint")).toBe("none; source=none");
    const { sessionId } = (await first.json()) as { sessionId: string };
    await watchFromTokyo(playerId, sessionId);
    const next = await create(playerId);
    expect(next.headers.get("Crafting-Location-Hint")).toBe("apac; source=player");
    // A region named at create still wins.
    const named = await create(playerId, { region: "enam" });
    expect(named.headers.get("Crafting-Location-Hint")).toBe("enam; source=region");
  });

  it("refuses a region that is not a location hint, naming the field", async () => {
    const response = await create(freshId("p"), { region: "mars" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { code: "invalid_argument", message: expect.stringMatching(/region/) },
    });
  });
});

/** The `session.placed` log lines written while `run` runs. */
async function placedLines(run: () => Promise<void>): Promise<Record<string, unknown>[]> {
  const logs = captureLogs();
  try {
    await run();
    return logs.events("session.placed");
  } finally {
    logs.restore();
  }
}

describe("placing a workflow and its steps' sessions", () => {
  const STEPS = ["smelt", "forge"].map((name) => ({
    name,
    recipe_id: `${name}-recipe`,
    steps: [{ name: `${name}-work`, duration_ms: 60_000 }],
  }));

  it("gives the workflow and every step's session the region it names", async () => {
    const workflowId = freshId("w");
    const playerId = freshId("p");
    const lines = await placedLines(async () => {
      const response = await serviceCall("/v1/workflows", {
        workflow_id: workflowId,
        player_id: playerId,
        steps: STEPS,
        region: "weur",
      });
      expect(response.status).toBe(201);
      expect(response.headers.get("Crafting-Location-Hint")).toBe("weur; source=region");
      // The next step's session, started when the first completes, is placed alike.
      expect((await serviceCall(`/v1/sessions/${workflowId}.0/complete`)).status).toBe(200);
    });
    expect(lines).toEqual([
      expect.objectContaining({ session_id: `${workflowId}.0`, location_hint: "weur" }),
      expect.objectContaining({ session_id: `${workflowId}.1`, location_hint: "weur" }),
    ]);
  });

  it("else where the player last connected from; refuses a region that is not a hint", async () => {
    const playerId = freshId("p");
    await seenInTokyo(playerId);
    const response = await serviceCall("/v1/workflows", { player_id: playerId, steps: STEPS });
    expect(response.status).toBe(201);
    expect(response.headers.get("Crafting-Location-Hint")).toBe("apac; source=player");

    const refused = await serviceCall("/v1/workflows", {
      player_id: playerId,
      steps: STEPS,
      region: "mars",
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({
      error: { code: "invalid_argument", message: expect.stringMatching(/^region must be one of/) },
    });
  });
});

describe("placing a session a bridged start event creates", () => {
  /** The Queue consumer applying `records`, with what the session namespace was asked for. */
  async function consume(records: Record<string, unknown>[]) {
    const asked: { name: string; options: unknown }[] = [];
    const recording = {
      ...env,
      CRAFTING_SESSION: new Proxy(env.CRAFTING_SESSION, {
        get(target, property) {
          if (property !== "getByName") return Reflect.get(target, property);
          return (name: string, options?: DurableObjectNamespaceGetDurableObjectOptions) => {
            asked.push({ name, options });
            return target.getByName(name, options);
          };
        },
      }),
    } as Env;
    const messages = records.map((record, i) => {
      const parsed = parseEventRecord(record, Date.now());
      if (!parsed.ok) throw new Error(`bad fixture: ${parsed.message}`);
      return { id: `m${i}`, timestamp: new Date(), attempts: 1, body: parsed.event };
    });
    await consumeEvents(createMessageBatch("crafting-events", messages), recording);
    return asked;
  }

  it("uses the start's region, else where the player was last seen, else none", async () => {
    const named = freshId("s");
    const seen = freshId("s");
    const unseen = freshId("s");
    const tokyo = freshId("p");
    await seenInTokyo(tokyo);
    const asked = await consume([
      rawEvent(named, freshId("p"), "start", 1, { ...START, region: "weur" }),
      rawEvent(seen, tokyo, "start", 1, START),
      rawEvent(unseen, freshId("p"), "start", 1, START),
    ]);
    expect(asked).toEqual(
      expect.arrayContaining([
        { name: named, options: { locationHint: "weur" } },
        { name: seen, options: { locationHint: "apac" } },
        { name: unseen, options: undefined },
      ]),
    );
    // Each session was created by its start.
    for (const id of [named, seen, unseen]) expect((await stateOf(id))?.status).toBe("active");
  });

  it("asks nothing of the player for events that are not a start", async () => {
    const sessionId = freshId("s");
    const tokyo = freshId("p");
    await seenInTokyo(tokyo);
    const asked = await consume([
      rawEvent(sessionId, tokyo, "progress", 2, { elapsed_seconds: 10 }),
    ]);
    expect(asked).toEqual([{ name: sessionId, options: undefined }]);
  });

  it("takes the region through POST /v1/events and says where it placed the session", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const lines = await placedLines(async () => {
      const response = await postEvents(
        JSON.stringify(
          rawEvent(sessionId, playerId, "start", 1, {
            recipeId: "iron-sword",
            steps: START.steps,
            region: "apac",
          }),
        ),
      );
      expect(response.status).toBe(202);
      await until(
        () => stateOf(sessionId),
        (s) => s !== null,
        "the session",
      );
    });
    expect(lines).toContainEqual(
      expect.objectContaining({
        session_id: sessionId,
        location_hint: "apac",
        source: "region",
        via: "event",
      }),
    );
    // A region that is not a hint is refused with the record, naming the field.
    const refused = await postEvents(
      JSON.stringify(rawEvent(freshId("s"), playerId, "start", 1, { ...START, region: "mars" })),
    );
    expect(refused.status).toBe(400);
    expect(JSON.stringify(await refused.json())).toMatch(/region must be one of/);
  });
});
