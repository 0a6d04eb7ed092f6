/** The ingest client's window: grown while the round trip needs more, shrunk while the service's answers queue. */
import { describe, expect, it } from "vitest";
import {
  FIRST_WINDOW,
  FORGET_AFTER_MS,
  IngestWindow,
  LEAST_WINDOW,
} from "../../src/client/ingest-window";

/** One round trip: the window held corrections back (`full`), and answers of session `s` took `rtt` ms. */
function round(window: IngestWindow, now: number, rtt: number, full = true, session = "s"): number {
  if (full) window.full();
  window.answered(session, now - rtt, now);
  return now + rtt;
}

describe("the ingest window", () => {
  it("starts at 256 and grows by a quarter a round trip while it holds corrections back and answers come in time", () => {
    const window = new IngestWindow(1000);
    expect(window.size).toBe(FIRST_WINDOW);
    let now = 1_000;
    const sizes: number[] = [];
    for (let i = 0; i < 4; i++) {
      now = round(window, now, 50);
      sizes.push(window.size);
    }
    expect(sizes).toEqual([320, 400, 500, 625]);
    for (let i = 0; i < 30; i++) now = round(window, now, 50);
    expect(window.size).toBe(1000);
    // Never past the greatest, and a greatest under 256 is where it starts.
    expect(new IngestWindow(20).size).toBe(20);
  });

  it("does not grow while nothing waits for room: there is no sign more would help", () => {
    const window = new IngestWindow(1000);
    let now = 1_000;
    for (let i = 0; i < 10; i++) now = round(window, now, 50, false);
    expect(window.size).toBe(FIRST_WINDOW);
  });

  it("shrinks to the size whose answers would come in time once a round trip's answers come late", () => {
    const window = new IngestWindow(1000);
    // The least round trip: 40 ms, so a quarter more (or 10 ms), 50 ms, is in time.
    let now = round(window, 1_000, 40);
    expect(window.size).toBe(320);
    // In time, but past half of what may be waited: held, neither grown nor shrunk.
    now = round(window, now, 50);
    expect(window.size).toBe(320);
    now = round(window, now, 45);
    expect(window.size).toBe(400);
    // 80 ms: a queue stands; 400 × 50 / 80 = 250.
    now = round(window, now, 80);
    expect(window.size).toBe(250);
    // A pause (2 s) halves it, no more: a pause is not a rate.
    now = round(window, now, 2_000);
    expect(window.size).toBe(125);
    // Nearby, a queue counts from 10 ms: 2 ms least, 11 ms is in time, 30 ms is not.
    const near = new IngestWindow(1000);
    let t = round(near, 1_000, 2);
    t = round(near, t, 11);
    expect(near.size).toBe(320);
    for (let i = 0; i < 20; i++) t = round(near, t, 30);
    expect(near.size).toBe(LEAST_WINDOW);
  });

  it("judges once a round trip, by the mean of its answers", () => {
    const window = new IngestWindow(1000);
    window.answered("s", 1_000, 1_040); // Least 40 ms; the next round ends at 1,080.
    expect(window.size).toBe(FIRST_WINDOW);
    // Late answers within the round: nothing yet.
    for (const at of [1_050, 1_060, 1_070]) window.answered("s", at - 200, at);
    expect(window.size).toBe(FIRST_WINDOW);
    // The round ends: its mean, (3 × 200 + 40) / 4 = 160 ms, is late; one shrink, by half at most.
    window.answered("s", 1_041, 1_081);
    expect(window.size).toBe(128);
    // The next round's answers in time, with corrections waiting for room: it grows again.
    window.full();
    window.answered("s", 1_200, 1_245);
    expect(window.size).toBe(160);
  });

  it("judges each session against its own least round trip: a session far away is not late, only far", () => {
    const window = new IngestWindow(1000);
    // Sessions 10 ms and 150 ms away, answered in turn, each in its own time: no queue.
    let now = 1_000;
    for (let i = 0; i < 6; i++) {
      window.full();
      window.answered("near", now - 10, now);
      window.answered("far", now - 150, now);
      now += 200;
    }
    expect(window.size).toBeGreaterThan(FIRST_WINDOW);
    const grown = window.size;
    // Both now wait 100 ms more than their least: a queue.
    window.answered("near", now - 110, now);
    window.answered("far", now - 250, now);
    expect(window.size).toBeLessThan(grown);
    expect(window.sessions).toBe(2);
  });

  it("forgets a session not answered for a minute or more, and learns it again", () => {
    const window = new IngestWindow(1000);
    round(window, 1_000, 5, true, "gone");
    let now = round(window, 2_000, 40, true, "s");
    expect(window.sessions).toBe(2);
    now += 2 * FORGET_AFTER_MS;
    round(window, now, 40, true, "s");
    expect(window.sessions).toBe(1);
  });

  it("learns the least round trip again on a new stream, whose path may be longer", () => {
    const window = new IngestWindow(1000);
    let now = round(window, 1_000, 5);
    expect(window.size).toBe(320);
    window.reopened();
    // 100 ms on the new stream is its path, not a queue: it grows.
    now = round(window, now, 100);
    now = round(window, now, 100);
    expect(window.size).toBe(500);
  });
});
