/** The session's throttle for latest-state notifications. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { LatestEvery } from "../../durable-objects/crafting-session/latest-every";

afterEach(() => {
  vi.useRealTimers();
});

describe("latest every interval", () => {
  it("sends the first at once and then only the newest, once per interval", () => {
    vi.useFakeTimers({ now: 0 });
    const sent: number[] = [];
    const throttle = new LatestEvery(1000);
    for (let i = 1; i <= 5; i++) throttle.run(() => sent.push(i), Date.now());
    expect(sent).toEqual([1]);
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([1, 5]);
    vi.advanceTimersByTime(5000);
    expect(sent).toEqual([1, 5]);
  });

  it("drops what it holds when something newer went another way", () => {
    vi.useFakeTimers({ now: 0 });
    const sent: string[] = [];
    const throttle = new LatestEvery(1000);
    throttle.run(() => sent.push("a"), Date.now());
    throttle.run(() => sent.push("b"), Date.now());
    throttle.supersede(Date.now());
    vi.advanceTimersByTime(2000);
    expect(sent).toEqual(["a"]);
  });
});
