/**
 * Numbers as sent: every `float` (a percentage) to a hundredth, every
 * seconds figure to the millisecond, in the session's and the workflow's
 * messages, whatever the clock's rate makes of the elapsed time. JSON
 * would otherwise carry every digit of a double (`40.05866666666667`).
 */
import { type DescMessage, type Message, ScalarType, toJsonString } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { transition } from "../../src/domain/session/session-machine";
import { applyStepChange, newWorkflow } from "../../src/domain/workflow/workflow-state";
import { CraftingProgressUpdateSchema } from "../../src/gen/crafting/v1/session_pb";
import { WorkflowUpdateSchema } from "../../src/gen/crafting/v1/workflow_pb";
import { progressMessage, sessionStateMessage } from "../../src/protocol/session-wire";
import { workflowMessage } from "../../src/protocol/workflow-wire";
import { apply, created, T0 } from "./domain/session-fixtures";

/** Every `float` field's value in `message` and the messages it holds, with its path. */
function floats(schema: DescMessage, message: Message, path = schema.name): [string, number][] {
  const found: [string, number][] = [];
  const value = message as unknown as Record<string, unknown>;
  for (const field of schema.fields) {
    const at = `${path}.${field.localName}`;
    const held = value[field.localName];
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.FLOAT) {
      found.push([at, held as number]);
    } else if (field.fieldKind === "message" && held) {
      found.push(...floats(field.message, held as Message, at));
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      for (const [i, item] of (held as Message[]).entries()) {
        found.push(...floats(field.message, item, `${at}[${i}]`));
      }
    }
  }
  return found;
}

const hundredths = (x: number) => Math.round(x * 100) / 100;

/** A session at a third of a step in, corrected to run at 1.37×, read 3,001 ms in. */
function oddSession() {
  const started = apply(created(), "start", T0);
  const corrected = transition(started, {
    type: "progress",
    atMs: T0 + 1_000,
    correction: { elapsedMs: 1_333, rate: 1.37 },
  });
  if (!corrected.ok) throw new Error(corrected.error.message);
  return corrected.state;
}

describe("numbers on the wire", () => {
  it("sends a session's percentages to a hundredth and its seconds to the millisecond", () => {
    const at = T0 + 3_001;
    const progress = progressMessage(oddSession(), at);
    const found = floats(CraftingProgressUpdateSchema, progress);
    expect(found.length).toBeGreaterThanOrEqual(4);
    for (const [path, value] of found) expect([path, value]).toEqual([path, hundredths(value)]);
    for (const seconds of [progress.elapsedSeconds, progress.remainingSeconds]) {
      expect(seconds * 1000).toBe(Math.round(seconds * 1000));
    }
    // Not all whole: the rounding is to hundredths, not to nothing.
    expect(found.some(([, value]) => !Number.isInteger(value))).toBe(true);
    const snapshot = sessionStateMessage(oddSession(), at);
    expect(snapshot.progress).toEqual(progress);
  });

  it("sends a workflow's overall and steps' percentages to a hundredth", () => {
    const plans = [7, 11, 13].map((s, i) => ({
      name: `step-${i}`,
      recipeId: `r-${i}`,
      steps: [{ name: "work", durationMs: s * 1000 }],
      materials: [],
    }));
    const workflow = newWorkflow("w1", "p1", plans, 7, T0);
    const { state } = applyStepChange(
      workflow,
      {
        sessionId: "w1.0",
        status: "active",
        progressPercent: 0,
        seq: 2,
        clock: { anchorAtMs: T0, anchorElapsedMs: 0, rate: 1, running: true },
      },
      T0,
    );
    const message = workflowMessage(state, T0 + 1_234);
    const found = floats(WorkflowUpdateSchema, message);
    expect(found.map(([path]) => path)).toContain("WorkflowUpdate.overallProgress");
    expect(message.overallProgress).toBeGreaterThan(0);
    for (const [path, value] of found) expect([path, value]).toEqual([path, hundredths(value)]);
    expect(toJsonString(WorkflowUpdateSchema, message)).toContain('"overallProgress":3.98,');
  });
});
