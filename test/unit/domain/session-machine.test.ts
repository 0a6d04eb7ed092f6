import { describe, expect, it } from "vitest";
import { progressAt } from "../../../src/domain/session/progress";
import {
  type LifecycleAction,
  type Session,
  type SessionStatus,
  sameSession,
} from "../../../src/domain/session/session";
import { transition } from "../../../src/domain/session/session-machine";
import { apply, created, inStatus, T0 } from "./session-fixtures";

const STATUSES: SessionStatus[] = [
  "queued",
  "active",
  "paused",
  "completed",
  "failed",
  "cancelled",
];
const ACTIONS: LifecycleAction[] = ["start", "pause", "resume", "complete", "fail", "cancel"];
const LEGAL: Record<string, SessionStatus> = {
  "queued:start": "active",
  "queued:fail": "failed",
  "queued:cancel": "cancelled",
  "active:pause": "paused",
  "active:complete": "completed",
  "active:fail": "failed",
  "active:cancel": "cancelled",
  "paused:resume": "active",
  "paused:fail": "failed",
  "paused:cancel": "cancelled",
};

describe("session lifecycle", () => {
  it("creates a queued session at seq 1 with the given epoch, and persists it", () => {
    const result = transition(null, {
      type: "create",
      epoch: 9,
      atMs: T0,
      params: {
        sessionId: "s",
        playerId: "p",
        recipeId: "r",
        workflowId: null,
        steps: [{ name: "a", durationMs: 1 }],
        materials: [],
      },
    });
    expect(result.ok && result.state).toMatchObject({ status: "queued", seq: 1, epoch: 9 });
    // Stored, not delivered (nobody watches a session before it exists); the queue and the metrics hear of it.
    expect(result.ok && result.effects.map((e) => e.type)).toEqual([
      "persist",
      "notify_player",
      "count",
    ]);
    expect(result.ok && result.effects[1]).toMatchObject({
      type: "notify_player",
      playerId: "p",
      wait: true,
      summary: { sessionId: "s", status: "queued", seq: 1, plannedMs: 1 },
    });
    expect(result.ok && result.outcome).toEqual({ type: "created", created: true });
  });

  it("treats a repeated identical create as a no-op and a different one as a conflict", () => {
    const state = created();
    const same = transition(state, {
      type: "create",
      epoch: 1,
      atMs: T0 + 5,
      params: {
        sessionId: "s1",
        playerId: "p1",
        recipeId: "sword",
        workflowId: null,
        steps: state.steps,
        materials: [],
      },
    });
    // Nothing stored; the player's queue told again unless known to hold it (a retried create).
    expect(same).toEqual({
      ok: true,
      state,
      effects: [
        {
          type: "notify_player",
          playerId: "p1",
          summary: expect.objectContaining({ sessionId: "s1", seq: state.seq }),
          wait: true,
          repeat: true,
        },
      ],
      outcome: { type: "created", created: false },
    });
    const other = transition(state, {
      type: "create",
      epoch: 1,
      atMs: T0 + 5,
      params: {
        sessionId: "s1",
        playerId: "p2",
        recipeId: "sword",
        workflowId: null,
        steps: state.steps,
        materials: [],
      },
    });
    expect(other).toMatchObject({ ok: false, error: { code: "already_exists" } });
  });

  it("refuses any input but create for a session that does not exist", () => {
    expect(transition(null, { type: "lifecycle", action: "start", atMs: T0 })).toMatchObject({
      ok: false,
      error: { code: "not_found" },
    });
  });

  for (const from of STATUSES) {
    for (const action of ACTIONS) {
      const to = LEGAL[`${from}:${action}`];
      if (to) {
        it(`${action} takes a ${from} session to ${to}, bumping seq and broadcasting`, () => {
          const before = inStatus(from);
          const result = transition(before, { type: "lifecycle", action, atMs: T0 + 2_000 });
          expect(result.ok).toBe(true);
          if (!result.ok) return;
          expect(result.state.status).toBe(to);
          expect(result.state.seq).toBe(before.seq + 1);
          expect(result.effects.slice(0, 2)).toEqual([
            { type: "persist", settleEvents: true },
            {
              type: "deliver",
              frame: "update",
              cause: action,
              statusChanged: true,
              latestWins: false,
            },
          ]);
          const ends = ["completed", "failed", "cancelled"].includes(to);
          const closes = result.effects.some((e) => e.type === "close_all");
          expect(closes).toBe(ends);
          // The queue must not miss a status change: the caller waits for it.
          expect(result.effects).toContainEqual(
            expect.objectContaining({ type: "notify_player", wait: true }),
          );
          const counted = result.effects.filter((e) => e.type === "count");
          expect(counted).toEqual(
            ends ? [{ type: "count", metric: "crafting_sessions_ended_total", status: to }] : [],
          );
        });
      } else if (
        Object.entries(LEGAL).some(([key, s]) => key.endsWith(`:${action}`) && s === from)
      ) {
        it(`answers ${action} on a session already ${from} with it as it is: no seq, nothing sent, the queue told again if unknown`, () => {
          const before = inStatus(from);
          const snapshot = structuredClone(before);
          const result = transition(before, { type: "lifecycle", action, atMs: T0 + 2_000 });
          // A retry: nothing stored or delivered, but the player's queue is told
          // the status again in case the first telling died with the object.
          expect(result).toEqual({
            ok: true,
            state: before,
            effects: [
              {
                type: "notify_player",
                playerId: before.playerId,
                summary: expect.objectContaining({ status: from, seq: before.seq }),
                wait: true,
                repeat: true,
              },
            ],
            outcome: { type: "applied", changed: false },
          });
          expect(before).toEqual(snapshot);
        });
      } else {
        it(`refuses to ${action} a ${from} session and leaves it unchanged`, () => {
          const before = inStatus(from);
          const snapshot = structuredClone(before);
          const result = transition(before, { type: "lifecycle", action, atMs: T0 + 2_000 });
          expect(result).toEqual({
            ok: false,
            error: {
              code: "failed_precondition",
              message: `cannot ${action} a session that is ${from}`,
            },
          });
          expect(before).toEqual(snapshot);
        });
      }
    }
  }

  it("keeps the failure reason", () => {
    const failed = apply(apply(created(), "start", T0), "fail", T0 + 500, "anvil broke");
    expect(failed.failureReason).toBe("anvil broke");
    expect(failed.endedAtMs).toBe(T0 + 500);
  });
});

describe("a batch of progress corrections", () => {
  const batch = (state: Session, corrections: object[], atMs: number) =>
    transition(state, { type: "progress_batch", corrections, atMs });

  it("applies them in order as one change: one seq, one update", () => {
    const active = apply(created(), "start", T0);
    const result = batch(
      active,
      [{ progressPercent: 20 }, { rate: 2 }, { elapsedMs: 7_000 }],
      T0 + 500,
    );
    if (!result.ok) throw new Error(result.error.message);
    expect(result.state.seq).toBe(active.seq + 1);
    expect(result.effects.slice(0, 3)).toEqual([
      { type: "persist", settleEvents: true },
      {
        type: "deliver",
        frame: "update",
        cause: "progress",
        statusChanged: false,
        latestWins: true,
      },
      expect.objectContaining({ type: "notify_player", wait: false }),
    ]);
    expect(result.state.clock).toMatchObject({ anchorElapsedMs: 7_000, rate: 2 });
  });

  it("refuses all of them when one is refused, naming which", () => {
    const active = apply(created(), "start", T0);
    const result = batch(active, [{ progressPercent: 20 }, { progressPercent: 120 }], T0 + 500);
    expect(result).toMatchObject({
      ok: false,
      error: {
        code: "invalid_argument",
        message: expect.stringMatching(/^update 2 of 2 .*none of them were applied/),
      },
    });
    expect(batch(active, [], T0)).toMatchObject({ ok: false, error: { code: "invalid_argument" } });
    expect(batch(created(), [{ progressPercent: 5 }], T0)).toMatchObject({
      ok: false,
      error: { code: "failed_precondition" },
    });
  });
});

describe("progress corrections", () => {
  const correct = (state: Session, correction: object, atMs: number) =>
    transition(state, { type: "progress", correction, atMs });

  it("places the clock at an overall percentage and keeps running from there", () => {
    const active = apply(created(), "start", T0);
    const result = correct(active, { progressPercent: 50 }, T0 + 1_000);
    if (!result.ok) throw new Error(result.error.message);
    expect(result.state.seq).toBe(active.seq + 1);
    expect(result.effects.slice(0, 3)).toEqual([
      { type: "persist", settleEvents: true },
      {
        type: "deliver",
        frame: "update",
        cause: "progress",
        statusChanged: false,
        latestWins: true,
      },
      expect.objectContaining({ type: "notify_player", wait: false }),
    ]);
    expect(progressAt(result.state, T0 + 1_000).elapsedMs).toBe(5_000);
    expect(progressAt(result.state, T0 + 2_000).elapsedMs).toBe(6_000);
  });

  it("places the clock inside a step", () => {
    const active = apply(created(), "start", T0);
    const result = correct(active, { stepIndex: 1, stepProgressPercent: 50 }, T0 + 1_000);
    expect(result.ok && progressAt(result.state, T0 + 1_000)).toMatchObject({
      elapsedMs: 7_000,
      currentStepIndex: 1,
    });
  });

  it("applies a rate so the bar runs faster from now on", () => {
    const active = apply(created(), "start", T0);
    const result = correct(active, { rate: 2 }, T0 + 1_000);
    expect(result.ok && progressAt(result.state, T0 + 2_000).elapsedMs).toBe(3_000);
  });

  it("places the clock when the reading was taken (as_of), not when it arrived", () => {
    const active = apply(created(), "start", T0);
    const result = correct(active, { elapsedMs: 4_000, asOfMs: T0 + 3_000 }, T0 + 3_250);
    if (!result.ok) throw new Error(result.error.message);
    expect(result.state.clock.anchorAtMs).toBe(T0 + 3_000);
    expect(result.outcome).toEqual({ type: "applied", changed: true });
    expect(progressAt(result.state, T0 + 3_250).elapsedMs).toBe(4_250);
    // A rate alone takes effect from the reading's time too.
    const faster = correct(active, { rate: 2, asOfMs: T0 + 1_000 }, T0 + 2_000);
    expect(faster.ok && progressAt(faster.state, T0 + 2_000).elapsedMs).toBe(3_000);
  });

  it("changes nothing for a reading older than the clock's anchor: a retry or a reordered update", () => {
    const active = apply(created(), "start", T0);
    const newer = correct(active, { elapsedMs: 6_000, asOfMs: T0 + 5_000 }, T0 + 5_100);
    if (!newer.ok) throw new Error(newer.error.message);
    const older = correct(newer.state, { elapsedMs: 4_000, asOfMs: T0 + 3_000 }, T0 + 5_200);
    expect(older).toEqual({
      ok: true,
      state: newer.state,
      effects: [],
      outcome: { type: "applied", changed: false },
    });
    // In a batch, a stale one is skipped and the others apply; all stale is no change at all.
    const batch = (corrections: object[]) =>
      transition(newer.state, { type: "progress_batch", corrections, atMs: T0 + 5_200 });
    const mixed = batch([
      { elapsedMs: 1, asOfMs: T0 },
      { elapsedMs: 7_000, asOfMs: T0 + 5_150 },
    ]);
    expect(mixed.ok && mixed.state).toMatchObject({
      seq: newer.state.seq + 1,
      clock: { anchorAtMs: T0 + 5_150, anchorElapsedMs: 7_000 },
    });
    expect(batch([{ elapsedMs: 1, asOfMs: T0 }])).toMatchObject({ ok: true, effects: [] });
  });

  it("places a reading from a clock slightly ahead at now, and refuses one over a minute ahead", () => {
    const active = apply(created(), "start", T0);
    const ahead = correct(active, { elapsedMs: 2_000, asOfMs: T0 + 61_000 }, T0 + 1_000);
    expect(ahead.ok && ahead.state.clock.anchorAtMs).toBe(T0 + 1_000);
    expect(correct(active, { elapsedMs: 2_000, asOfMs: T0 + 61_001 }, T0)).toEqual({
      ok: false,
      error: {
        code: "invalid_argument",
        message: "as_of_ms lies more than a minute in the future; check the sender's clock",
      },
    });
  });

  it("corrects a paused session without starting its clock", () => {
    const paused = apply(apply(created(), "start", T0), "pause", T0 + 1_000);
    const result = correct(paused, { elapsedMs: 2_500 }, T0 + 4_000);
    expect(result.ok && progressAt(result.state, T0 + 9_000).elapsedMs).toBe(2_500);
  });

  it("keeps corrections across a later pause and resume", () => {
    let state = apply(created(), "start", T0);
    const corrected = correct(state, { elapsedMs: 6_000 }, T0 + 1_000);
    if (!corrected.ok) throw new Error(corrected.error.message);
    state = apply(corrected.state, "pause", T0 + 2_000);
    state = apply(state, "resume", T0 + 5_000);
    expect(progressAt(state, T0 + 6_000).elapsedMs).toBe(8_000);
  });

  it.each([
    [{ elapsedMs: -1 }, "elapsed_ms"],
    [{ elapsedMs: 10_001 }, "elapsed_ms"],
    [{ progressPercent: 101 }, "progress_percent"],
    [{ progressPercent: Number.NaN }, "progress_percent"],
    [{ stepIndex: 2 }, "current_step_index"],
    [{ stepIndex: 0.5 }, "current_step_index"],
    [{ stepIndex: 0, stepProgressPercent: 120 }, "step_progress"],
    [{ rate: 0 }, "rate"],
    [{ elapsedMs: 1, progressPercent: 1 }, "at most one"],
    [{}, "needs"],
  ])("refuses %j and leaves the session unchanged", (correction, mentions) => {
    const active = apply(created(), "start", T0);
    const before = structuredClone(active);
    const result = correct(active, correction, T0 + 1_000);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.code).toBe("invalid_argument");
    expect(!result.ok && result.error.message).toContain(mentions);
    expect(active).toEqual(before);
  });

  it.each(["queued", "completed", "failed", "cancelled"] as const)(
    "refuses corrections of a %s session",
    (status) => {
      const result = correct(inStatus(status), { progressPercent: 10 }, T0 + 1_000);
      expect(result).toMatchObject({ ok: false, error: { code: "failed_precondition" } });
    },
  );
});

describe("sameSession", () => {
  it("ignores seq and sees any other difference, however deep", () => {
    const state = created();
    expect(sameSession(state, { ...state, seq: state.seq + 5 })).toBe(true);
    expect(sameSession(state, structuredClone(state))).toBe(true);
    expect(sameSession(state, { ...state, clock: { ...state.clock, rate: 2 } })).toBe(false);
    const renamed = structuredClone(state);
    (renamed.steps[1] as { name: string }).name = "quench";
    expect(sameSession(state, renamed)).toBe(false);
    expect(sameSession(state, { ...state, failureReason: "x" })).toBe(false);
  });
});
