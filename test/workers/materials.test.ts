/** Material availability: notifications to a session's subscribers, state, and per-player fan-out. */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { freshId, token } from "../support/tokens";
import { call, type Frame, serviceCall, watch } from "./helpers";

/** Creates and starts a session of `playerId` requiring `materials` (2 of each). */
async function craft(playerId: string, materials: string[], sessionId = freshId("s")) {
  const created = await serviceCall("/v1/sessions", {
    session_id: sessionId,
    player_id: playerId,
    recipe_id: "iron-sword",
    steps: [{ name: "forge", duration_ms: 60_000 }],
    materials: materials.map((material_id) => ({ material_id, required: 2 })),
  });
  expect(created.status).toBe(201);
  expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
  return sessionId;
}

const materialOf = (frame: Frame | undefined) => frame?.material as Record<string, unknown>;

describe("material notifications", () => {
  it("reach the session's subscribers at once, and the state shows what is missing", async () => {
    const playerId = freshId("p");
    const sessionId = await craft(playerId, ["ore", "coal"]);
    const socket = await watch(sessionId, await token(playerId));
    const [snapshot] = await socket.frameCount(1);
    expect(snapshot).toMatchObject({
      snapshot: {
        session: {
          materials: [
            { materialId: "ore", required: 2, available: 2 },
            { materialId: "coal", required: 2, available: 2 },
          ],
        },
      },
    });

    const response = await serviceCall(`/udp/sessions/${sessionId}/materials`, {
      changes: [
        { material_id: "ore", quantity: 1 },
        { material_id: "gem", quantity: 4 },
      ],
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      results: unknown[];
      session: { materials: unknown[] };
    };
    expect(body.results).toEqual([
      { material_id: "ore", outcome: "applied" },
      { material_id: "gem", outcome: "not_required" },
    ]);
    expect(body.session.materials).toEqual([
      { materialId: "ore", required: 2, available: 1 },
      { materialId: "coal", required: 2, available: 2 },
    ]);

    const [, notified] = await socket.frameCount(2);
    expect(notified?.seq).toBe((snapshot?.seq as number) + 1);
    expect(materialOf(notified)).toMatchObject({
      sessionId,
      playerId,
      changes: [{ materialId: "ore", quantity: 1, available: true }],
    });
    // proto3 JSON leaves false out: not every material is there.
    expect(materialOf(notified).allAvailable).toBeUndefined();

    // Locked coal counts as none; then both come back and everything is available.
    await serviceCall(`/udp/sessions/${sessionId}/materials`, {
      changes: [{ material_id: "coal", quantity: 5, available: false }],
    });
    await serviceCall(`/udp/sessions/${sessionId}/materials`, {
      changes: [
        { material_id: "ore", quantity: 2 },
        { material_id: "coal", quantity: 5 },
      ],
    });
    const frames = await socket.frameCount(4);
    // (proto3 JSON leaves `available: false` out.)
    expect(materialOf(frames[2])?.changes).toEqual([{ materialId: "coal", quantity: 5 }]);
    expect(materialOf(frames[3])).toMatchObject({ allAvailable: true });
    const view = await (await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).json();
    expect(view).toMatchObject({
      materials: [
        { materialId: "ore", available: 2 },
        { materialId: "coal", available: 5 },
      ],
    });
  });

  it("converge whatever order reports arrive in, and a retried report changes nothing", async () => {
    const playerId = freshId("p");
    const sessionId = await craft(playerId, ["ore"]);
    const socket = await watch(sessionId, await token(playerId));
    await socket.frameCount(1);
    const now = Date.now();
    const report = (quantity: number, asOf: number) =>
      serviceCall(`/udp/sessions/${sessionId}/materials`, {
        changes: [{ material_id: "ore", quantity }],
        as_of_ms: asOf,
      });
    expect(await (await report(0, now)).json()).toMatchObject({
      results: [{ outcome: "applied" }],
    });
    // The retry, then an older report arriving late.
    expect(await (await report(0, now)).json()).toMatchObject({
      results: [{ outcome: "unchanged" }],
    });
    const late = (await (await report(9, now - 1_000)).json()) as {
      results: unknown[];
      session: { materials: { available?: number }[] };
    };
    expect(late.results).toEqual([{ material_id: "ore", outcome: "stale" }]);
    // proto3 JSON leaves zeros out: none available.
    expect(late.session.materials[0]?.available ?? 0).toBe(0);
    await socket.frameCount(2);
    // Nothing more was sent for the retry or the stale report.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(socket.frames).toHaveLength(2);
  });

  it("are replayed to a client resuming the stream", async () => {
    const playerId = freshId("p");
    const sessionId = await craft(playerId, ["ore"]);
    const bearer = await token(playerId);
    const first = await watch(sessionId, bearer);
    const [snapshot] = await first.frameCount(1);
    first.ws.close(1000);
    await serviceCall(`/udp/sessions/${sessionId}/materials`, {
      changes: [{ material_id: "ore", quantity: 0 }],
    });
    const resumed = await watch(
      sessionId,
      bearer,
      `?resume_epoch=${snapshot?.epoch}&resume_seq=${snapshot?.seq}`,
    );
    const frames = await resumed.frameCount(2);
    expect(materialOf(frames[0])).toMatchObject({ changes: [{ materialId: "ore" }] });
    expect(frames[1]).toMatchObject({ resumed: { replayed: 1 } });
  });
});

describe("a player's material change", () => {
  it("fans out to every unfinished session of theirs that requires the material", async () => {
    const playerId = freshId("p");
    const bearer = await token(playerId);
    const sword = await craft(playerId, ["ore"]);
    const axe = await craft(playerId, ["ore", "wood"]);
    const ring = await craft(playerId, ["gem"]);
    const ended = await craft(playerId, ["ore"]);
    await serviceCall(`/v1/sessions/${ended}/cancel`);
    const other = await craft(freshId("p"), ["ore"]);
    const sockets = await Promise.all([sword, axe, ring].map((id) => watch(id, bearer)));
    await Promise.all(sockets.map((s) => s.frameCount(1)));

    const response = await serviceCall(`/v1/players/${playerId}/materials`, {
      changes: [
        { material_id: "ore", quantity: 1 },
        { material_id: "wood", quantity: 0 },
      ],
    });
    expect(response.status).toBe(200);
    const { sessions } = (await response.json()) as {
      sessions: { session_id: string; results: unknown[] }[];
    };
    const bySession = Object.fromEntries(sessions.map((s) => [s.session_id, s.results]));
    expect(bySession).toEqual({
      [sword]: [{ material_id: "ore", outcome: "applied" }],
      [axe]: [
        { material_id: "ore", outcome: "applied" },
        { material_id: "wood", outcome: "applied" },
      ],
    });
    const [swordFrames, axeFrames] = await Promise.all(
      sockets.slice(0, 2).map((s) => s.frameCount(2)),
    );
    expect(materialOf(swordFrames[1])?.changes).toEqual([
      { materialId: "ore", quantity: 1, available: true },
    ]);
    expect(materialOf(axeFrames[1])?.changes).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sockets[2]?.frames).toHaveLength(1);
    const untouched = await (await serviceCall(`/v1/sessions/${other}`, undefined, "GET")).json();
    expect(untouched).toMatchObject({ materials: [{ materialId: "ore", available: 2 }] });
  });
  it("still reaches the sessions and their watchers after both objects hibernated", async () => {
    const playerId = freshId("p");
    const sessionId = await craft(playerId, ["ore"]);
    const socket = await watch(sessionId, await token(playerId));
    await socket.frameCount(1);
    await evictDurableObject(env.PLAYER.getByName(playerId));
    await evictDurableObject(env.CRAFTING_SESSION.getByName(sessionId), {
      webSockets: "hibernate",
    });
    const response = await serviceCall(`/v1/players/${playerId}/materials`, {
      changes: [{ material_id: "ore", quantity: 0 }],
    });
    expect(await response.json()).toMatchObject({
      sessions: [{ session_id: sessionId, results: [{ outcome: "applied" }] }],
    });
    const [, notified] = await socket.frameCount(2);
    expect(materialOf(notified)).toMatchObject({ changes: [{ materialId: "ore" }] });
  });
});

describe("material reports that cannot be taken", () => {
  it("get a clear error and change nothing", async () => {
    const playerId = freshId("p");
    const sessionId = await craft(playerId, ["ore"]);
    const path = `/udp/sessions/${sessionId}/materials`;
    const refusals: [unknown, number, RegExp][] = [
      [{}, 400, /changes must be an array/],
      [{ changes: [] }, 400, /at least one change/],
      [{ changes: [{ material_id: "ore", quantity: -1 }] }, 400, /quantity must be a whole number/],
      [
        { changes: [{ material_id: "ore", quantity: 1.5 }] },
        400,
        /quantity must be a whole number/,
      ],
      [
        { changes: [{ material_id: "ore", quantity: 1, available: "yes" }] },
        400,
        /available must be a boolean/,
      ],
      [
        {
          changes: [
            { material_id: "ore", quantity: 1 },
            { material_id: "ore", quantity: 2 },
          ],
        },
        400,
        /appears twice/,
      ],
      [{ changes: [{ material_id: "", quantity: 1 }] }, 400, /material_id must be/],
      [
        { changes: [{ material_id: "ore", quantity: 1 }], as_of_ms: Date.now() + 3_600_000 },
        400,
        /future/,
      ],
      [
        { changes: Array.from({ length: 65 }, (_, i) => ({ material_id: `m${i}`, quantity: 1 })) },
        400,
        /at most 64/,
      ],
    ];
    for (const [body, status, message] of refusals) {
      const response = await serviceCall(path, body);
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
        message,
      );
    }
    expect(
      (
        await serviceCall(`/udp/sessions/${freshId("s")}/materials`, {
          changes: [{ material_id: "ore", quantity: 1 }],
        })
      ).status,
    ).toBe(404);
    const asPlayer = await call(path, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await token(playerId)}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ changes: [{ material_id: "ore", quantity: 0 }] }),
    });
    expect(asPlayer.status).toBe(403);
    await serviceCall(`/v1/sessions/${sessionId}/complete`);
    expect(
      (await serviceCall(path, { changes: [{ material_id: "ore", quantity: 0 }] })).status,
    ).toBe(409);
    const view = await (await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).json();
    expect(view).toMatchObject({ materials: [{ materialId: "ore", available: 2 }] });
    const badCreate = await serviceCall("/v1/sessions", {
      player_id: playerId,
      recipe_id: "r",
      steps: [{ name: "a", duration_ms: 1 }],
      materials: [{ material_id: "ore", required: -2 }],
    });
    expect(badCreate.status).toBe(400);
  });
});
