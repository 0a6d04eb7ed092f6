/** A session's materials: requirements, availability changes in any order, and the state machine's rules. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  allAvailable,
  applyMaterialChanges,
  initialMaterials,
  type MaterialChange,
  type MaterialState,
  missingMaterials,
} from "../../../src/domain/materials/materials";
import type { Session } from "../../../src/domain/session/session";
import { transition } from "../../../src/domain/session/session-machine";

const T0 = 1_000_000;
const ore = (quantity: number, available = true): MaterialChange => ({
  materialId: "ore",
  quantity,
  available,
});

function session(): Session {
  const result = transition(null, {
    type: "create",
    epoch: 3,
    atMs: T0,
    params: {
      sessionId: "s1",
      playerId: "p1",
      recipeId: "sword",
      workflowId: null,
      steps: [{ name: "forge", durationMs: 10_000 }],
      materials: [
        { materialId: "ore", required: 3 },
        { materialId: "coal", required: 2, available: 1 },
      ],
    },
  });
  if (!result.ok) throw new Error(result.error.message);
  return result.state;
}

describe("material requirements", () => {
  it("start as declared, with availability defaulting to the requirement", () => {
    const state = session();
    expect(state.materials).toEqual([
      { materialId: "ore", required: 3, available: 3, asOfMs: 0 },
      { materialId: "coal", required: 2, available: 1, asOfMs: 0 },
    ]);
    expect(missingMaterials(state.materials).map((m) => m.materialId)).toEqual(["coal"]);
    expect(allAvailable(state.materials)).toBe(false);
  });

  it("count an unavailable material as none, whatever its quantity", () => {
    const { materials } = applyMaterialChanges(
      initialMaterials([{ materialId: "ore", required: 1 }]),
      [ore(5, false)],
      10,
    );
    expect(materials[0]?.available).toBe(0);
    expect(allAvailable(materials)).toBe(false);
  });
});

describe("availability changes", () => {
  const held = initialMaterials([{ materialId: "ore", required: 3 }]);

  it("say what became of each change", () => {
    const first = applyMaterialChanges(
      held,
      [ore(1), { materialId: "gem", quantity: 1, available: true }],
      20,
    );
    expect(first.outcomes).toEqual(["applied", "not_required"]);
    expect(first.applied).toEqual([ore(1)]);
    expect(applyMaterialChanges(first.materials, [ore(7)], 10).outcomes).toEqual(["stale"]);
    const retry = applyMaterialChanges(first.materials, [ore(1)], 20);
    expect(retry).toMatchObject({ outcomes: ["unchanged"], applied: [] });
    expect(retry.materials).toBe(first.materials);
  });

  it("let a restatement move the observation time, so an older report cannot undo it", () => {
    // ore observed 3 (as declared) at t=30, then a t=10 report of 0 arrives late.
    const restated = applyMaterialChanges(held, [ore(3)], 30);
    expect(restated.outcomes).toEqual(["unchanged"]);
    expect(restated.materials).not.toBe(held);
    expect(applyMaterialChanges(restated.materials, [ore(0)], 10).outcomes).toEqual(["stale"]);
  });

  it("converge on the latest observation of each material, in any arrival order", () => {
    const report = fc.record({
      asOfMs: fc.integer({ min: 1, max: 1_000 }),
      changes: fc.array(
        fc.record({
          materialId: fc.constantFrom("ore", "coal", "gem"),
          quantity: fc.integer({ min: 0, max: 9 }),
          available: fc.boolean(),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    });
    const start = initialMaterials([
      { materialId: "ore", required: 3 },
      { materialId: "coal", required: 2 },
      { materialId: "gem", required: 1 },
    ]);
    fc.assert(
      fc.property(
        // Distinct observation times: two different reports of one instant have no order.
        fc.uniqueArray(report, { minLength: 1, maxLength: 8, selector: (r) => r.asOfMs }),
        fc.nat(),
        (reports, seed) => {
          const fold = (order: typeof reports) =>
            order.reduce<readonly MaterialState[]>(
              (m, r) => applyMaterialChanges(m, r.changes, r.asOfMs).materials,
              start,
            );
          const inOrder = fold([...reports].sort((a, b) => a.asOfMs - b.asOfMs));
          const shuffled = [...reports].sort(
            (a, b) => ((a.asOfMs * 7919 + seed) % 97) - ((b.asOfMs * 7919 + seed) % 97),
          );
          expect(fold(shuffled).map((m) => m.available)).toEqual(inOrder.map((m) => m.available));
        },
      ),
    );
  });
});

describe("the state machine's material rules", () => {
  it("makes a change in what the player has a new seq with a notification", () => {
    const state = session();
    const result = transition(state, {
      type: "materials",
      changes: [ore(1)],
      asOfMs: T0 + 5,
      atMs: T0 + 5,
    });
    expect(result.ok && result.state.seq).toBe(state.seq + 1);
    expect(result.ok && result.effects.slice(0, 2)).toEqual([
      { type: "persist", settleEvents: true },
      { type: "deliver", frame: "materials", changes: [ore(1)] },
    ]);
    // Outcomes come from the same transition, in the order given.
    expect(result.ok && result.outcome).toEqual({ type: "materials", outcomes: ["applied"] });
  });

  it("persists a restatement without telling anyone, and ignores what changes nothing", () => {
    const state = session();
    const restated = transition(state, {
      type: "materials",
      changes: [ore(3)],
      asOfMs: T0,
      atMs: T0,
    });
    expect(restated.ok && restated.effects).toEqual([{ type: "persist", settleEvents: true }]);
    expect(restated.ok && restated.outcome).toEqual({ type: "materials", outcomes: ["unchanged"] });
    expect(restated.ok && restated.state.seq).toBe(state.seq);
    const unrelated = transition(state, {
      type: "materials",
      changes: [{ materialId: "gem", quantity: 1, available: true }],
      asOfMs: T0,
      atMs: T0,
    });
    expect(unrelated).toEqual({
      ok: true,
      state,
      effects: [],
      outcome: { type: "materials", outcomes: ["not_required"] },
    });
  });

  it("refuses changes to an ended session", () => {
    const cancelled = transition(session(), { type: "lifecycle", action: "cancel", atMs: T0 + 1 });
    if (!cancelled.ok) throw new Error("cancel refused");
    const result = transition(cancelled.state, {
      type: "materials",
      changes: [ore(0)],
      asOfMs: T0 + 2,
      atMs: T0 + 2,
    });
    expect(result).toMatchObject({ ok: false, error: { code: "failed_precondition" } });
  });

  it("treats a repeated create with other materials as a conflict", () => {
    const state = session();
    const again = transition(state, {
      type: "create",
      epoch: 1,
      atMs: T0,
      params: {
        sessionId: "s1",
        playerId: "p1",
        recipeId: "sword",
        workflowId: null,
        steps: state.steps,
        materials: [{ materialId: "ore", required: 4 }],
      },
    });
    expect(again).toMatchObject({ ok: false, error: { code: "already_exists" } });
  });
});
