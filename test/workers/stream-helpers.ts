/** Shared by the stream test files: sessions to watch, aging streams, polling. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { CraftingSession } from "../../durable-objects/crafting-session/crafting-session";
import type { StreamAttachment } from "../../durable-objects/streams/stream-attachment";
import { freshId, serviceToken, token } from "../support/tokens";
import { call, createSession, type Frame, serviceCall, type TestSocket, watch } from "./helpers";

export const sessionObject = (sessionId: string) => env.CRAFTING_SESSION.getByName(sessionId);
export const playerStreams = (playerId: string) => env.PLAYER.getByName(playerId).streams();

/** A created and started session, and its owner's token. */
export async function activeSession(): Promise<{
  sessionId: string;
  playerId: string;
  bearer: string;
}> {
  const sessionId = freshId("s");
  const playerId = freshId("p");
  expect((await createSession(sessionId, playerId)).status).toBe(201);
  expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
  return { sessionId, playerId, bearer: await token(playerId) };
}

/** Posts `count` progress corrections, each a new seq. */
export async function postProgress(sessionId: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    const response = await serviceCall(`/udp/sessions/${sessionId}/progress`, {
      elapsed_ms: i * 10,
    });
    expect(response.status).toBe(200);
  }
}

/** Posts one correction asking for the minimal answer (`Prefer: return=minimal`). */
export async function minimalProgress(sessionId: string, body: object): Promise<Response> {
  return call(`/udp/sessions/${sessionId}/progress`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${await serviceToken()}`,
      "Content-Type": "application/json",
      Prefer: "return=minimal",
    },
    body: JSON.stringify(body),
  });
}

/** What a state change would alter (progress readings move with the clock; these do not). */
export async function sessionJson(sessionId: string): Promise<Record<string, unknown>> {
  const state = (await (
    await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")
  ).json()) as Record<string, unknown>;
  return { seq: state.seq, epoch: state.epoch, status: state.status, clock: state.clock };
}

export const kindOf = (frame: Frame) =>
  ["snapshot", "update", "error", "pong", "resumed", "heartbeat"].find((k) => k in frame);

/** Moves every stream's last activity `ms` into the past, as if that much time had passed. */
export async function ageStreams(
  stub: DurableObjectStub<CraftingSession>,
  ms: number,
): Promise<void> {
  await runInDurableObject(stub, (_instance, state) => {
    for (const ws of state.getWebSockets()) {
      const attachment = ws.deserializeAttachment() as StreamAttachment;
      ws.serializeAttachment({ ...attachment, lastSeenMs: attachment.lastSeenMs - ms });
    }
  });
}

/** Polls an async condition. */
export async function until(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** An active session watched by its owner, its snapshot already read. */
export async function watchedSession(): Promise<{
  sessionId: string;
  playerId: string;
  socket: TestSocket;
}> {
  const { sessionId, playerId, bearer } = await activeSession();
  const socket = await watch(sessionId, bearer);
  await socket.frameCount(1);
  return { sessionId, playerId, socket };
}
