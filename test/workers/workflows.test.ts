/** Multi-step workflows: each step a session; completion advances, failure fails; streamed live. */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CraftingWorkflow } from "../../durable-objects/crafting-workflow/crafting-workflow";
import { PROGRESS_NOTICE_INTERVAL_MS } from "../../src/domain/session/session-machine";
import { freshId, token } from "../support/tokens";
import { call, type Frame, overloaded, rebindIn, serviceCall, TestSocket } from "./helpers";

const STEPS = ["smelt", "forge", "polish"].map((name) => ({
  name,
  recipe_id: `${name}-recipe`,
  steps: [{ name: `${name}-work`, duration_ms: 60_000 }],
}));

async function createWorkflow(
  playerId: string,
  workflowId = freshId("w"),
): Promise<{ workflowId: string; body: Record<string, unknown> }> {
  const response = await serviceCall("/v1/workflows", {
    workflow_id: workflowId,
    player_id: playerId,
    steps: STEPS,
  });
  expect(response.status).toBe(201);
  return { workflowId, body: (await response.json()) as Record<string, unknown> };
}

async function watchWorkflow(workflowId: string, bearer: string): Promise<TestSocket> {
  const response = await call(`/ws/workflow/${workflowId}`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}` },
  });
  if (response.status !== 101 || !response.webSocket)
    throw new Error(`refused ${response.status}: ${await response.text()}`);
  return new TestSocket(response.webSocket);
}

const workflowOf = (frame: Frame | undefined) =>
  ((frame?.snapshot as { workflow?: unknown } | undefined)?.workflow ?? frame?.workflow) as
    | Record<string, unknown>
    | undefined;

async function view(workflowId: string): Promise<Record<string, unknown>> {
  return (await (
    await serviceCall(`/v1/workflows/${workflowId}`, undefined, "GET")
  ).json()) as Record<string, unknown>;
}

describe("workflows", () => {
  it("runs three steps to completion: each completion starts the next step's session", async () => {
    const playerId = freshId("p");
    const { workflowId, body } = await createWorkflow(playerId);
    expect(body).toMatchObject({
      workflowId,
      totalSteps: 3,
      currentStepName: "smelt",
      status: "WORKFLOW_STATUS_ACTIVE",
    });
    const socket = await watchWorkflow(workflowId, await token(playerId));
    await socket.frameCount(1);
    // The first step's session exists and is active.
    const first = (await (
      await serviceCall(`/v1/sessions/${workflowId}.0`, undefined, "GET")
    ).json()) as Record<string, unknown>;
    expect(first).toMatchObject({
      status: "SESSION_STATUS_ACTIVE",
      workflowId,
      recipeId: "smelt-recipe",
    });

    for (const index of [0, 1, 2]) {
      expect((await serviceCall(`/v1/sessions/${workflowId}.${index}/complete`)).status).toBe(200);
    }
    const done = await view(workflowId);
    expect(done).toMatchObject({
      status: "WORKFLOW_STATUS_COMPLETED",
      currentStepIndex: 2,
      overallProgress: 100,
    });
    expect((done.steps as { status: string }[]).map((s) => s.status)).toEqual(
      Array(3).fill("WORKFLOW_STATUS_COMPLETED"),
    );
    // The stream saw the advance and ended normally.
    await socket.until(
      () => socket.frames.some((f) => workflowOf(f)?.currentStepIndex === 1),
      "the advance to step 2",
    );
    expect((await socket.closing()).code).toBe(1000);
    expect(workflowOf(socket.frames.at(-1))).toMatchObject({ status: "WORKFLOW_STATUS_COMPLETED" });
  });

  it("starts a step whose session could not be started by itself, when it can", async () => {
    const playerId = freshId("p");
    const workflowId = freshId("w");
    const workflow = env.CRAFTING_WORKFLOW.getByName(workflowId);
    const session = async (index: number) => {
      const read = await serviceCall(`/v1/sessions/${workflowId}.${index}`, undefined, "GET");
      return read.status === 200 ? ((await read.json()) as { status: string }).status : read.status;
    };
    const busy = { create: overloaded, lifecycle: overloaded };
    // The first step's session overloaded as the workflow is created: created all the same.
    let reachable = await rebindIn(workflow, "CRAFTING_SESSION", () => busy);
    await createWorkflow(playerId, workflowId);
    expect(await session(0)).toBe(404);
    expect(await runDurableObjectAlarm(workflow)).toBe(true);
    expect(await session(0)).toBe(404);
    await reachable();
    expect(await runDurableObjectAlarm(workflow)).toBe(true);
    expect(await session(0)).toBe("SESSION_STATUS_ACTIVE");
    expect(await runDurableObjectAlarm(workflow)).toBe(false);

    // The next step's session overloaded as the first completes: the workflow
    // takes the completion (200), and starts the next step when it can.
    reachable = await rebindIn(workflow, "CRAFTING_SESSION", (name) =>
      name === `${workflowId}.1` ? busy : undefined,
    );
    expect((await serviceCall(`/v1/sessions/${workflowId}.0/complete`)).status).toBe(200);
    expect(await view(workflowId)).toMatchObject({ currentStepIndex: 1, currentStepName: "forge" });
    expect(await session(1)).toBe(404);
    await reachable();
    await evictDurableObject(workflow);
    expect(await runDurableObjectAlarm(workflow)).toBe(true);
    expect(await session(1)).toBe("SESSION_STATUS_ACTIVE");
    expect(await runDurableObjectAlarm(workflow)).toBe(false);
  });

  it("carries each step's clock, and takes a progress report only when it moves the step off its course", async () => {
    const playerId = freshId("p");
    const { workflowId } = await createWorkflow(playerId);
    const socket = await watchWorkflow(workflowId, await token(playerId));
    const [snapshot] = await socket.frameCount(1);
    // The first step's clock runs from its start: clients move the bar between frames.
    const stepsOf = (frame: Frame | undefined) =>
      (workflowOf(frame)?.steps ?? []) as Record<string, unknown>[];
    const firstStep = () => stepsOf(socket.frames.at(-1))[0];
    expect(firstStep()).toMatchObject({
      status: "WORKFLOW_STATUS_ACTIVE",
      clock: { rate: 1, running: true, totalDurationMs: 60_000 },
    });
    const startedAt = Number((firstStep()?.clock as { anchorAtMs?: string })?.anchorAtMs);
    expect(Number(snapshot?.serverTimeMs)).toBeGreaterThanOrEqual(startedAt);
    const logged = () =>
      runInDurableObject(
        env.CRAFTING_WORKFLOW.getByName(workflowId),
        (_w: CraftingWorkflow, state) =>
          [...state.storage.kv.list({ prefix: "workflow_log:" })].length,
      );
    const before = await logged();

    // Each report after the session's 1 s between notices, so none is merged away.
    const pause = () =>
      new Promise((resolve) => setTimeout(resolve, PROGRESS_NOTICE_INTERVAL_MS + 100));
    const report = (elapsedMs: number) =>
      serviceCall(`/udp/sessions/${workflowId}.0/progress`, { elapsed_ms: elapsedMs });
    await pause();
    // crafting-service reports what the plan says: the workflow has nothing new to show.
    expect((await report(Date.now() - startedAt)).status).toBe(200);
    await pause();
    expect((await report(Date.now() - startedAt)).status).toBe(200);
    await pause();
    // 30 s ahead of plan: the step's clock moves, and the frame says so.
    expect((await report(Date.now() - startedAt + 30_000)).status).toBe(200);
    const moved = (await socket.frameCount(2))[1];
    const step = stepsOf(moved)[0] as {
      progressPercent: number;
      clock: { anchorElapsedMs: number };
    };
    expect(step.clock.anchorElapsedMs).toBeGreaterThan(30_000);
    expect(step.progressPercent).toBeGreaterThan(50);
    expect(workflowOf(moved)?.overallProgress).toBeGreaterThan(50 / 3);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The reports that agreed made no frame and no row: only the one that moved did.
    expect(socket.frames).toHaveLength(2);
    expect(await logged()).toBe(before + 1);
  });

  it("fails when a step fails in the middle, and starts nothing after it", async () => {
    const playerId = freshId("p");
    const { workflowId } = await createWorkflow(playerId);
    await serviceCall(`/v1/sessions/${workflowId}.0/complete`);
    expect(
      (await serviceCall(`/v1/sessions/${workflowId}.1/fail`, { reason: "forge overheated" }))
        .status,
    ).toBe(200);
    expect(await view(workflowId)).toMatchObject({
      status: "WORKFLOW_STATUS_FAILED",
      currentStepIndex: 1,
    });
    expect((await serviceCall(`/v1/sessions/${workflowId}.2`, undefined, "GET")).status).toBe(404);
  });

  it("resumes a workflow stream with exactly what was missed, in order, then goes live", async () => {
    const playerId = freshId("p");
    const bearer = await token(playerId);
    const { workflowId } = await createWorkflow(playerId);
    const first = await watchWorkflow(workflowId, bearer);
    const [snapshot] = await first.frameCount(1);
    first.ws.close(1000);
    // Missed: the first step completes (the second starts), then a pause and its resume.
    expect((await serviceCall(`/v1/sessions/${workflowId}.0/complete`)).status).toBe(200);
    expect((await serviceCall(`/v1/workflows/${workflowId}/pause`)).status).toBe(200);
    expect((await serviceCall(`/v1/workflows/${workflowId}/resume`)).status).toBe(200);
    const now = await view(workflowId);
    expect(now).toMatchObject({ status: "WORKFLOW_STATUS_ACTIVE", currentStepIndex: 1 });
    const response = await call(
      `/ws/workflow/${workflowId}?resume_epoch=${snapshot?.epoch}&resume_seq=${snapshot?.seq}`,
      { headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}` } },
    );
    expect(response.status).toBe(101);
    const resumed = new TestSocket(response.webSocket as WebSocket);
    const from = snapshot?.seq as number;
    const held = await env.CRAFTING_WORKFLOW.getByName(workflowId).view();
    if (!held.ok) throw new Error(held.error.message);
    const missed = held.value.seq - from;
    expect(missed).toBeGreaterThanOrEqual(3);
    const frames = await resumed.frameCount(missed + 1);
    const replayed = frames.slice(0, missed);
    // Every change once, in order, each the whole workflow as it was then; no snapshot.
    expect(replayed.map((f) => f.seq)).toEqual(
      Array.from({ length: missed }, (_, i) => from + 1 + i),
    );
    expect(replayed.every((f) => f.workflow !== undefined && f.epoch === snapshot?.epoch)).toBe(
      true,
    );
    expect(replayed.map((f) => (workflowOf(f) as { status?: string }).status)).toContain(
      "WORKFLOW_STATUS_PAUSED",
    );
    expect(workflowOf(replayed.at(-1))).toMatchObject({
      status: "WORKFLOW_STATUS_ACTIVE",
      currentStepIndex: 1,
    });
    expect(frames[missed]).toMatchObject({ resumed: { fromSeq: from, replayed: missed } });
    // Then live: the next change arrives as it happens.
    expect((await serviceCall(`/v1/sessions/${workflowId}.1/complete`)).status).toBe(200);
    const [live] = (await resumed.frameCount(missed + 2)).slice(missed + 1);
    expect(live?.seq).toBe(from + missed + 1);
    expect(workflowOf(live)).toMatchObject({ currentStepIndex: 2 });
  });

  it("pauses and resumes the current step", async () => {
    const playerId = freshId("p");
    const { workflowId } = await createWorkflow(playerId);
    expect((await serviceCall(`/v1/workflows/${workflowId}/pause`)).status).toBe(200);
    expect(await view(workflowId)).toMatchObject({ status: "WORKFLOW_STATUS_PAUSED" });
    const session = (await (
      await serviceCall(`/v1/sessions/${workflowId}.0`, undefined, "GET")
    ).json()) as Record<string, unknown>;
    expect(session.status).toBe("SESSION_STATUS_PAUSED");
    expect((await serviceCall(`/v1/workflows/${workflowId}/resume`)).status).toBe(200);
    expect(await view(workflowId)).toMatchObject({ status: "WORKFLOW_STATUS_ACTIVE" });
  });

  it("cancels or fails the current step, with its reason: the workflow fails, its stream ends, nothing more starts", async () => {
    for (const action of ["cancel", "fail"] as const) {
      const playerId = freshId("p");
      const { workflowId } = await createWorkflow(playerId);
      const socket = await watchWorkflow(workflowId, await token(playerId));
      await socket.frameCount(1);
      await serviceCall(`/v1/sessions/${workflowId}.0/complete`);
      const reason = `the player gave up (${action})`;
      const response = await serviceCall(`/v1/workflows/${workflowId}/${action}`, { reason });
      expect(response.status, action).toBe(200);
      expect(await response.json()).toMatchObject({
        status: "WORKFLOW_STATUS_FAILED",
        currentStepIndex: 1,
      });
      const step = (await (
        await serviceCall(`/v1/sessions/${workflowId}.1`, undefined, "GET")
      ).json()) as Record<string, unknown>;
      expect(step).toMatchObject({
        status: action === "cancel" ? "SESSION_STATUS_CANCELLED" : "SESSION_STATUS_FAILED",
        failureReason: reason,
      });
      expect(await socket.closing()).toMatchObject({ code: 1000, reason: "workflow failed" });
      // The workflow says why, on its stream and when read: the step's reason.
      const why = { failureReason: reason, steps: [{}, { failureReason: reason }, {}] };
      expect(workflowOf(socket.frames.at(-1))).toMatchObject({
        status: "WORKFLOW_STATUS_FAILED",
        ...why,
      });
      expect(await view(workflowId)).toMatchObject(why);
      expect((await serviceCall(`/v1/sessions/${workflowId}.2`, undefined, "GET")).status).toBe(
        404,
      );
      // Ended: asked again, it says so.
      const again = await serviceCall(`/v1/workflows/${workflowId}/${action}`);
      expect(again.status).toBe(409);
      expect(((await again.json()) as { error: { message: string } }).error.message).toBe(
        "the workflow is failed",
      );
    }
    const unknown = await serviceCall(`/v1/workflows/${freshId("w")}/explode`);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe(
      "unknown action; use one of pause, resume, cancel, fail",
    );
  });

  it("refuses another player's stream with 403, a bad plan with 400, and a different plan under the same id with 409", async () => {
    const playerId = freshId("p");
    const { workflowId } = await createWorkflow(playerId);
    const other = await call(`/ws/workflow/${workflowId}`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(freshId("p"))}` },
    });
    expect(other.status).toBe(403);
    expect((await serviceCall("/v1/workflows", { player_id: playerId, steps: [] })).status).toBe(
      400,
    );
    expect(
      (
        await serviceCall("/v1/workflows", {
          player_id: playerId,
          steps: [{ name: "x", recipe_id: "r", steps: [] }],
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await serviceCall("/v1/workflows", {
          workflow_id: workflowId,
          player_id: playerId,
          steps: STEPS,
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await serviceCall("/v1/workflows", {
          workflow_id: workflowId,
          player_id: playerId,
          steps: STEPS.slice(1),
        })
      ).status,
    ).toBe(409);
  });
});
