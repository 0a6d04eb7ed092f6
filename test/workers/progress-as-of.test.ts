/**
 * `as_of_ms` on progress corrections: the clock is placed when
 * crafting-service took the reading, and a reading older than the one the
 * session holds (a retry after a lost answer, updates reordered on the way)
 * changes nothing — over JSON, binary protobuf and the batch route alike.
 * And the proto3 JSON form of these bodies (lowerCamelCase names, 64-bit
 * integers as strings), as a client generated from the same .proto sends.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ProgressCorrectionRequestSchema } from "../../src/gen/crafting/v1/sync_pb";
import { freshId, serviceToken } from "../support/tokens";
import { call, errorOf, RawSocket, serviceCall } from "./helpers";
import { minimalProgress, watchedSession } from "./stream-helpers";

interface Clock {
  anchorAtMs: string;
  anchorElapsedMs: number;
}

async function stateOf(response: Response): Promise<{ seq: number; clock: Clock }> {
  expect(response.status).toBe(200);
  return (await response.json()) as { seq: number; clock: Clock };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A body as written, or under proto3 JSON names (`session_id` → `sessionId`), as a generated client writes it. */
function named(camel: boolean, body: unknown): object {
  const rename = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rename);
    if (typeof value !== "object" || value === null) return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
        rename(item),
      ]),
    );
  };
  return (camel ? rename(body) : body) as object;
}

const progress = (sessionId: string, body: object) =>
  serviceCall(`/udp/sessions/${sessionId}/progress`, body);

describe("progress readings with as_of_ms", () => {
  it("anchors the clock at the reading's time, and a stale retry changes nothing and sends nothing", async () => {
    const { sessionId, socket } = await watchedSession();
    // Readings taken after the start, arriving a little later.
    const takenAt = Date.now();
    await sleep(300);
    const placed = await stateOf(
      await progress(sessionId, { elapsed_ms: 5_000, as_of_ms: takenAt }),
    );
    expect(placed.clock).toMatchObject({ anchorAtMs: String(takenAt), anchorElapsedMs: 5_000 });

    // A newer reading, then the first one's retry, then an older one in binary protobuf.
    const newer = await stateOf(
      await progress(sessionId, { elapsed_ms: 8_000, as_of_ms: takenAt + 100 }),
    );
    expect(newer.seq).toBe(placed.seq + 1);
    const retry = await stateOf(
      await progress(sessionId, { elapsed_ms: 5_000, as_of_ms: takenAt }),
    );
    expect(retry).toMatchObject({ seq: newer.seq, clock: newer.clock });
    const binary = await call(`/udp/sessions/${sessionId}/progress`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await serviceToken()}`,
        "Content-Type": "application/x-protobuf",
      },
      body: toBinary(
        ProgressCorrectionRequestSchema,
        create(ProgressCorrectionRequestSchema, { elapsedMs: 1, asOfMs: BigInt(takenAt + 50) }),
      ),
    });
    expect(await stateOf(binary)).toMatchObject({ seq: newer.seq, clock: newer.clock });

    // The watcher saw the two readings that changed something, and nothing else.
    const marker = await stateOf(await progress(sessionId, { elapsed_ms: 9_000 }));
    await socket.until(() => socket.frames.some((f) => f.seq === marker.seq), "the marker");
    expect(socket.frames.filter((f) => f.update).map((f) => f.seq)).toEqual([
      placed.seq,
      newer.seq,
      marker.seq,
    ]);
  });

  it("takes as_of_ms in a batch, skipping a stale update; refuses a time far ahead or malformed", async () => {
    const { sessionId } = await watchedSession();
    const now = Date.now();
    await sleep(1_000);
    const batch = await serviceCall("/v1/progress", {
      updates: [
        { session_id: sessionId, elapsed_ms: 3_000, as_of_ms: now + 500 },
        { session_id: sessionId, elapsed_ms: 1_000, as_of_ms: now + 100 },
      ],
    });
    expect(batch.status).toBe(200);
    const view = await stateOf(await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET"));
    expect(view.clock).toMatchObject({ anchorAtMs: String(now + 500), anchorElapsedMs: 3_000 });

    expect(
      await errorOf(await progress(sessionId, { elapsed_ms: 1, as_of_ms: now + 120_000 })),
    ).toEqual({
      status: 400,
      code: "invalid_argument",
      message: "as_of_ms lies more than a minute in the future; check the sender's clock",
    });
    for (const asOf of ["yesterday", 1.5, -1, 0]) {
      expect(
        await errorOf(await progress(sessionId, { elapsed_ms: 1, as_of_ms: asOf })),
      ).toMatchObject({
        status: 400,
        message: expect.stringContaining("as_of_ms"),
      });
    }
    const after = await stateOf(await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET"));
    expect(after.seq).toBe(view.seq);
  });

  it("takes the proto3 JSON form: camelCase names, as_of_ms as a string; materials and batches too", async () => {
    const { sessionId } = await watchedSession();
    const takenAt = Date.now();
    await sleep(200);
    const placed = await stateOf(
      await progress(sessionId, { elapsedMs: 4_000, rate: 2, asOfMs: String(takenAt) }),
    );
    expect(placed.clock).toMatchObject({
      anchorAtMs: String(takenAt),
      anchorElapsedMs: 4_000,
      rate: 2,
    });
    // The snake_case name wins when both are sent.
    const both = await stateOf(
      await progress(sessionId, { elapsed_ms: 6_000, elapsedMs: 1, as_of_ms: takenAt + 100 }),
    );
    expect(both.clock).toMatchObject({ anchorElapsedMs: 6_000 });
    const batch = await serviceCall("/v1/progress", {
      updates: [{ sessionId, progressPercent: 10, asOfMs: String(takenAt + 150) }],
    });
    expect(await batch.json()).toEqual({
      sessions: [{ session_id: sessionId, updates: [0], seq: both.seq + 1 }],
    });
    const materials = await serviceCall(`/udp/sessions/${sessionId}/materials`, {
      changes: [{ materialId: "iron-ore", quantity: 2 }],
      asOfMs: String(takenAt),
    });
    expect(materials.status).toBe(200);
    for (const asOf of ["1.5", "-1", "12345678901234567", " 1"]) {
      expect(
        await errorOf(await progress(sessionId, { elapsedMs: 1, asOfMs: asOf })),
        asOf,
      ).toMatchObject({
        status: 400,
        message: "asOfMs must be a time in milliseconds since the Unix epoch",
      });
    }
  });

  it("creates sessions and workflows from camelCase bodies exactly as from snake_case ones", async () => {
    const created = async (path: string, body: object) => {
      const response = await serviceCall(path, body);
      expect(response.status, JSON.stringify(body)).toBe(201);
      return response.json() as Promise<Record<string, unknown>>;
    };
    const session = (id: string, camel: boolean) =>
      named(camel, {
        session_id: id,
        player_id: "p-camel",
        recipe_id: "iron-sword",
        workflow_id: "w-none",
        steps: [{ name: "smelt", duration_ms: 60_000 }],
        materials: [{ material_id: "iron-ore", required: 2, available: 1 }],
      });
    // What the body decides, as the answer shows it.
    const given = (state: Record<string, unknown>) => {
      const { progress, clock } = state as {
        progress: { steps: unknown[] };
        clock: { totalDurationMs: number };
      };
      return {
        sessionId: state.sessionId,
        playerId: state.playerId,
        recipeId: state.recipeId,
        workflowId: state.workflowId,
        materials: state.materials,
        steps: progress.steps,
        totalDurationMs: clock.totalDurationMs,
      };
    };
    const snakeId = freshId("s");
    const camelId = freshId("s");
    const snake = given(await created("/v1/sessions", session(snakeId, false)));
    const camel = given(await created("/v1/sessions", session(camelId, true)));
    expect(camel).toEqual({
      sessionId: camelId,
      playerId: "p-camel",
      recipeId: "iron-sword",
      workflowId: "w-none",
      materials: [{ materialId: "iron-ore", required: 2, available: 1 }],
      steps: [{ name: "smelt", durationMs: 60_000, status: "STEP_STATUS_PENDING" }],
      totalDurationMs: 60_000,
    });
    expect({ ...snake, sessionId: camelId }).toEqual(camel);

    const workflow = (id: string, camel: boolean) =>
      named(camel, {
        workflow_id: id,
        player_id: "p-camel",
        steps: [
          {
            name: "smelt",
            recipe_id: "smelt-recipe",
            steps: [{ name: "work", duration_ms: 60_000 }],
            materials: [{ material_id: "iron-ore", required: 1 }],
          },
        ],
      });
    const shape = (answer: Record<string, unknown>) => ({
      playerId: answer.playerId,
      steps: (
        answer.steps as { name: string; recipeId: string; clock: { totalDurationMs: number } }[]
      ).map(({ name, recipeId, clock }) => ({ name, recipeId, ms: clock.totalDurationMs })),
    });
    const snakeWorkflow = freshId("w");
    const camelWorkflow = freshId("w");
    const w1 = await created("/v1/workflows", workflow(snakeWorkflow, false));
    const w2 = await created("/v1/workflows", workflow(camelWorkflow, true));
    expect(w2.workflowId).toBe(camelWorkflow);
    expect(shape(w2)).toEqual({
      playerId: "p-camel",
      steps: [{ name: "smelt", recipeId: "smelt-recipe", ms: 60_000 }],
    });
    expect(shape(w1)).toEqual(shape(w2));
    // Its step's session holds the materials it was given.
    const step = (await (
      await serviceCall(`/v1/sessions/${camelWorkflow}.0`, undefined, "GET")
    ).json()) as { materials: unknown };
    expect(step.materials).toMatchObject([{ materialId: "iron-ore", required: 1 }]);
  });

  it("says changed: false where nothing changed: minimal answers, batch entries, stream acks", async () => {
    const { sessionId } = await watchedSession();
    const takenAt = Date.now();
    await sleep(200);
    const minimal = async (body: object) => (await minimalProgress(sessionId, body)).json();
    const placed = (await minimal({ elapsed_ms: 3_000, as_of_ms: takenAt + 100 })) as {
      seq: number;
    };
    expect(placed).not.toHaveProperty("changed");
    expect(await minimal({ elapsed_ms: 1_000, as_of_ms: takenAt })).toMatchObject({
      seq: placed.seq,
      changed: false,
    });

    const batch = await serviceCall("/v1/progress", {
      updates: [{ session_id: sessionId, elapsed_ms: 1, as_of_ms: takenAt }],
    });
    expect(await batch.json()).toEqual({
      sessions: [{ session_id: sessionId, updates: [0], seq: placed.seq, changed: false }],
    });

    const stream = await call("/v1/progress/stream", {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await serviceToken()}` },
    });
    const socket = new RawSocket(stream.webSocket as WebSocket);
    socket.ws.send(
      JSON.stringify({ ref: 1, session_id: sessionId, elapsed_ms: 1, as_of_ms: takenAt }),
    );
    socket.ws.send(JSON.stringify({ ref: 2, session_id: sessionId, elapsed_ms: 9_000 }));
    await socket.until(
      () => socket.messages.length > 0 && String(socket.messages.at(-1)).includes('"ref":2'),
      "two acks",
    );
    const acks = socket.messages.flatMap((m) => JSON.parse(String(m)) as object[]);
    expect(acks[0]).toEqual({
      ref: 1,
      session_id: sessionId,
      epoch: expect.any(Number),
      seq: placed.seq,
      changed: false,
    });
    expect(acks[1]).toMatchObject({ ref: 2, seq: placed.seq + 1 });
    expect(acks[1]).not.toHaveProperty("changed");
    socket.ws.close(1000);
  });
});
