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

  it("pushes the isolate's counts once a second at most, whoever counted", async () => {
    const { env, pushes } = recordingEnv();
    // A Worker request, then two session objects of the same isolate, within one second.
    metrics.count("crafting_http_requests_total", { route: "/v1/progress", code: "200" });
    pushMetricsSoon(env, () => {});
    metrics.count("crafting_messages_out_total");
    pushMetricsSoon(env);
    await vi.advanceTimersByTimeAsync(PUSH_DELAY_MS / 2);
    metrics.count("crafting_messages_out_total");
    pushMetricsSoon(env);
    await vi.advanceTimersByTimeAsync(PUSH_DELAY_MS);
    expect(pushes).toEqual([
      {
        counters: {
          'crafting_http_requests_total{code="200",route="/v1/progress"}': 1,
          crafting_messages_out_total: 2,
          crafting_metrics_pushes_total: 1,
        },
        histograms: {},
      },
    ]);
    expect(metrics.dirty).toBe(false);
    // The next count schedules the next push.
    metrics.count("crafting_messages_out_total");
    pushMetricsSoon(env);
    await vi.advanceTimersByTimeAsync(PUSH_DELAY_MS);
    expect(pushes).toHaveLength(2);
  });

  it("replaces a push whose timer never fired (its request ended), so the isolate pushes again", async () => {
    const { env, pushes } = recordingEnv();
    metrics.count("crafting_messages_in_total");
    pushMetricsSoon(env);
    // The runtime drops a finished request's timers: this push never runs.
    vi.clearAllTimers();
    vi.setSystemTime(Date.now() + 10 * PUSH_DELAY_MS);
    metrics.count("crafting_messages_in_total");
    pushMetricsSoon(env);
    await vi.advanceTimersByTimeAsync(PUSH_DELAY_MS);
    expect(pushes).toHaveLength(1);
    expect(metrics.dirty).toBe(false);
  });
});
