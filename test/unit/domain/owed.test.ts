/** When an object tries again the work it owes another (src/domain/owed.ts). */
import { describe, expect, it } from "vitest";
import { OWED_RETRY_DELAYS_MS, OWED_RETRY_LIMIT, owedRetryDelayMs } from "../../../src/domain/owed";
import { noticesAgain } from "../../../src/domain/session/session-machine";
import { created, inStatus, T0 } from "./session-fixtures";

describe("owed work's retries", () => {
  it("come quickly at first, then once a minute, and stop after about an hour", () => {
    const delays: number[] = [];
    for (let attempt = 0; ; attempt++) {
      const delay = owedRetryDelayMs(attempt);
      if (delay === null) break;
      delays.push(delay);
    }
    expect(delays).toHaveLength(OWED_RETRY_LIMIT);
    expect(delays.slice(0, OWED_RETRY_DELAYS_MS.length)).toEqual([...OWED_RETRY_DELAYS_MS]);
    expect(delays.slice(OWED_RETRY_DELAYS_MS.length).every((d) => d === 60_000)).toBe(true);
    // Each wait at least the one before.
    expect(delays.every((d, i) => i === 0 || d >= (delays[i - 1] ?? 0))).toBe(true);
    const totalMinutes = delays.reduce((a, b) => a + b, 0) / 60_000;
    expect(totalMinutes).toBeGreaterThan(45);
    expect(totalMinutes).toBeLessThan(75);
  });

  it("give up on a try count no retry can have", () => {
    for (const attempt of [-1, 1.5, Number.NaN, OWED_RETRY_LIMIT])
      expect(owedRetryDelayMs(attempt)).toBeNull();
  });
});

describe("a session's notices told again", () => {
  it("are its status now, waited and marked repeat, to its player and its workflow", () => {
    const session = { ...inStatus("active"), workflowId: "w1" };
    expect(noticesAgain(session, T0 + 10)).toEqual([
      {
        type: "notify_player",
        playerId: "p1",
        summary: expect.objectContaining({ sessionId: "s1", status: "active", seq: session.seq }),
        wait: true,
        repeat: true,
      },
      {
        type: "notify_workflow",
        workflowId: "w1",
        step: expect.objectContaining({ sessionId: "s1", status: "active", seq: session.seq }),
        wait: true,
        repeat: true,
      },
    ]);
    expect(noticesAgain(created(), T0).map((n) => n.type)).toEqual(["notify_player"]);
  });
});
