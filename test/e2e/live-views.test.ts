/**
 * The three live views besides a session's progress — a player's queue, a
 * workflow and material notifications — as a game client sees them over a
 * real `wrangler dev`.
 */
import { describe, expect, inject, it } from "vitest";
import { servicePost } from "../support/http";
import { freshId, token } from "../support/tokens";
import { type Frame, openWs, type WsClient } from "../support/ws-client";

const baseUrl = inject("baseUrl");
const service = (path: string, body?: unknown) => servicePost(baseUrl, path, body);

async function watch(path: string, playerId: string): Promise<WsClient> {
  const opened = await openWs(`${baseUrl.replace(/^http/, "ws")}${path}`, {
    headers: { Authorization: `Bearer ${await token(playerId)}` },
  });
  if (!opened.ok) throw new Error(`refused: ${opened.status} ${opened.body}`);
  return opened.client;
}

type QueueEntry = { requestId: string; status: string; queuePosition?: number };
const queueOf = (frame: Frame | undefined): QueueEntry[] =>
  (
    ((frame?.snapshot as { queue?: unknown } | undefined)?.queue ?? frame?.queue) as {
      entries?: QueueEntry[];
    }
  )?.entries ?? [];

describe("live views over wrangler dev", () => {
  it("streams a player's queue as their sessions are created, started and completed", async () => {
    const playerId = freshId("p");
    const queue = await watch(`/ws/queue/${playerId}`, playerId);
    await queue.frameCount(1);
    const [a, b] = [freshId("s"), freshId("s")];
    for (const sessionId of [a, b]) {
      const created = await service("/v1/sessions", {
        session_id: sessionId,
        player_id: playerId,
        recipe_id: "iron-sword",
        steps: [{ name: "forge", duration_ms: 30_000 }],
      });
      expect(created.status).toBe(201);
    }
    await queue.until(() => queueOf(queue.frames.at(-1)).length === 2, "two requests");
    expect(queueOf(queue.frames.at(-1)).map((e) => [e.requestId, e.queuePosition])).toEqual([
      [a, 1],
      [b, 2],
    ]);
    await service(`/v1/sessions/${a}/start`);
    await queue.until(
      () => queueOf(queue.frames.at(-1))[0]?.status === "QUEUE_ENTRY_STATUS_PROCESSING",
      "a processing",
    );
    await service(`/v1/sessions/${a}/complete`);
    await queue.until(
      () =>
        queueOf(queue.frames.at(-1))
          .map((e) => e.requestId)
          .join() === b,
      "only b left",
    );
    expect(queueOf(queue.frames.at(-1))[0]).toMatchObject({ requestId: b, queuePosition: 1 });
    // Every frame continues the previous one.
    const seqs = queue.frames.map((f) => f.seq as number);
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i));
    queue.close();
  });

  it("refuses to show a player's queue to another player with 403", async () => {
    const opened = await openWs(`${baseUrl.replace(/^http/, "ws")}/ws/queue/${freshId("p")}`, {
      headers: { Authorization: `Bearer ${await token(freshId("intruder"))}` },
    });
    expect(opened).toMatchObject({ ok: false, status: 403 });
  });

  it("streams a workflow step by step to completion", async () => {
    const playerId = freshId("p");
    const workflowId = freshId("w");
    const created = await service("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: ["smelt", "forge"].map((name) => ({
        name,
        recipe_id: `r-${name}`,
        steps: [{ name: "work", duration_ms: 20_000 }],
      })),
    });
    expect(created.status).toBe(201);
    const workflow = await watch(`/ws/workflow/${workflowId}`, playerId);
    const [snapshot] = await workflow.frameCount(1);
    expect(snapshot).toMatchObject({
      snapshot: { workflow: { workflowId, totalSteps: 2, currentStepName: "smelt" } },
    });
    await service(`/v1/sessions/${workflowId}.0/complete`);
    await workflow.until(
      () =>
        (workflow.frames.at(-1)?.workflow as { currentStepIndex?: number })?.currentStepIndex === 1,
      "the second step",
    );
    await service(`/v1/sessions/${workflowId}.1/complete`);
    const closed = await workflow.closing();
    expect(closed.code).toBe(1000);
    expect(workflow.frames.at(-1)).toMatchObject({
      workflow: { status: "WORKFLOW_STATUS_COMPLETED", overallProgress: 100 },
    });
  });

  it("notifies a session's watcher of material changes at once", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    await service("/v1/sessions", {
      session_id: sessionId,
      player_id: playerId,
      recipe_id: "iron-sword",
      steps: [{ name: "forge", duration_ms: 30_000 }],
      materials: [{ material_id: "iron-ore", required: 3 }],
    });
    const session = await watch(`/ws/crafting/${sessionId}`, playerId);
    await session.frameCount(1);
    const report = await service(`/v1/players/${playerId}/materials`, {
      changes: [{ material_id: "iron-ore", quantity: 1 }],
    });
    expect(report.status).toBe(200);
    const [, notified] = await session.frameCount(2);
    expect(notified).toMatchObject({
      material: { sessionId, changes: [{ materialId: "iron-ore", quantity: 1, available: true }] },
    });
    session.close();
  });
});
