/**
 * The operator scope, in workerd: an operator watches any session, queue and
 * workflow stream and the health stream (101), reads sessions, and may not
 * create or drive anything (403); their streams take slots of their own,
 * and every watch of what another player owns is audit-logged.
 */
import { env, exports } from "cloudflare:workers";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { describe, expect, it, vi } from "vitest";
import { CraftingStreamingService } from "../../src/gen/crafting/v1/streaming_service_pb";
import { freshId, token } from "../support/tokens";
import { call, createSession, serviceCall, TestSocket } from "./helpers";
import { playerStreams } from "./stream-helpers";

const operatorToken = (name = "alice") => token(name, "operator");

async function open(path: string, bearer: string) {
  const response = await call(path, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}` },
  });
  return {
    status: response.status,
    socket: response.webSocket ? new TestSocket(response.webSocket) : null,
  };
}

async function startedSession() {
  const sessionId = freshId("s");
  const playerId = freshId("p");
  expect((await createSession(sessionId, playerId)).status).toBe(201);
  expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
  return { sessionId, playerId };
}

describe("an operator", () => {
  it("watches a player's session live, on slots of their own, and the watch is audit-logged", async () => {
    const { sessionId, playerId } = await startedSession();
    const lines: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
    try {
      const { status, socket } = await open(`/ws/crafting/${sessionId}`, await operatorToken());
      expect(status).toBe(101);
      const [snapshot] = (await socket?.frameCount(1)) ?? [];
      expect(snapshot).toMatchObject({ snapshot: { session: { sessionId, playerId } } });
      expect(
        (await serviceCall(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: 5_000 })).status,
      ).toBe(200);
      expect((await socket?.frameCount(2))?.[1]).toMatchObject({ update: { cause: "progress" } });
      // The player's slots are untouched; the operator's own hold the stream.
      expect(await playerStreams(playerId)).toHaveLength(0);
      expect(await env.PLAYER.getByName("operator:alice").streams()).not.toHaveLength(0);
      const audit = lines
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        })
        .find((e) => e.event === "operator.watch" && e.target === sessionId);
      expect(audit).toMatchObject({ operator: "alice", kind: "session", via: "websocket" });
      socket?.ws.close(1000);
    } finally {
      spy.mockRestore();
    }
  });

  it("watches a player's queue and workflow, and the health stream", async () => {
    const { playerId } = await startedSession();
    const bearer = await operatorToken();
    const queue = await open(`/ws/queue/${playerId}`, bearer);
    expect(queue.status).toBe(101);
    expect((await queue.socket?.frameCount(1))?.[0]).toHaveProperty("snapshot");

    const workflowId = freshId("w");
    const created = await serviceCall("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: [{ name: "smelt", recipe_id: "r", steps: [{ name: "work", duration_ms: 60_000 }] }],
    });
    expect(created.status).toBe(201);
    const workflow = await open(`/ws/workflow/${workflowId}`, bearer);
    expect(workflow.status).toBe(101);

    const health = await open("/health/ws", bearer);
    expect(health.status).toBe(101);
    expect((await health.socket?.frameCount(1))?.[0]).toMatchObject({
      health: { status: expect.stringMatching(/^HEALTH_STATUS_/) },
    });
    for (const s of [queue, workflow, health]) s.socket?.ws.close(1000);
  });

  it("follows a player's session over a streaming RPC", async () => {
    const { sessionId } = await startedSession();
    const rpc = createClient(
      CraftingStreamingService,
      createConnectTransport({
        baseUrl: "https://crafting.test",
        fetch: (input, init) =>
          exports.default.fetch(new Request(input as RequestInfo, { ...init, redirect: "manual" })),
      }),
    );
    const controller = new AbortController();
    const stream = rpc.streamCraftingProgress(
      { sessionId },
      { headers: { Authorization: `Bearer ${await operatorToken()}` }, signal: controller.signal },
    );
    const { value } = await stream[Symbol.asyncIterator]().next();
    expect(value).toMatchObject({ snapshot: true });
    controller.abort();
  });

  it("reads sessions, workflows, dead letters and metrics, and may not create or drive anything", async () => {
    const { sessionId, playerId } = await startedSession();
    const headers = { Authorization: `Bearer ${await operatorToken()}` };
    const get = (path: string) => call(path, { headers });
    const change = (path: string, body: unknown, method = "POST") =>
      call(path, {
        method,
        headers: { ...headers, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await get(`/v1/sessions/${sessionId}`)).status).toBe(200);
    expect((await get("/v1/events/dead-letters")).status).toBe(200);
    expect((await get("/metrics")).status).toBe(200);
    const before = await (await get(`/v1/sessions/${sessionId}`)).json();

    const refused = [
      await change("/v1/sessions", { session_id: freshId("s"), player_id: playerId }),
      await change(`/v1/sessions/${sessionId}/pause`, {}),
      await change(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: 1 }),
      await change("/v1/progress", { updates: [{ session_id: sessionId, elapsed_ms: 1 }] }),
      await change("/v1/events", []),
      await change("/v1/workflows", { player_id: playerId, steps: [] }),
      await change(`/v1/players/${playerId}/slots`, { slots: 3 }, "PUT"),
    ];
    for (const response of refused) {
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({
        error: { code: "permission_denied", message: expect.stringMatching(/operator/) },
      });
    }
    const after = (await (await get(`/v1/sessions/${sessionId}`)).json()) as { seq: number };
    expect(after.seq).toBe((before as { seq: number }).seq);
  });

  it("is refused on a player's sync channel, which only the player opens", async () => {
    const { sessionId } = await startedSession();
    const response = await call(`/udp/sessions/${sessionId}/connect`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await operatorToken()}`,
        "Content-Type": "application/json",
      },
      body: "{}",
    });
    expect(response.status).toBe(403);
  });
});
