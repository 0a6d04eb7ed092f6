/**
 * Convergence: 10,000 events over 200 sessions, 20 % duplicated, shuffled,
 * posted by 8 concurrent senders through the real ingest, Queues and
 * consumer. Every session must end exactly as the in-order run leaves it.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import {
  type CraftingSession,
  REPLAY_LOG_LIMIT,
} from "../../durable-objects/crafting-session/crafting-session";
import { SessionStore } from "../../durable-objects/crafting-session/session-store";
import { foldEvents, type SessionEvent } from "../../src/domain/events/session-events";
import type { Session } from "../../src/domain/session/session";
import { parseEventRecord } from "../../src/events/event-input";
import { freshId, serviceToken } from "../support/tokens";
import { call } from "./helpers";

const SESSIONS = 200;
const EVENTS_PER_SESSION = 50;
const DUPLICATE_SHARE = 0.2;
const SENDERS = 8;
const T0 = Date.parse("2026-11-22T12:00:00Z");

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** One session's events, legal in version order: start, progress, pauses and resumes, an end. */
function sessionEvents(
  sessionId: string,
  playerId: string,
  next: () => number,
): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  const add = (type: string, version: number, payload: Record<string, unknown> = {}) =>
    events.push({
      event_id: crypto.randomUUID(),
      event_type: `crafting.session.${type}`,
      occurred_at: new Date(T0 + version * 1000).toISOString(),
      session_id: sessionId,
      player_id: playerId,
      version,
      payload,
    });
  add("start", 1, {
    recipe_id: "iron-sword",
    steps: [
      { name: "smelt", duration_ms: 600_000 },
      { name: "forge", duration_ms: 600_000 },
    ],
  });
  let paused = false;
  for (let version = 2; version < EVENTS_PER_SESSION; version++) {
    const roll = next();
    if (!paused && roll < 0.15) {
      add("pause", version);
      paused = true;
    } else if (paused && roll < 0.6) {
      add("resume", version);
      paused = false;
    } else {
      add("progress", version, {
        elapsed_seconds: version * 10,
        progress_percent: (version * 10) / 12,
      });
    }
  }
  const end = next();
  if (!paused && end < 0.5) add("complete", EVENTS_PER_SESSION);
  else if (end < 0.75) add("fail", EVENTS_PER_SESSION, { reason: "forge overheated" });
  else add("cancel", EVENTS_PER_SESSION, { reason: "player cancelled" });
  return events;
}

/** What must converge: everything but seq and epoch. */
function outcome(state: Session | null) {
  if (!state) return null;
  const { seq: _seq, epoch: _epoch, ...rest } = state;
  return rest;
}

async function storedOf(sessionId: string): Promise<{ state: Session | null; eventIds: string[] }> {
  return runInDurableObject(
    env.CRAFTING_SESSION.getByName(sessionId),
    (_i: CraftingSession, ctx) => {
      const state = new SessionStore(ctx.storage, REPLAY_LOG_LIMIT).load();
      const eventIds = state
        ? ctx.storage.sql
            .exec<{ event_id: string }>("SELECT event_id FROM events")
            .toArray()
            .map((row) => row.event_id)
        : [];
      return { state, eventIds };
    },
  );
}

it(`${SESSIONS * EVENTS_PER_SESSION} events over ${SESSIONS} sessions, ${DUPLICATE_SHARE * 100} % duplicated, shuffled, ${SENDERS} senders: every session converges to the in-order run`, async () => {
  const next = random(20261122);
  const sessions = Array.from({ length: SESSIONS }, () => ({
    sessionId: freshId("s"),
    playerId: freshId("p"),
  }));
  const bySession = new Map(
    sessions.map(({ sessionId, playerId }) => [
      sessionId,
      sessionEvents(sessionId, playerId, next),
    ]),
  );
  const unique = [...bySession.values()].flat();
  const deliveries = [...unique, ...unique.filter(() => next() < DUPLICATE_SHARE)];
  for (let i = deliveries.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [deliveries[i], deliveries[j]] = [
      deliveries[j] as Record<string, unknown>,
      deliveries[i] as Record<string, unknown>,
    ];
  }

  // The in-order run: each session's events folded in version order, once each.
  const expected = new Map(
    [...bySession].map(([sessionId, events]) => {
      const parsed = events.map((raw) => {
        const result = parseEventRecord(raw, 0);
        if (!result.ok) throw new Error(result.message);
        return result.event;
      }) as SessionEvent[];
      return [sessionId, outcome(foldEvents(null, parsed, 1).state)];
    }),
  );

  const bearer = await serviceToken();
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < deliveries.length; i += 100) chunks.push(deliveries.slice(i, i + 100));
  await Promise.all(
    Array.from({ length: SENDERS }, async (_, sender) => {
      for (let i = sender; i < chunks.length; i += SENDERS) {
        const response = await call("/v1/events", {
          method: "POST",
          headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
          body: JSON.stringify(chunks[i]),
        });
        expect(response.status).toBe(202);
      }
    }),
  );

  const deadline = Date.now() + 150_000;
  let pending = new Set(bySession.keys());
  while (pending.size > 0 && Date.now() < deadline) {
    const still = new Set<string>();
    for (const sessionId of pending) {
      const { eventIds } = await storedOf(sessionId);
      if (eventIds.length < EVENTS_PER_SESSION) still.add(sessionId);
    }
    pending = still;
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 500));
  }
  expect(pending.size, "sessions still missing events").toBe(0);

  for (const [sessionId, events] of bySession) {
    const { state, eventIds } = await storedOf(sessionId);
    // 0 lost, 0 stored twice.
    expect(new Set(eventIds)).toEqual(new Set(events.map((e) => e.event_id)));
    expect(eventIds).toHaveLength(events.length);
    // Converged to the in-order run.
    expect(outcome(state), sessionId).toEqual(expected.get(sessionId));
  }
}, 240_000);
