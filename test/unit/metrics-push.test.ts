/** When the isolate's counts are pushed (src/metrics/push.ts), in plain Node with a fake clock. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { metrics, PUSH_DELAY_MS, pushMetricsSoon } from "../../src/metrics/push";

/** An Env whose aggregator records each push's delta (the shard objects themselves are tested in workerd). */
function recordingEnv() {
  const pushes: unknown[] = [];
  const env = {
    METRICS: { getByName: () => ({ add: async (delta: unknown) => void pushes.push(delta) }) },
  } as unknown as Env;
  return { env, pushes };
}

describe("pushMetricsSoon", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    metrics.drain();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("pushes an owner's counts once a second at most", async () => {
    const { env, pushes } = recordingEnv();
    const owner = {};
    metrics.count("crafting_messages_in_total");
    pushMetricsSoon(env, owner);
    metrics.count("crafting_messages_in_total");
    pushMetricsSoon(env, owner);
    await vi.advanceTimersByTimeAsync(PUSH_DELAY_MS);
    expect(pushes).toHaveLength(1);
    expect(metrics.dirty).toBe(false);
  });

  it("replaces a push whose timer never fired (its request ended), so the owner pushes again", async () => {
    const { env, pushes } = recordingEnv();
    const owner = {};
    metrics.count("crafting_messages_in_total");
    pushMetricsSoon(env, owner);
    // The runtime drops a finished request's timers: this push never runs.
    vi.clearAllTimers();
    vi.setSystemTime(Date.now() + 10 * PUSH_DELAY_MS);
    metrics.count("crafting_messages_in_total");
    pushMetricsSoon(env, owner);
    await vi.advanceTimersByTimeAsync(PUSH_DELAY_MS);
    expect(pushes).toHaveLength(1);
    expect(metrics.dirty).toBe(false);
  });
});
