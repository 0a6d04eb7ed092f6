/**
 * The crafting session as a pure state machine: every change — an HTTP
 * command, a progress correction, a material report, a batch of bridged
 * events — goes through `transition(state, input)`, which returns the next
 * state, the effects to carry out in order (as plain data), and the
 * input's outcome. `seq` is assigned here and nowhere else. No runtime
 * imports: every rule is unit-tested in plain Node.
 */
import type { ServiceError } from "../../errors";
import {
  admitEvents,
  type EventResult,
  foldNew,
  type SessionEvent,
} from "../events/session-events";
import type { MaterialChange, MaterialOutcome } from "../materials/materials";
import type { SessionSummary } from "../queue/crafting-queue";
import type { StepSummary } from "../workflow/workflow-state";
import { progressAt, totalDurationMs } from "./progress";
import { isFinal, type Session, sameSession } from "./session";
import { applyCommand, type Change, type SessionCommand } from "./session-commands";

/**
 * What the session knows of the bridged events it stored: the version
 * floor (at or below it an event is stale), the highest version stored, the
 * base state they fold onto, and two reads (dedupe; every stored event, for
 * a re-fold — read only when one is needed).
 */
export interface EventLog {
  floor: number;
  maxVersion: number;
  base: Session | null;
  seen(eventId: string): boolean;
  stored(): SessionEvent[];
}

/**
 * How often, at most, a session tells the player's queue and its workflow of
 * changes that only move estimates (progress); a status change goes at once.
 */
export const PROGRESS_NOTICE_INTERVAL_MS = 1000;

/** One input to the state machine. */
export type SessionInput =
  | SessionCommand
  /** A batch of bridged events for this session; `epoch` is used if they create it. */
  | { type: "events"; events: SessionEvent[]; log: EventLog; epoch: number; atMs: number };

/** Work the Durable Object carries out after a transition, in this order. */
export type SessionEffect =
  /**
   * Store the new state (and the delivered frame in the replay log) in one
   * transaction, before anyone hears of it. `settleEvents`: the state is the
   * stored events' new base (an HTTP command). `events`: new bridged events to store.
   */
  | {
      type: "persist";
      settleEvents: boolean;
      events?: { fresh: SessionEvent[]; maxVersion: number };
    }
  /** Send the update of the new seq to every stream; progress is latest-wins. */
  | {
      type: "deliver";
      frame: "update";
      cause: string;
      /** The status changed: the update says so (otherwise it carries the clock alone). */
      statusChanged: boolean;
      latestWins: boolean;
      /** When the oldest change it carries reached the edge (bridged events). */
      receivedAtMs?: number;
      traceId?: string;
    }
  /** Send a material notification of these changes to every stream. */
  | { type: "deliver"; frame: "materials"; changes: MaterialChange[] }
  /** Close every stream normally: the session reached a final state. */
  | { type: "close_all"; reason: string }
  /**
   * Tell the player's object (their queue); `wait` when a status changed,
   * which it must not miss. `repeat`: a retry or a redelivery found the
   * change already stored, so it is told again unless the receiver is known
   * to hold it (the first telling may have died with the object).
   */
  | {
      type: "notify_player";
      playerId: string;
      summary: SessionSummary;
      wait: boolean;
      repeat?: true;
    }
  /** Tell the session's workflow about its step (`wait`, `repeat`: as the player's notice). */
  | {
      type: "notify_workflow";
      workflowId: string;
      step: StepSummary;
      wait: boolean;
      repeat?: true;
    }
  /** Count a session created or ended. */
  | { type: "count"; metric: "crafting_sessions_created_total" }
  | { type: "count"; metric: "crafting_sessions_ended_total"; status: string }
  /** Log a bridged event that could not apply at its place in version order. */
  | { type: "log_ignored"; event: SessionEvent; reason: string };

/** An effect that tells an object following the session: its player's queue or its workflow. */
export type SessionNotice = Extract<SessionEffect, { type: "notify_player" | "notify_workflow" }>;

/** What became of the input itself. */
export type SessionOutcome =
  /** A lifecycle action or a correction: whether it changed the session (a retry or a stale reading does not). */
  | { type: "applied"; changed: boolean }
  | { type: "created"; created: boolean }
  | { type: "materials"; outcomes: MaterialOutcome[] }
  | { type: "events"; results: EventResult[] };

/** The outcome of a command: an expected error is data, never thrown. */
export type CommandTransition =
  | { ok: true; state: Session; effects: SessionEffect[]; outcome: SessionOutcome }
  | { ok: false; error: ServiceError };

/** The outcome of any input (events may leave a session not yet created). */
export type TransitionResult =
  | { ok: true; state: Session | null; effects: SessionEffect[]; outcome: SessionOutcome }
  | { ok: false; error: ServiceError };

/** Applies one input to a session (or to no session yet) and says what to do. */
export function transition(state: Session | null, input: SessionCommand): CommandTransition;
export function transition(state: Session | null, input: SessionInput): TransitionResult;
export function transition(state: Session | null, input: SessionInput): TransitionResult {
  if (input.type === "events") return applyEvents(state, input);
  const result = applyCommand(state, input);
  if (!result.ok) return result;
  const committed = commit(state, result.state, result.change, input.atMs, { settleEvents: true });
  // A create or lifecycle call that finds its change stored is a caller's
  // retry, most often after an answer it never got: the object may have
  // died between storing the change and telling the player and the
  // workflow, so they are told again (the object skips it when they are
  // known to hold it).
  if (
    state &&
    result.change.kind === "none" &&
    (input.type === "create" || input.type === "lifecycle")
  )
    committed.effects.push(...noticesAgain(state, input.atMs));
  const outcome: SessionOutcome =
    input.type === "create"
      ? { type: "created", created: state === null }
      : result.outcomes
        ? { type: "materials", outcomes: result.outcomes }
        : { type: "applied", changed: result.change.kind !== "none" };
  return { ok: true, ...committed, outcome };
}

/**
 * The next state and its effects, alike for every input: a visible change
 * takes the next seq, is stored, then delivered; a final status closes the
 * streams; the player's queue and the workflow hear of every new seq.
 */
function commit(
  prev: Session | null,
  next: Session,
  change: Change,
  atMs: number,
  persist: Omit<Extract<SessionEffect, { type: "persist" }>, "type">,
  delivery: { receivedAtMs?: number; traceId?: string } = {},
): { state: Session; effects: SessionEffect[] } {
  if (change.kind === "none") {
    return {
      state: prev ?? next,
      effects: persist.events ? [{ type: "persist", ...persist }] : [],
    };
  }
  if (change.kind === "stored") return { state: next, effects: [{ type: "persist", ...persist }] };
  const state: Session = { ...next, seq: prev === null ? 1 : prev.seq + 1 };
  const effects: SessionEffect[] = [{ type: "persist", ...persist }];
  if (change.kind === "update" && prev !== null) {
    const latestWins = change.cause === "progress";
    effects.push({
      type: "deliver",
      frame: "update",
      cause: change.cause,
      statusChanged: state.status !== prev.status,
      latestWins,
      ...delivery,
    });
  } else if (change.kind === "materials") {
    effects.push({ type: "deliver", frame: "materials", changes: change.changes });
  }
  const ended = isFinal(state.status) && (prev === null || !isFinal(prev.status));
  if (ended && prev !== null)
    effects.push({ type: "close_all", reason: `session ${state.status}` });
  effects.push(...noticesOf(state, atMs, state.status !== prev?.status));
  if (prev === null) effects.push({ type: "count", metric: "crafting_sessions_created_total" });
  if (ended)
    effects.push({ type: "count", metric: "crafting_sessions_ended_total", status: state.status });
  return { state, effects };
}

/**
 * A session's notices told again (a caller's retry or a redelivery that
 * finds the change stored, or the object's own alarm after they could not
 * be told, src/domain/owed.ts): waited, and skipped by the object when the
 * receiver is known to hold it by now.
 */
export function noticesAgain(state: Session, atMs: number): SessionNotice[] {
  return noticesOf(state, atMs, true, true);
}

/** The notices of a session's state: to its player's queue, and to its workflow if it has one. */
function noticesOf(state: Session, atMs: number, wait: boolean, repeat = false): SessionNotice[] {
  const toPlayer: Extract<SessionEffect, { type: "notify_player" }> = {
    type: "notify_player",
    playerId: state.playerId,
    summary: summaryOf(state),
    wait,
  };
  if (repeat) toPlayer.repeat = true;
  if (!state.workflowId) return [toPlayer];
  const toWorkflow: Extract<SessionEffect, { type: "notify_workflow" }> = {
    type: "notify_workflow",
    workflowId: state.workflowId,
    step: {
      sessionId: state.sessionId,
      status: state.status,
      progressPercent: progressAt(state, atMs).percent,
      seq: state.seq,
      clock: state.clock,
      ...(state.failureReason ? { failureReason: state.failureReason } : {}),
    },
    wait,
  };
  if (repeat) toWorkflow.repeat = true;
  return [toPlayer, toWorkflow];
}

/** What the player's queue needs of a session. */
function summaryOf(state: Session): SessionSummary {
  return {
    sessionId: state.sessionId,
    recipeId: state.recipeId,
    status: state.status,
    createdAtMs: state.createdAtMs,
    plannedMs: totalDurationMs(state.steps),
    clock: state.clock,
    materialIds: state.materials.map((m) => m.materialId),
    seq: state.seq,
    ...(state.failureReason ? { failureReason: state.failureReason } : {}),
  };
}

/**
 * Bridged events: duplicates (by event id) and stale events (at or below
 * the floor) are acknowledged and change nothing; the rest are stored and
 * folded in version order — onto the current state when they all come
 * after every stored version, else from the base — so the result does not
 * depend on delivery order or repetition. One update if the state changed.
 */
function applyEvents(
  prev: Session | null,
  input: Extract<SessionInput, { type: "events" }>,
): TransitionResult {
  const { events, log, epoch, atMs } = input;
  const owner = prev && { sessionId: prev.sessionId, playerId: prev.playerId };
  const { fresh, refused } = admitEvents(events, {
    floor: log.floor,
    maxVersion: log.maxVersion,
    owner,
    seen: log.seen,
  });
  const results = (outcomes: Map<string, EventResult> | null): SessionOutcome => ({
    type: "events",
    results: events.map((event, i): EventResult => {
      const refusal = refused[i];
      if (refusal) return { eventId: event.eventId, ...refusal };
      return outcomes?.get(event.eventId) ?? { eventId: event.eventId, outcome: "parked" };
    }),
  });
  if (fresh.length === 0) {
    // A redelivery of what is stored (the Queue retries a batch whose
    // consumer died): told again, as a caller's retry is (above).
    const again = prev ? noticesAgain(prev, atMs) : [];
    return { ok: true, state: prev, effects: again, outcome: results(null) };
  }

  const fold = foldNew(prev, log, fresh, epoch);
  const outcomes = new Map<string, EventResult>();
  const ignored: SessionEffect[] = [];
  for (const event of fresh) {
    const outcome = fold.outcomes.get(event.eventId) ?? { outcome: "parked" as const };
    outcomes.set(event.eventId, { eventId: event.eventId, ...outcome });
    if (outcome.outcome === "ignored")
      ignored.push({ type: "log_ignored", event, reason: outcome.reason });
  }
  const maxVersion = Math.max(log.maxVersion, ...fresh.map((event) => event.version));
  const persist = { settleEvents: false, events: { fresh, maxVersion } };
  const next = fold.state;
  const changed = next !== null && (prev === null || !sameSession(prev, next));
  const change: Change = !changed
    ? { kind: "none" }
    : prev === null
      ? { kind: "created" }
      : { kind: "update", cause: fold.lastApplied ?? "event" };
  const delivery = {
    receivedAtMs: Math.min(...fresh.map((event) => event.acceptedAtMs)),
    traceId: fresh.findLast((event) => event.traceId)?.traceId ?? "",
  };
  const committed = next
    ? commit(prev, next, change, atMs, persist, delivery)
    : { state: prev, effects: [{ type: "persist" as const, ...persist }] };
  return {
    ok: true,
    state: committed.state,
    effects: [...committed.effects, ...ignored],
    outcome: results(outcomes),
  };
}

export type { SessionCommand } from "./session-commands";
