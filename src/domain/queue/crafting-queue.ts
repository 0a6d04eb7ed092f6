/**
 * A player's crafting queue as a pure projection of their sessions: every
 * session is a request; queued ones wait in creation order for one of the
 * player's crafting slots; active and paused ones hold a slot (position 0);
 * a final status takes the request out of the queue. Positions and waits follow from the
 * planned step durations, the time already crafted and the slots.
 */

import type { MaterialChange } from "../materials/materials";
import { remainingWallMs, sameCourse } from "../session/progress";
import type { SessionClock, SessionStatus } from "../session/session";

/** What a session object tells its player's object after every change. */
export interface SessionSummary {
  sessionId: string;
  recipeId: string;
  status: SessionStatus;
  createdAtMs: number;
  /** Sum of the planned step durations. */
  plannedMs: number;
  clock: SessionClock;
  /** The materials the session requires: a player's material change reaches these sessions. */
  materialIds: string[];
  /** The session's seq: older summaries than the one held are ignored. */
  seq: number;
  /** Why the session failed or was cancelled, when it was given a reason. */
  failureReason?: string;
}

/** One request as a client sees it (seed 000's queue fields). */
export interface QueueItem {
  requestId: string;
  recipeId: string;
  /** Ended requests leave the queue, so these are the only two. */
  status: "queued" | "processing";
  queuePosition: number;
  estimatedWaitSeconds: number;
}

/** Default crafting slots of a player (sessions crafting at once). */
export const DEFAULT_SLOTS = 1;

const FINAL: ReadonlySet<SessionStatus> = new Set(["completed", "failed", "cancelled"]);

/** How long an ended request is remembered, so a late, older notification cannot bring it back. */
export const ENDED_RETENTION_MS = 24 * 60 * 60 * 1000;

/**
 * The queue after a session changed. A summary older than (or as old as)
 * the one held changes nothing, so notifications may arrive in any order;
 * nor does one that only moves the session's expected finish by less than
 * `CLOCK_TOLERANCE_MS` (movesQueue): the held summary stays, so small
 * moves are measured from it and cannot add up unseen.
 * A request that reached a final status stays known (out of the view) for
 * a day, so an older notification arriving later cannot bring it back;
 * `ended` is set when this summary ended it.
 */
export function applySummary(
  entries: Readonly<Record<string, SessionSummary>>,
  summary: SessionSummary,
  nowMs: number,
): { entries: Record<string, SessionSummary>; changed: boolean; ended: boolean } {
  const held = entries[summary.sessionId];
  if (held && (held.seq >= summary.seq || !movesQueue(held, summary, nowMs)))
    return { entries: { ...entries }, changed: false, ended: false };
  const next: Record<string, SessionSummary> = {};
  for (const [id, entry] of Object.entries(entries)) {
    const forgotten =
      FINAL.has(entry.status) && nowMs - entry.clock.anchorAtMs > ENDED_RETENTION_MS;
    if (!forgotten) next[id] = entry;
  }
  next[summary.sessionId] = summary;
  return {
    entries: next,
    changed: true,
    ended: FINAL.has(summary.status) && !(held && FINAL.has(held.status)),
  };
}

/**
 * Whether a newer summary of a session changes its queue: anything but its
 * clock does; a clock on the same course (`sameCourse`: a progress
 * correction that agrees with the plan, as crafting-service's regular
 * reports do) does not, so the player's object stores and sends nothing
 * for it. The queue shows no progress, only the waits that follow from
 * when sessions finish.
 */
export function movesQueue(held: SessionSummary, next: SessionSummary, nowMs: number): boolean {
  if (
    held.status !== next.status ||
    held.recipeId !== next.recipeId ||
    held.createdAtMs !== next.createdAtMs ||
    held.plannedMs !== next.plannedMs ||
    !sameIds(held.materialIds ?? [], next.materialIds ?? [])
  )
    return true;
  return !sameCourse(held.clock, next.clock, held.plannedMs, nowMs);
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/**
 * Positions and estimated waits. Sessions holding a slot are position 0,
 * wait 0. Queued ones take, in creation order, whichever slot frees first;
 * a slot frees when its session's remaining time has passed (a paused
 * session is counted as if it resumed now).
 */
export function queueView(
  entries: Readonly<Record<string, SessionSummary>>,
  slots: number,
  nowMs: number,
): QueueItem[] {
  const all = Object.values(entries).filter((s) => !FINAL.has(s.status));
  const holding = all.filter((s) => s.status === "active" || s.status === "paused");
  const waiting = all
    .filter((s) => s.status === "queued")
    .sort((a, b) => a.createdAtMs - b.createdAtMs || (a.sessionId < b.sessionId ? -1 : 1));
  const freeAt = holding.map((s) => remainingWallMs(s.clock, s.plannedMs, nowMs));
  while (freeAt.length < Math.max(1, slots)) freeAt.push(0);
  freeAt.sort((a, b) => a - b);
  const items: QueueItem[] = holding
    .sort((a, b) => a.createdAtMs - b.createdAtMs)
    .map((s) => ({
      requestId: s.sessionId,
      recipeId: s.recipeId,
      status: "processing",
      queuePosition: 0,
      estimatedWaitSeconds: 0,
    }));
  waiting.forEach((s, i) => {
    // The earliest free slot takes the next request; it frees again after that request's planned time.
    const slot = freeAt.indexOf(Math.min(...freeAt));
    const wait = freeAt[slot] as number;
    freeAt[slot] = wait + s.plannedMs;
    items.push({
      requestId: s.sessionId,
      recipeId: s.recipeId,
      status: "queued",
      queuePosition: i + 1,
      estimatedWaitSeconds: Math.round(wait / 100) / 10,
    });
  });
  return items;
}

/**
 * Whether a change the queue took (`applySummary`) is one a client sees:
 * a request ended, or some entry's status, position or wait differs from
 * what the queue showed a moment before. A newer clock of the only session
 * crafting moves no wait until a request queues behind it, so it is held
 * without a frame.
 */
export function showsChange(
  before: Readonly<Record<string, SessionSummary>>,
  applied: { entries: Readonly<Record<string, SessionSummary>>; ended: boolean },
  slots: number,
  nowMs: number,
): boolean {
  // Items are built by one function, so equal views serialize alike.
  const view = (entries: Readonly<Record<string, SessionSummary>>) =>
    JSON.stringify(queueView(entries, slots, nowMs));
  return applied.ended || view(before) !== view(applied.entries);
}

/**
 * Where a player's material change goes: every session of theirs that has
 * not ended and requires one of the materials, with only the changes it uses.
 */
export function materialTargets(
  entries: Readonly<Record<string, SessionSummary>>,
  changes: readonly MaterialChange[],
): { sessionId: string; changes: MaterialChange[] }[] {
  return Object.values(entries).flatMap((entry) => {
    if (FINAL.has(entry.status)) return [];
    // Summaries stored before materials existed list none.
    const needed = new Set(entry.materialIds ?? []);
    const relevant = changes.filter((change) => needed.has(change.materialId));
    return relevant.length > 0 ? [{ sessionId: entry.sessionId, changes: relevant }] : [];
  });
}
