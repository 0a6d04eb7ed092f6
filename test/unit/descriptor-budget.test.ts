import { describe, expect, it } from "vitest";
import {
  DESCRIPTOR_COSTS,
  DescriptorBudget,
  DescriptorShare,
  descriptorBudgetOf,
} from "../../src/health/descriptor-budget";

const { perLiveObject, perSocket, objectLiveMs } = DESCRIPTOR_COSTS;

describe("the descriptor budget", () => {
  it("counts an object live for 10 s after its last call, once however often it is called", () => {
    const budget = new DescriptorBudget();
    budget.called("session:a", 0);
    budget.called("player:p", 1_000);
    budget.called("session:a", 5_000);
    expect(budget.held(5_000)).toBe(2 * perLiveObject);
    // The player's object was last called at 1 s; the session's at 5 s keeps it live.
    expect(budget.held(1_000 + objectLiveMs)).toBe(perLiveObject);
    expect(budget.isLive("session:a", 5_000 + objectLiveMs - 1)).toBe(true);
    expect(budget.held(5_000 + objectLiveMs)).toBe(0);
  });

  it("refuses a call that would bring one more object to life past the budget, never one to a live object", () => {
    const budget = new DescriptorBudget();
    const limit = 3 * perLiveObject;
    for (const key of ["a", "b", "c"]) {
      expect(budget.admitsCall(key, limit, 0)).toBe(true);
      budget.called(key, 0);
    }
    expect(budget.admitsCall("d", limit, 1)).toBe(false);
    expect(budget.admitsCall("b", limit, 1)).toBe(true);
    // Once one is evicted, a new one fits.
    budget.called("b", 5_000);
    expect(budget.admitsCall("d", limit, objectLiveMs)).toBe(true);
  });

  it("counts sockets per holder, set from the runtime's count or changed one at a time", () => {
    const budget = new DescriptorBudget();
    budget.socketChanged("session-1", 1);
    budget.socketChanged("session-1", 1);
    budget.socketChanged("session-2", 1);
    expect(budget.held(0)).toBe(3 * perSocket);
    budget.socketChanged("session-1", -1);
    // A close that never fired is corrected by the runtime's count at the next look.
    budget.socketsOf("session-2", 0);
    expect(budget.held(0)).toBe(perSocket);
    // Never below zero: a close counted twice.
    budget.socketChanged("session-1", -1);
    budget.socketChanged("session-1", -1);
    expect(budget.held(0)).toBe(0);
  });

  it("admits a stream only if its socket and, at worst, two objects coming to life fit", () => {
    const budget = new DescriptorBudget();
    const cost = perSocket + 2 * perLiveObject;
    expect(budget.admitsStream(cost, 0)).toBe(true);
    expect(budget.admitsStream(cost - 1, 0)).toBe(false);
    budget.socketChanged("x", 1);
    expect(budget.admitsStream(cost, 0)).toBe(false);
    expect(budget.admitsStream(cost + perSocket, 0)).toBe(true);
  });

  it("admits a stream that brings no object to life (an ingest stream) on its socket alone", () => {
    const budget = new DescriptorBudget();
    expect(budget.admitsStream(perSocket, 0, 0)).toBe(true);
    expect(budget.admitsStream(perSocket - 1, 0, 0)).toBe(false);
    budget.socketChanged("worker", 1);
    expect(budget.admitsStream(2 * perSocket, 0, 0)).toBe(true);
    expect(budget.admitsStream(2 * perSocket, 0)).toBe(false);
  });

  it("has no limit when the budget is 0, unset or not a number", () => {
    const budget = new DescriptorBudget();
    budget.socketsOf("x", 10_000);
    expect(budget.admitsStream(0, 0)).toBe(true);
    expect(budget.admitsCall("new", 0, 0)).toBe(true);
    expect(descriptorBudgetOf({})).toBe(0);
    expect(descriptorBudgetOf({ DESCRIPTOR_BUDGET: "nonsense" })).toBe(0);
    expect(descriptorBudgetOf({ DESCRIPTOR_BUDGET: "16000" })).toBe(16_000);
  });

  it("keeps an object's sockets and wakes where a budget is kept, and nothing where none is", () => {
    const budget = new DescriptorBudget();
    const kept = new DescriptorShare("object-1", true, budget);
    kept.socketChanged(1);
    kept.socketChanged(1);
    kept.woke(0);
    expect(budget.held(0)).toBe(2 * perSocket + perLiveObject);
    kept.socketsCounted(1);
    expect(budget.held(objectLiveMs)).toBe(perSocket);

    const none = new DescriptorBudget();
    const off = new DescriptorShare("object-2", false, none);
    off.socketChanged(1);
    off.socketsCounted(5);
    off.woke(0);
    expect(none.held(0)).toBe(0);
  });
});
