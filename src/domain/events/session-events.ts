/**
 * Bridged domain events applied to a session, as pure functions. Events are
 * folded in `version` order, each at its `occurred_at`, so the result does
 * not depend on the order or the number of times they were delivered: the
 * object stores every event it has not seen before and re-folds from its
 * base state when one arrives late.
 */

import type { MaterialRequirementInput } from "../materials/materials";
import type { LocationHint } from "../placement/placement";
import type { LifecycleAction, PlannedStep, ProgressCorrection, Session } from "../session/session";
import { applyCommand, type SessionCommand } from "../session/session-commands";

/** The event types of seed 002, and progress. */
export const EVENT_TYPES = {
  "crafting.session.start": "start",
  "crafting.session.complete": "complete",
  "crafting.session.fail": "fail",
  "crafting.session.cancel": "cancel",
  "crafting.session.pause": "pause",
  "crafting.session.resume": "resume",
  "crafting.session.progress": "progress",
} as const;

/** An event type, short form. */
export type EventKind = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];

/** Kafka topic of each kind: lifecycle events and progress travel separately. */
export function topicOf(kind: EventKind): "game.crafting.events" | "game.crafting.progress" {
  return kind === "progress" ? "game.crafting.progress" : "game.crafting.events";
}

/** A validated event, as queued and as stored by the session. */
export interface SessionEvent {
  eventId: string;
  kind: EventKind;
  occurredAtMs: number;
  sessionId: string;
  playerId: string;
  version: number;
  /** start: the recipe and its steps. */
  start?: {
    recipeId: string;
    workflowId: string | null;
    steps: PlannedStep[];
    materials: MaterialRequirementInput[];
    /** Where to place the session this start creates (absent: where its player was last seen). */
    region?: LocationHint;
  };
  /** fail, cancel. */
  reason?: string;
  /** progress: where the clock stands. */
  progress?: ProgressCorrection;
  /** When the edge accepted it (ms), for ingest-to-state latency. */
  acceptedAtMs: number;
  /** The W3C trace id of the request that brought it. */
  traceId?: string;
}

/** What became of one event in a fold. */
export type FoldOutcome =
  | { outcome: "applied" }
  /** Not legal at its place in version order (a pause after complete): logged, skipped. */
  | { outcome: "ignored"; reason: string }
  /** No session yet (its start has not arrived): kept, applied once it does. */
  | { outcome: "parked" };

/** The state after folding `events` (sorted by version) onto `base`. */
export interface Fold {
  state: Session | null;
  outcomes: Map<string, FoldOutcome>;
  /** The kind of the last event that changed the state. */
  lastApplied: EventKind | null;
}

/** Sorts by version, then event id, so equal versions still fold deterministically. */
export function byVersion(a: SessionEvent, b: SessionEvent): number {
  return a.version - b.version || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0);
}

/**
 * Folds events in version order onto `base`. Events before the session
 * exists wait (parked) until a start creates it; `epoch` is the one the
 * session keeps for its whole life.
 */
export function foldEvents(
  base: Session | null,
  events: readonly SessionEvent[],
  epoch: number,
): Fold {
  const sorted = [...events].sort(byVersion);
  const outcomes = new Map<string, FoldOutcome>();
  let state = base;
  let lastApplied: EventKind | null = null;
  const waiting: SessionEvent[] = [];
  for (const event of sorted) {
    if (!state && event.kind !== "start") {
      waiting.push(event);
      continue;
    }
    for (const input of inputsFor(state, event, epoch)) {
      const result = applyCommand(state, input);
      if (!result.ok) {
        outcomes.set(event.eventId, { outcome: "ignored", reason: result.error.message });
        break;
      }
      state = result.state;
      outcomes.set(event.eventId, { outcome: "applied" });
      lastApplied = event.kind;
    }
  }
  for (const event of waiting) {
    outcomes.set(
      event.eventId,
      state
        ? { outcome: "ignored", reason: "it precedes the session's start in version order" }
        : { outcome: "parked" },
    );
  }
  return { state, outcomes, lastApplied };
}

/** The state machine inputs of one event, at its `occurred_at`. */
function inputsFor(state: Session | null, event: SessionEvent, epoch: number): SessionCommand[] {
  const atMs = event.occurredAtMs;
  switch (event.kind) {
    case "start": {
      const start = event.start;
      const begin: SessionCommand = { type: "lifecycle", action: "start", atMs };
      if (state || !start) return [begin];
      const params = {
        sessionId: event.sessionId,
        playerId: event.playerId,
        recipeId: start.recipeId,
        workflowId: start.workflowId,
        steps: start.steps,
        // Events queued before materials existed carry none.
        materials: start.materials ?? [],
      };
      return [{ type: "create", params, epoch, atMs }, begin];
    }
    case "progress":
      return [{ type: "progress", correction: event.progress ?? {}, atMs }];
    default: {
      const input: SessionCommand = {
        type: "lifecycle",
        action: event.kind as LifecycleAction,
        atMs,
      };
      if (event.reason !== undefined) input.reason = event.reason;
      return [input];
    }
  }
}

/** Why an event is not folded at all. */
export type Refusal =
  /** Seen before (same event id): acknowledged, nothing changes. */
  | { outcome: "duplicate" }
  /** At or below the settled version: too late to matter. */
  | { outcome: "stale" }
  /** Can never apply here (another player's session): dead-lettered with the reason. */
  | { outcome: "rejected"; reason: string };

/**
 * Sorts a batch into the events to fold and those refused (by position):
 * duplicates (of a stored event or of an earlier one in the batch), events
 * at or below the settled version, and events for another player's session.
 * A copy has its original's version, so an event above every stored
 * version (`maxVersion`) cannot be one: `seen` (a storage read) is asked
 * only of the others — events arriving in order cost no lookup.
 */
export function admitEvents(
  events: readonly SessionEvent[],
  session: {
    floor: number;
    maxVersion: number;
    owner: { sessionId: string; playerId: string } | null;
    seen: (eventId: string) => boolean;
  },
): { fresh: SessionEvent[]; refused: (Refusal | null)[] } {
  const fresh: SessionEvent[] = [];
  const inBatch = new Set<string>();
  const refused = events.map((event): Refusal | null => {
    const { owner } = session;
    const stored = event.version <= session.maxVersion && session.seen(event.eventId);
    if (inBatch.has(event.eventId) || stored) return { outcome: "duplicate" };
    inBatch.add(event.eventId);
    if (event.version <= session.floor) return { outcome: "stale" };
    if (owner && owner.sessionId !== event.sessionId)
      return { outcome: "rejected", reason: "session_id does not match" };
    if (owner && owner.playerId !== event.playerId) {
      return {
        outcome: "rejected",
        reason: `session ${owner.sessionId} belongs to another player`,
      };
    }
    fresh.push(event);
    return null;
  });
  return { fresh, refused };
}

/**
 * Folds new events into the session: incrementally onto `current` when they
 * all come after every stored version, else from `base` with every stored
 * event (`stored` is read only then), so late events land in version order.
 */
export function foldNew(
  current: Session | null,
  log: { base: Session | null; maxVersion: number; stored: () => SessionEvent[] },
  fresh: readonly SessionEvent[],
  epoch: number,
): Fold {
  const inOrder = current !== null && fresh.every((event) => event.version > log.maxVersion);
  return inOrder
    ? foldEvents(current, fresh, epoch)
    : foldEvents(log.base, [...log.stored(), ...fresh], epoch);
}

/** What became of one bridged event; the queue consumer acks, retries or dead-letters by it. */
export type EventResult = { eventId: string } & (FoldOutcome | Refusal);
