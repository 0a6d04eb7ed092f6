/** What crafting-service's ingest client holds, and what it sends again (src/client/ingest-backlog.ts). */
import { describe, expect, it } from "vitest";
import { IngestBacklog, type IngestCorrection } from "../../src/client/ingest-backlog";

/** A backlog whose callers' answers are recorded by name. */
function backlog() {
  const held = new IngestBacklog<string, string>();
  const settled: Record<string, string> = {};
  const add = (name: string, correction: IngestCorrection) =>
    held.add(correction, {
      resolve: (answer) => {
        settled[name] = `ok ${answer}`;
      },
      reject: (error) => {
        settled[name] = `error ${error}`;
      },
    });
  const answerAll = (taken: ReturnType<typeof held.take>, answer: (ref: number) => string) => {
    for (const h of taken) {
      const answered = held.answered(h.ref);
      for (const waiter of answered?.waiters ?? []) waiter.resolve(answer(h.ref));
    }
  };
  return { held, settled, add, answerAll };
}
const percent = (session_id: string, progress_percent: number) => ({
  session_id,
  progress_percent,
});
const sent = (taken: { correction: IngestCorrection }[]) =>
  taken.map((h) => `${h.correction.session_id}=${h.correction.progress_percent}`);

describe("an ingest client's backlog", () => {
  it("sends one correction a session has waiting, the newest, in the first one's place", () => {
    const { held, settled, add, answerAll } = backlog();
    add("a1", percent("a", 10));
    add("b1", percent("b", 10));
    add("a2", percent("a", 20));
    add("a3", percent("a", 30));
    expect(held.size).toBe(2);
    const taken = held.take(10, 0);
    expect(sent(taken)).toEqual(["a=30", "b=10"]);
    answerAll(taken, (ref) => `seq for ${ref}`);
    // Every caller of a's corrections has the newest one's answer.
    expect(settled.a1).toBe(settled.a3);
    expect(settled.a2).toBe(settled.a3);
    expect(settled.b1).not.toBe(settled.a3);
    expect(held.size).toBe(0);
  });

  it("takes no more than asked, and sends a newer correction after one in flight", () => {
    const { held, add } = backlog();
    for (const s of ["a", "b", "c"]) add(s, percent(s, 1));
    expect(sent(held.take(2, 0))).toEqual(["a=1", "b=1"]);
    expect(held.inFlight).toBe(2);
    add("a2", percent("a", 2));
    expect(sent(held.take(5, 0))).toEqual(["c=1", "a=2"]);
    expect(held.inFlight).toBe(4);
  });

  it("sends again, after a drop, the newest unanswered correction of each session, before newer sessions", () => {
    const { held, settled, add, answerAll } = backlog();
    add("a1", percent("a", 10));
    add("b1", percent("b", 10));
    held.take(10, 0);
    add("a2", percent("a", 20));
    add("c1", percent("c", 5));
    held.unanswered();
    expect(held.inFlight).toBe(0);
    const again = held.take(10, 0);
    // a's newest in a's first place, then b's, then c's.
    expect(sent(again)).toEqual(["a=20", "b=10", "c=5"]);
    answerAll(again, (ref) => `#${ref}`);
    expect(Object.keys(settled).sort()).toEqual(["a1", "a2", "b1", "c1"]);
    expect(settled.a1).toBe(settled.a2);
  });

  it("ignores an answer to a correction it did not send on this stream", () => {
    const { held, add } = backlog();
    add("a1", percent("a", 10));
    const [first] = held.take(1, 0);
    held.unanswered();
    expect(held.answered(first?.ref)).toBeUndefined();
    expect(held.answered("1")).toBeUndefined();
    expect(held.size).toBe(1);
  });

  it("rests a correction refused for a while, unless its session has a newer one, which answers for it", () => {
    const { held, settled, add, answerAll } = backlog();
    add("a1", percent("a", 10));
    const [a1] = held.take(1, 0);
    if (!a1) throw new Error("nothing taken");
    held.answered(a1.ref);
    expect(held.rest(a1)).toBe(true);
    expect(a1.tries).toBe(1);
    expect(held.size).toBe(1);
    expect(held.take(10, 0)).toEqual([]);
    held.back(a1);
    expect(sent(held.take(10, 0))).toEqual(["a=10"]);

    // A newer one sent meanwhile: the refused older one must not come back after it.
    add("b1", percent("b", 1));
    add("b2", percent("b", 2));
    const [b] = held.take(1, 0);
    add("b3", percent("b", 3));
    const [b3] = held.take(1, 0);
    if (!b || !b3) throw new Error("nothing taken");
    held.answered(b.ref);
    expect(held.rest(b)).toBe(false);
    answerAll([b3], () => "b3's answer");
    expect([settled.b1, settled.b2, settled.b3]).toEqual(Array(3).fill("ok b3's answer"));
  });

  it("lets a newer correction replace one resting, and a resting one come back only if still its session's newest", () => {
    const { held, settled, add, answerAll } = backlog();
    add("a1", percent("a", 10));
    const [a1] = held.take(1, 0);
    if (!a1) throw new Error("nothing taken");
    held.answered(a1.ref);
    held.rest(a1);
    add("a2", percent("a", 20));
    held.back(a1);
    const taken = held.take(10, 0);
    expect(sent(taken)).toEqual(["a=20"]);
    answerAll(taken, () => "done");
    expect(settled).toEqual({ a1: "ok done", a2: "ok done" });
  });

  it("gives up everything it holds when drained", () => {
    const { held, add } = backlog();
    add("a", percent("a", 1));
    add("b", percent("b", 1));
    held.take(1, 0);
    add("c", percent("c", 1));
    // a sent, b resting, c waiting.
    const [b] = held.take(1, 0);
    if (!b) throw new Error("nothing taken");
    held.answered(b.ref);
    held.rest(b);
    expect(
      held
        .drain()
        .map((h) => h.correction.session_id)
        .sort(),
    ).toEqual(["a", "b", "c"]);
    expect(held.size).toBe(0);
  });
});
