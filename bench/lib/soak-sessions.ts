/**
 * The soak's sessions (bench/soak.ts): each a fresh player's, driven either
 * over HTTP (progress, pauses, material changes) or, every fifth, by
 * Kafka-bridged events only, posted shuffled and partly twice as a sink
 * would; at the end, each read back and compared with what was sent.
 */
import { toJson } from "@bufbuild/protobuf";
import { foldEvents } from "../../src/domain/events/session-events.ts";
import { parseEventRecord } from "../../src/events/event-input.ts";
import { SessionStateSchema } from "../../src/gen/crafting/v1/session_pb.ts";
import { sessionStateMessage } from "../../src/protocol/session-wire.ts";
import type { ServiceCall } from "./soak-runtime.ts";
import { token } from "./targets.ts";

/** What each HTTP session's recipe needs of its one material (available in full at first). */
export const ORE_REQUIRED = 5;
/** Every fifth session is driven by bridged events only; the others by HTTP. */
const EVENT_SESSION_EVERY = 5;
/** A step's planned time: it never ends on its own during a soak. */
const STEP_MS = 7 * 24 * 3_600_000;
const T0 = Date.parse("2026-11-30T00:00:00Z");
const START = { recipe_id: "soak", steps: [{ name: "forge", duration_ms: STEP_MS }] };

/** A soak session and what was sent to it. */
export interface SoakSession {
  sessionId: string;
  playerId: string;
  bearer: string;
  byEvents: boolean;
  /** HTTP sessions: paused now. */
  paused: boolean;
  /** HTTP sessions: how much of their one material the last change made available. */
  ore: number;
  /** Event sessions: every record produced, and the next version. */
  records: Record<string, unknown>[];
  version: number;
}

/** Creates `count` sessions, each started: over HTTP, or by the bridge's first batch. */
export async function createSessions(count: number, call: ServiceCall): Promise<SoakSession[]> {
  const sessions: SoakSession[] = [];
  for (let i = 0; i < count; i++) {
    const playerId = `soak-p${i}-${crypto.randomUUID().slice(0, 8)}`;
    sessions.push({
      sessionId: `soak-s${i}-${crypto.randomUUID().slice(0, 8)}`,
      playerId,
      bearer: await token(playerId, "player"),
      byEvents: i % EVENT_SESSION_EVERY === EVENT_SESSION_EVERY - 1,
      paused: false,
      ore: ORE_REQUIRED,
      records: [],
      version: 1,
    });
  }
  for (const s of sessions) {
    if (s.byEvents) {
      record(s, "start", START);
      continue;
    }
    const created = await call("/v1/sessions", {
      session_id: s.sessionId,
      player_id: s.playerId,
      ...START,
      materials: [{ material_id: "ore", required: ORE_REQUIRED }],
    });
    if (created.status !== 201)
      throw new Error(`create: ${created.status} ${await created.text()}`);
    await call(`/v1/sessions/${s.sessionId}/start`);
  }
  await postEvents(
    sessions.flatMap((s) => s.records),
    call,
  );
  return sessions;
}

/** The next event of an event session, as crafting-service would produce it (kept for the check). */
export function record(s: SoakSession, type: string, payload: Record<string, unknown> = {}) {
  const version = s.version++;
  const produced = {
    event_id: crypto.randomUUID(),
    event_type: `crafting.session.${type}`,
    occurred_at: new Date(T0 + version * 1000).toISOString(),
    session_id: s.sessionId,
    player_id: s.playerId,
    version,
    payload,
  };
  s.records.push(produced);
  return produced;
}

/** Posts records as the Kafka sink would: in batches, shuffled, some twice. */
export async function postEvents(
  records: Record<string, unknown>[],
  call: ServiceCall,
): Promise<void> {
  const batch = [...records, ...records.filter(() => Math.random() < 0.1)];
  for (let i = batch.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [batch[i], batch[j]] = [
      batch[j] as Record<string, unknown>,
      batch[i] as Record<string, unknown>,
    ];
  }
  for (let i = 0; i < batch.length; i += 200) {
    const response = await call("/v1/events", batch.slice(i, i + 200));
    if (response.status !== 202)
      throw new Error(`events: ${response.status} ${await response.text()}`);
  }
}

/**
 * Brings every session to a state known at the end: each HTTP session
 * resumed, then one last correction to `finalMs`; and the bridge sends
 * every event once more, as a sink replaying from an old offset would.
 */
export async function finishSessions(
  sessions: readonly SoakSession[],
  finalMs: number,
  call: ServiceCall,
): Promise<void> {
  for (const s of sessions) {
    if (s.byEvents) continue;
    if (s.paused) {
      await call(`/v1/sessions/${s.sessionId}/resume`);
      s.paused = false;
    }
    await call(`/udp/sessions/${s.sessionId}/progress`, { elapsed_ms: finalMs });
  }
  await postEvents(
    sessions.flatMap((s) => s.records),
    call,
  );
}

/** A session's state as GET /v1/sessions/{id} says. */
interface ReadState {
  seq: number;
  status: string;
  clock: { anchorElapsedMs?: string | number; running?: boolean };
  materials?: { materialId: string; available?: number }[];
}

/**
 * Reads a session back: its seq, and how it differs from what was sent
 * (null: as sent). An HTTP session should be active at `finalMs` with the
 * ore last made available; an event session as its records fold in order.
 */
export async function sessionProblem(
  s: SoakSession,
  finalMs: number,
  call: ServiceCall,
): Promise<{ seq: number; problem: string | null }> {
  const response = await call(`/v1/sessions/${s.sessionId}`, undefined, "GET");
  const state = (await response.json()) as ReadState;
  if (s.byEvents) {
    const expected = expectedOf(s);
    const actual = {
      status: state.status,
      anchorElapsedMs: String(state.clock.anchorElapsedMs ?? 0),
    };
    const same = JSON.stringify(actual) === JSON.stringify(expected);
    return {
      seq: state.seq,
      problem: same
        ? null
        : `${s.sessionId}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`,
    };
  }
  const ore = state.materials?.find((m) => m.materialId === "ore")?.available ?? 0;
  const same =
    state.status === "SESSION_STATUS_ACTIVE" &&
    String(state.clock.anchorElapsedMs) === String(finalMs) &&
    ore === s.ore;
  return {
    seq: state.seq,
    problem: same
      ? null
      : `${s.sessionId}: ${state.status} ${state.clock.anchorElapsedMs} ore ${ore} ≠ active ${finalMs} ore ${s.ore}`,
  };
}

/** The in-order fold of an event session's records, as the wire would show it. */
function expectedOf(s: SoakSession) {
  const events = s.records.flatMap((r) => {
    const parsed = parseEventRecord(r, Date.now());
    return parsed.ok ? [parsed.event] : [];
  });
  const { state } = foldEvents(null, events, 1);
  if (!state) return null;
  const wire = toJson(SessionStateSchema, sessionStateMessage(state, Date.now())) as {
    status: string;
    clock?: { anchorElapsedMs?: string | number };
  };
  return { status: wire.status, anchorElapsedMs: String(wire.clock?.anchorElapsedMs ?? 0) };
}
