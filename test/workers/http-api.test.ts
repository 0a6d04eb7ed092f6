import { listDurableObjectIds } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  expiredToken,
  freshId,
  serviceToken,
  token,
  unsignedToken,
  wrongKeyToken,
} from "../support/tokens";
import { call, createSession, errorOf, openStream, serviceCall, watch } from "./helpers";
import { minimalProgress, watchedSession } from "./stream-helpers";

async function objectExists(sessionId: string): Promise<boolean> {
  const id = env.CRAFTING_SESSION.idFromName(sessionId);
  return (await listDurableObjectIds(env.CRAFTING_SESSION)).some((other) => other.equals(id));
}

describe("health", () => {
  it("reports liveness, version and bindings", async () => {
    const response = await call("/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: "ok",
      version: env.SERVICE_VERSION,
      bindings: { CRAFTING_SESSION: "ok", JWT_SECRET: "ok" },
    });
  });
});

describe("authentication", () => {
  const badTokens: [string, (player: string) => Promise<string | null> | string | null][] = [
    ["no token", () => null],
    ["a malformed token", () => "not-a-jwt"],
    ["an alg:none token", (p) => unsignedToken(p)],
    ["a token signed with another key", (p) => wrongKeyToken(p)],
    ["an expired token", (p) => expiredToken(p)],
  ];

  for (const [what, make] of badTokens) {
    it(`answers a stream upgrade with ${what} with 401 before touching the session object`, async () => {
      const sessionId = freshId("s");
      const playerId = freshId("p");
      const bearer = await make(playerId);
      const headers: Record<string, string> = { Upgrade: "websocket" };
      if (bearer) headers.Authorization = `Bearer ${bearer}`;
      const response = await call(`/ws/crafting/${sessionId}`, { headers });
      expect(response.status).toBe(401);
      expect(response.webSocket).toBeNull();
      expect((await errorOf(response)).code).toBe("unauthenticated");
      expect(await objectExists(sessionId)).toBe(false);
    });

    it(`answers a crafting-service call with ${what} with 401`, async () => {
      const bearer = await make("crafting-service");
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (bearer) headers.Authorization = `Bearer ${bearer}`;
      const response = await call("/v1/sessions", { method: "POST", headers, body: "{}" });
      expect(await errorOf(response)).toMatchObject({ status: 401, code: "unauthenticated" });
    });
  }

  it("refuses a token in the query string, even a valid one", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const bearer = await token(playerId);
    const response = await call(`/ws/crafting/${sessionId}?access_token=${bearer}`, {
      headers: { Upgrade: "websocket" },
    });
    expect(await errorOf(response)).toMatchObject({ status: 400, code: "invalid_argument" });
    const withHeaderToo = await call(`/ws/crafting/${sessionId}?token=${bearer}`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}` },
    });
    expect(withHeaderToo.status).toBe(400);
  });

  it("answers 403 when a player watches another player's session", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("owner"));
    const { response } = await openStream(sessionId, await token(freshId("intruder")));
    expect(await errorOf(response)).toMatchObject({ status: 403, code: "permission_denied" });
  });

  it("answers 404 for a stream of a session that does not exist", async () => {
    const { response } = await openStream(freshId("s"), await token(freshId("p")));
    expect(await errorOf(response)).toMatchObject({ status: 404, code: "not_found" });
  });

  it("keeps player tokens off crafting-service routes and service tokens off player streams", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const asPlayer = await call(`/v1/sessions/${sessionId}/start`, {
      method: "POST",
      headers: { Authorization: `Bearer ${await token(playerId)}` },
    });
    expect(await errorOf(asPlayer)).toMatchObject({ status: 403, code: "permission_denied" });
    const { response } = await openStream(sessionId, await serviceToken());
    expect(response.status).toBe(403);
    const view = await (await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).json();
    expect(view).toMatchObject({ status: "SESSION_STATUS_QUEUED", seq: 1 });
  });

  it("lets a browser authenticate through the subprotocol list and echoes only crafting.v1.json", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const response = await call(`/ws/crafting/${sessionId}`, {
      headers: {
        Upgrade: "websocket",
        "Sec-WebSocket-Protocol": `crafting.v1.json, bearer.${await token(playerId)}`,
      },
    });
    expect(response.status).toBe(101);
    expect(response.headers.get("Sec-WebSocket-Protocol")).toBe("crafting.v1.json");
    response.webSocket?.accept();
    response.webSocket?.close(1000);
  });

  it("refuses a stream that offers only subprotocols the service does not speak", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const { response } = await openStream(sessionId, await token(playerId), {
      "Sec-WebSocket-Protocol": "mqtt",
    });
    expect(await errorOf(response)).toMatchObject({ status: 400, code: "invalid_argument" });
  });

  it("answers a plain GET on a stream route with 400", async () => {
    const response = await call(`/ws/crafting/${freshId("s")}`, {
      headers: { Authorization: `Bearer ${await token(freshId("p"))}` },
    });
    expect(await errorOf(response)).toMatchObject({ status: 400, code: "invalid_argument" });
  });
});

describe("crafting-service session API", () => {
  it("creates a session with a generated id and returns it", async () => {
    const response = await serviceCall("/v1/sessions", {
      player_id: "p-1",
      recipe_id: "r-1",
      steps: [{ name: "brew", duration_ms: 1_000 }],
    });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { sessionId: string };
    expect(body.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body).toMatchObject({
      playerId: "p-1",
      recipeId: "r-1",
      status: "SESSION_STATUS_QUEUED",
      seq: 1,
    });
  });

  it("answers a repeated identical create with 200 and a conflicting one with 409", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    expect((await createSession(sessionId, playerId)).status).toBe(200);
    expect(await errorOf(await createSession(sessionId, freshId("other")))).toMatchObject({
      status: 409,
      code: "already_exists",
    });
  });

  it("answers an illegal transition with 409 and leaves the session unchanged", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("p"));
    const response = await serviceCall(`/v1/sessions/${sessionId}/resume`);
    expect(await errorOf(response)).toMatchObject({
      status: 409,
      code: "failed_precondition",
      message: "cannot resume a session that is queued",
    });
    const view = await (await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).json();
    expect(view).toMatchObject({ status: "SESSION_STATUS_QUEUED", seq: 1 });
  });

  it("answers a retried lifecycle call with the session as it is: one change, one update sent", async () => {
    const { sessionId, socket } = await watchedSession();
    for (const [action, status, seq] of [
      ["start", "ACTIVE", 2],
      ["pause", "PAUSED", 3],
      ["pause", "PAUSED", 3],
      ["fail", "FAILED", 4],
    ] as const) {
      const response = await serviceCall(`/v1/sessions/${sessionId}/${action}`, { reason: action });
      expect(response.status, action).toBe(200);
      expect(await response.json()).toMatchObject({ status: `SESSION_STATUS_${status}`, seq });
    }
    // The first reason is kept; the watcher saw the pause once and the end once.
    const failed = await serviceCall(`/v1/sessions/${sessionId}/fail`, { reason: "other" });
    expect(await failed.json()).toMatchObject({ seq: 4, failureReason: "fail" });
    await socket.closing();
    expect(socket.frames.filter((f) => f.update).map((f) => f.seq)).toEqual([3, 4]);
  });

  it("records the reason a session failed", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("p"));
    const response = await serviceCall(`/v1/sessions/${sessionId}/fail`, { reason: "out of coal" });
    expect(await response.json()).toMatchObject({
      status: "SESSION_STATUS_FAILED",
      failureReason: "out of coal",
    });
  });

  it.each([
    [{ player_id: "p", recipe_id: "r", steps: [] }, "steps"],
    [
      { player_id: "p", recipe_id: "r", steps: [{ name: "a", duration_ms: 0 }] },
      "steps[0].duration_ms",
    ],
    [{ player_id: "p", recipe_id: "r", steps: [{ duration_ms: 5 }] }, "steps[0].name"],
    [{ player_id: "p p", recipe_id: "r", steps: [{ name: "a", duration_ms: 5 }] }, "player_id"],
    [{ player_id: "p", steps: [{ name: "a", duration_ms: 5 }] }, "recipe_id"],
    [
      { player_id: "p", recipe_id: "r", steps: [{ name: "a", duration_ms: 604_800_001 }] },
      "7 days",
    ],
    [[1, 2], "JSON object"],
  ])("refuses the create body %j, naming %s", async (body, field) => {
    const error = await errorOf(await serviceCall("/v1/sessions", body));
    expect(error).toMatchObject({ status: 400, code: "invalid_argument" });
    expect(error.message).toContain(field);
  });

  it("refuses a body over 64 KB with 413 and a non-JSON body with 400 or 415", async () => {
    const bearer = await serviceToken();
    const big = await call("/v1/sessions", {
      method: "POST",
      headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
      body: JSON.stringify({ padding: "x".repeat(70_000) }),
    });
    expect(await errorOf(big)).toMatchObject({ status: 413, code: "payload_too_large" });
    const garbage = await call("/v1/sessions", {
      method: "POST",
      headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
      body: "{oops",
    });
    expect(await errorOf(garbage)).toMatchObject({ status: 400, code: "invalid_argument" });
    const text = await call("/v1/sessions", {
      method: "POST",
      headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "text/plain" },
      body: "hello",
    });
    expect(await errorOf(text)).toMatchObject({ status: 415, code: "unsupported_media_type" });
  });

  it("refuses a progress correction for a session that is not running, unchanged", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("p"));
    const response = await serviceCall(`/udp/sessions/${sessionId}/progress`, {
      progress_percent: 50,
    });
    expect(await errorOf(response)).toMatchObject({ status: 409, code: "failed_precondition" });
    const bad = await serviceCall(`/udp/sessions/${sessionId}/progress`, {
      progress_percent: "half",
    });
    expect(await errorOf(bad)).toMatchObject({ status: 400, code: "invalid_argument" });
    const view = await (await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).json();
    expect(view).toMatchObject({ seq: 1 });
  });

  it("answers a progress correction with where the session stands when asked for a minimal answer", async () => {
    const { sessionId, socket } = await watchedSession();
    const response = await minimalProgress(sessionId, { progress_percent: 25 });
    expect(response.status).toBe(200);
    expect(response.headers.get("Preference-Applied")).toBe("return=minimal");
    const answer = (await response.json()) as Record<string, unknown>;
    expect(Object.keys(answer).sort()).toEqual(["epoch", "seq", "sessionId"]);
    expect(answer).toMatchObject({ sessionId, seq: 3 });
    // The change itself is whole: stored and delivered.
    const [, update] = await socket.frameCount(2);
    expect(update).toMatchObject({ seq: 3, epoch: answer.epoch });
    const view = (await (
      await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")
    ).json()) as { seq: number; progress: { progressPercent: number } };
    // The clock runs on from 25 % (a 2-minute plan moves ~0.008 % a second).
    expect(view).toMatchObject({ seq: 3 });
    expect(view.progress.progressPercent).toBeGreaterThanOrEqual(25);
    expect(view.progress.progressPercent).toBeLessThan(26);
  });
});

describe("POST /v1/progress (a batch of progress updates)", () => {
  it("applies each session's updates atomically: one update per session to its subscribers", async () => {
    const playerId = freshId("p");
    const [a, b, c] = [freshId("s"), freshId("s"), freshId("s")];
    for (const id of [a, b, c]) {
      await createSession(id, playerId);
      await serviceCall(`/v1/sessions/${id}/start`);
    }
    const socket = await watch(a, await token(playerId));
    const [snapshot] = await socket.frameCount(1);
    const response = await serviceCall("/v1/progress", {
      updates: [
        { session_id: a, progress_percent: 10 },
        { session_id: b, progress_percent: 30 },
        { session_id: a, progress_percent: 25 },
        { session_id: c, progress_percent: 50 },
        // Past its plan: refused by the session, which applies neither of its updates.
        { session_id: c, elapsed_ms: 10 ** 9 },
      ],
    });
    expect(response.status).toBe(200);
    const { sessions } = (await response.json()) as { sessions: Record<string, unknown>[] };
    expect(sessions).toEqual([
      { session_id: a, updates: [0, 2], seq: 3 },
      { session_id: b, updates: [1], seq: 3 },
      {
        session_id: c,
        updates: [3, 4],
        error: { code: "invalid_argument", message: expect.stringMatching(/update 2 of 2/) },
      },
    ]);
    // Session a's subscribers get one update with the last of its corrections.
    const [, update] = await socket.frameCount(2);
    expect(update?.seq).toBe((snapshot?.seq as number) + 1);
    // 25 % of its two minutes: the clock placed at 30 s.
    expect(update).toMatchObject({ update: { clock: { anchorElapsedMs: 30_000 } } });
    // Session c is untouched.
    const view = (await (await serviceCall(`/v1/sessions/${c}`, undefined, "GET")).json()) as {
      seq: number;
    };
    expect(view.seq).toBe(2);
  });

  it("refuses a malformed batch as a whole, naming the update", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("p"));
    await serviceCall(`/v1/sessions/${sessionId}/start`);
    for (const [body, message] of [
      [{}, /updates must be an array/],
      [{ updates: [] }, /updates must be an array/],
      [
        { updates: [{ session_id: sessionId, progress_percent: 5 }, { progress_percent: 5 }] },
        /updates\[1\]: session_id/,
      ],
      [
        { updates: [{ session_id: sessionId, progress_percent: "x" }] },
        /updates\[0\]: progress_percent must be a number/,
      ],
      [
        { updates: Array.from({ length: 1001 }, () => ({ session_id: sessionId, rate: 1 })) },
        /1-1000/,
      ],
    ] as const) {
      const response = await serviceCall("/v1/progress", body);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
        message,
      );
    }
    const view = (await (
      await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")
    ).json()) as {
      seq: number;
    };
    expect(view.seq).toBe(2);
  });
});
