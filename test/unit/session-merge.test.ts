/**
 * Compact updates: a client that merges updates into its snapshot holds
 * exactly what the server would send as a whole state, at any time.
 */
import { toBinary, toJsonString } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { Session } from "../../src/domain/session/session";
import { type SessionCommand, transition } from "../../src/domain/session/session-machine";
import { ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import {
  type CraftingProgressUpdate,
  CraftingProgressUpdateSchema,
} from "../../src/gen/crafting/v1/session_pb";
import { updateFrame } from "../../src/protocol/frames";
import { mergeUpdate } from "../../src/protocol/session-merge";
import { sessionStateMessage, sessionUpdateMessage } from "../../src/protocol/session-wire";

const T0 = 1_800_000_000_000;

function run(commands: SessionCommand[]): { states: Session[]; causes: string[] } {
  const created = transition(null, {
    type: "create",
    epoch: 4_000_000_000,
    atMs: T0,
    params: {
      sessionId: "s-0123456789",
      playerId: "p",
      recipeId: "iron-sword",
      workflowId: null,
      steps: [
        { name: "smelt", durationMs: 20_000 },
        { name: "forge", durationMs: 40_000 },
        { name: "polish", durationMs: 10_000 },
      ],
      materials: [],
    },
  });
  if (!created.ok) throw new Error(created.error.message);
  const states = [created.state];
  const causes: string[] = [];
  for (const command of commands) {
    const result = transition(states.at(-1) as Session, command);
    if (!result.ok) throw new Error(result.error.message);
    states.push(result.state);
    causes.push(command.type === "lifecycle" ? command.action : "progress");
  }
  return { states, causes };
}

describe("compact updates", () => {
  const { states, causes } = run([
    { type: "lifecycle", action: "start", atMs: T0 + 1_000 },
    { type: "progress", correction: { elapsedMs: 15_000 }, atMs: T0 + 3_000 },
    { type: "lifecycle", action: "pause", atMs: T0 + 5_000 },
    { type: "lifecycle", action: "resume", atMs: T0 + 9_000 },
    { type: "progress", correction: { rate: 2 }, atMs: T0 + 10_000 },
    { type: "progress", correction: { stepIndex: 1, stepProgressPercent: 50 }, atMs: T0 + 12_000 },
    { type: "lifecycle", action: "complete", atMs: T0 + 30_000 },
  ]);

  it("merged into the snapshot, give what the server would send whole, at every frame and between", () => {
    let held = sessionStateMessage(states[0] as Session, T0);
    for (const [i, cause] of causes.entries()) {
      const prev = states[i] as Session;
      const next = states[i + 1] as Session;
      const at = next.clock.anchorAtMs;
      const update = sessionUpdateMessage(next, cause, next.status !== prev.status);
      held = mergeUpdate(held, update, next.seq, at);
      for (const t of [at, at + 1_234]) {
        const whole = sessionStateMessage(next, t);
        const mine = mergeUpdate(held, update, next.seq, t);
        expect(progressJson(mine.progress)).toBe(progressJson(whole.progress));
        expect(mine.steps).toEqual(whole.steps);
        expect(mine.status).toBe(whole.status);
        expect(mine.clock).toEqual(whole.clock);
        expect(mine.seq).toBe(next.seq);
      }
    }
    expect(held.progress?.progressPercent).toBe(100);
  });

  it("are at most 200 bytes as JSON and 64 as binary for a progress correction", () => {
    const prev = states[1] as Session;
    const next = states[2] as Session;
    const frame = updateFrame(
      { seq: next.seq, epoch: next.epoch, serverTimeMs: next.clock.anchorAtMs },
      sessionUpdateMessage(next, "progress", next.status !== prev.status),
    );
    expect(toJsonString(ServerFrameSchema, frame).length).toBeLessThanOrEqual(200);
    expect(toBinary(ServerFrameSchema, frame).length).toBeLessThanOrEqual(64);
  });
});

/** A progress view as its JSON text (field by field, floats included). */
function progressJson(progress: CraftingProgressUpdate | undefined): string {
  return progress ? toJsonString(CraftingProgressUpdateSchema, progress) : "none";
}
