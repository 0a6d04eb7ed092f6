/** Shared by the event test files: raw events as producers write them, posting, reading a session's state. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import {
  type CraftingSession,
  REPLAY_LOG_LIMIT,
} from "../../durable-objects/crafting-session/crafting-session";
import { SessionStore } from "../../durable-objects/crafting-session/session-store";
import type { Session } from "../../src/domain/session/session";
import { serviceToken } from "../support/tokens";
import { call } from "./helpers";

/** A raw event as a producer writes it to Kafka. */
export function rawEvent(
  sessionId: string,
  playerId: string,
  type: string,
  version: number,
  payload: Record<string, unknown> = {},
  occurredAtMs = Date.parse("2026-11-22T12:00:00Z") + version * 1000,
): Record<string, unknown> {
  return {
    event_id: crypto.randomUUID(),
    event_type: `crafting.session.${type}`,
    occurred_at: new Date(occurredAtMs).toISOString(),
    session_id: sessionId,
    player_id: playerId,
    version,
    payload,
  };
}

export const START = {
  recipe_id: "iron-sword",
  steps: [
    { name: "smelt", duration_ms: 600_000 },
    { name: "forge", duration_ms: 600_000 },
  ],
};

export async function postEvents(
  body: string,
  contentType = "application/json",
): Promise<Response> {
  return call("/v1/events", {
    method: "POST",
    headers: { Authorization: `Bearer ${await serviceToken()}`, "Content-Type": contentType },
    body,
  });
}

/** The session's stored state, straight from its object (null when it has none yet). */
export async function stateOf(sessionId: string): Promise<Session | null> {
  return runInDurableObject(
    env.CRAFTING_SESSION.getByName(sessionId),
    (_i: CraftingSession, state) => new SessionStore(state.storage, REPLAY_LOG_LIMIT).load(),
  );
}

export async function until<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A session started by a bridged `start` event, once its object holds it. */
export async function startedByEvent(sessionId: string, playerId: string): Promise<Session> {
  const response = await postEvents(
    JSON.stringify(rawEvent(sessionId, playerId, "start", 1, START)),
  );
  if (response.status !== 202) throw new Error(`start event: ${response.status}`);
  return (await until(
    () => stateOf(sessionId),
    (s) => s !== null,
    "the session",
  )) as Session;
}
