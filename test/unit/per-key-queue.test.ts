/** The ingest stream's ordering and cap (src/routes/per-key-queue.ts), in plain Node. */
import { describe, expect, it } from "vitest";
import { PerKeyQueue } from "../../src/routes/per-key-queue";

/** A task that finishes when the test says so, recording when it started and ended. */
function gate(log: string[], name: string) {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const task = async () => {
    log.push(`start ${name}`);
    await opened;
    log.push(`end ${name}`);
  };
  return { task, open };
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("PerKeyQueue", () => {
  it("runs one key's tasks one at a time, in order, and other keys alongside", async () => {
    const log: string[] = [];
    const queue = new PerKeyQueue(10);
    const a1 = gate(log, "a1");
    const a2 = gate(log, "a2");
    const b1 = gate(log, "b1");
    queue.push("a", a1.task);
    queue.push("a", a2.task);
    queue.push("b", b1.task);
    await turn();
    expect(log).toEqual(["start a1", "start b1"]);
    expect(queue.pending).toBe(3);
    b1.open();
    await turn();
    expect(log).toEqual(["start a1", "start b1", "end b1"]);
    a1.open();
    await turn();
    expect(log.slice(3)).toEqual(["end a1", "start a2"]);
    a2.open();
    await queue.drained();
    expect(queue.pending).toBe(0);
    expect(queue.keys).toBe(0);
  });

  it("refuses a task while `limit` are pending, and takes one again once a task ends", async () => {
    const log: string[] = [];
    const queue = new PerKeyQueue(2);
    const first = gate(log, "1");
    expect(queue.push("a", first.task)).toBe(true);
    expect(queue.push("b", gate(log, "2").task)).toBe(true);
    expect(queue.push("c", gate(log, "3").task)).toBe(false);
    expect(log).not.toContain("start 3");
    first.open();
    await turn();
    expect(queue.pending).toBe(1);
    expect(queue.push("c", async () => {})).toBe(true);
  });

  it("goes on with a key's next task when one throws", async () => {
    const queue = new PerKeyQueue(10);
    const ran: number[] = [];
    queue.push("a", async () => {
      throw new Error("boom");
    });
    queue.push("a", async () => {
      ran.push(2);
    });
    await queue.drained();
    expect(ran).toEqual([2]);
    expect(queue.pending).toBe(0);
  });
});
