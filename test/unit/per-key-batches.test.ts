/** The ingest stream's ordering, batching and cap (src/routes/per-key-batches.ts), in plain Node. */
import { describe, expect, it } from "vitest";
import { PerKeyBatches } from "../../src/routes/per-key-batches";

/** Runs that finish when the test says so, recorded as `key:items`. */
function controlled() {
  const runs: string[] = [];
  const finish: (() => void)[] = [];
  const run = (key: string, items: number[]) => {
    runs.push(`${key}:${items.join(",")}`);
    return new Promise<void>((resolve) => finish.push(resolve));
  };
  return { runs, finish, run };
}

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("PerKeyBatches", () => {
  it("runs a key's first item at once, and what arrives meanwhile as its next run, in order", async () => {
    const { runs, finish, run } = controlled();
    const batches = new PerKeyBatches<number>(100, run);
    batches.push("a", 1);
    batches.push("a", 2);
    batches.push("b", 10);
    batches.push("a", 3);
    expect(runs).toEqual(["a:1", "b:10"]);
    expect(batches.pending).toBe(4);
    finish[0]?.();
    await turn();
    expect(runs).toEqual(["a:1", "b:10", "a:2,3"]);
    expect(batches.pending).toBe(3);
    batches.push("a", 4);
    finish[1]?.();
    finish[2]?.();
    await turn();
    expect(runs.at(-1)).toBe("a:4");
    finish[3]?.();
    await batches.drained();
    expect(batches.pending).toBe(0);
    // A key with nothing under way starts at once again.
    batches.push("a", 5);
    expect(runs.at(-1)).toBe("a:5");
  });

  it("refuses an item while `limit` are pending, and takes one again once a run ends", async () => {
    const { runs, finish, run } = controlled();
    const batches = new PerKeyBatches<number>(3, run);
    expect(batches.push("a", 1)).toBe(true);
    expect(batches.push("a", 2)).toBe(true);
    expect(batches.push("b", 3)).toBe(true);
    expect(batches.push("c", 4)).toBe(false);
    expect(batches.push("a", 5)).toBe(false);
    expect(runs).toEqual(["a:1", "b:3"]);
    finish[0]?.();
    await turn();
    expect(batches.pending).toBe(2);
    expect(batches.push("c", 6)).toBe(true);
    expect(runs).toEqual(["a:1", "b:3", "a:2", "c:6"]);
  });

  it("starts one run per idle key for what one pushAll brings, refusing what passes the limit", async () => {
    const { runs, finish, run } = controlled();
    const batches = new PerKeyBatches<number>(5, run);
    batches.push("a", 1);
    const refused = batches.pushAll([
      ["a", 2],
      ["b", 3],
      ["a", 4],
      ["b", 5],
      ["c", 6],
      ["c", 7],
    ]);
    expect(refused).toEqual([6, 7]);
    expect(runs).toEqual(["a:1", "b:3,5"]);
    finish[0]?.();
    await turn();
    expect(runs).toEqual(["a:1", "b:3,5", "a:2,4"]);
  });

  it("goes on with a key's next run when one throws", async () => {
    const ran: string[] = [];
    let first = true;
    const batches = new PerKeyBatches<number>(10, async (key, items) => {
      if (first) {
        first = false;
        await turn();
        throw new Error("boom");
      }
      ran.push(`${key}:${items.join(",")}`);
    });
    batches.push("a", 1);
    batches.push("a", 2);
    await batches.drained();
    expect(ran).toEqual(["a:2"]);
    expect(batches.pending).toBe(0);
  });
});
