/**
 * The ingest client's retry of a correction refused for a while, with a
 * scripted socket: the local service refuses one only by timing, which a
 * test cannot hold (test/e2e/ingest-client.test.ts holds the rest against
 * wrangler dev).
 */
import { describe, expect, it } from "vitest";
import { IngestClient, MAX_PER_MESSAGE, MOST_IN_FLIGHT } from "../../src/client/ingest";
import { CloseCode, REFUSAL_CLOSE_CODES, refusalOfClose } from "../../src/errors";
import { INGEST_STREAM_LIMITS } from "../../src/routes/ingest-stream";

type Update = { ref: number; session_id: string; progress_percent: number };

/** A socket that answers each update with `answer(update, times the client sent its ref)`. */
function answeringSocket(answer: (update: Update, times: number) => object, seen: Update[]) {
  return class {
    readyState = 0;
    binaryType = "blob";
    #listeners = new Map<string, ((event: unknown) => void)[]>();
    #times = new Map<number, number>();
    constructor() {
      queueMicrotask(() => {
        this.readyState = 1;
        this.#fire("open", {});
      });
    }
    addEventListener(type: string, listener: (event: unknown) => void) {
      this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
    }
    send(data: string) {
      if (data === "ping") return;
      const parsed = JSON.parse(data) as Update | Update[];
      const updates = Array.isArray(parsed) ? parsed : [parsed];
      seen.push(...updates);
      const answers = updates.map((u) => {
        const times = (this.#times.get(u.ref) ?? 0) + 1;
        this.#times.set(u.ref, times);
        return answer(u, times);
      });
      setTimeout(() => this.#fire("message", { data: JSON.stringify(answers) }), 1);
    }
    close() {}
    #fire(type: string, event: unknown) {
      for (const listener of this.#listeners.get(type) ?? []) listener(event);
    }
  } as unknown as typeof WebSocket;
}

/**
 * A service `pathMs` away that answers one update every `serviceMs`, in the
 * order received (a queue), and counts the most it held unanswered;
 * `refuseFirst`: each session's first update is refused at once.
 */
function servingSocket(
  pathMs: number,
  serviceMs: number,
  most: { held: number },
  refuseFirst = false,
) {
  return class {
    readyState = 0;
    binaryType = "blob";
    #listeners = new Map<string, ((event: unknown) => void)[]>();
    #free = 0;
    #held = 0;
    #refused = new Set<string>();
    constructor() {
      queueMicrotask(() => {
        this.readyState = 1;
        for (const listener of this.#listeners.get("open") ?? []) listener({});
      });
    }
    addEventListener(type: string, listener: (event: unknown) => void) {
      this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
    }
    send(data: string) {
      if (data === "ping") return;
      const parsed = JSON.parse(data) as Update | Update[];
      for (const u of Array.isArray(parsed) ? parsed : [parsed]) {
        if (refuseFirst && !this.#refused.has(u.session_id)) {
          // A session's first is refused at once, before it is asked: rested, then sent again.
          this.#refused.add(u.session_id);
          const refusal = { ref: u.ref, session_id: u.session_id, retry_after_s: 0 };
          const data = JSON.stringify([
            { ...refusal, error: { code: "resource_exhausted", message: "busy" } },
          ]);
          setTimeout(() => {
            for (const listener of this.#listeners.get("message") ?? []) listener({ data });
          }, 0);
          continue;
        }
        most.held = Math.max(most.held, ++this.#held);
        const arrives = Date.now() + pathMs / 2;
        this.#free = Math.max(this.#free, arrives) + serviceMs;
        const answer = JSON.stringify([{ ref: u.ref, session_id: u.session_id, epoch: 1, seq: 2 }]);
        setTimeout(
          () => {
            this.#held--;
            for (const listener of this.#listeners.get("message") ?? []) listener({ data: answer });
          },
          this.#free + pathMs / 2 - Date.now(),
        );
      }
    }
    close() {}
  } as unknown as typeof WebSocket;
}

/** An ingest client on a scripted socket. */
function clientOf(socket: typeof WebSocket, window?: number) {
  return new IngestClient({
    baseUrl: "http://crafting.test",
    token: () => "t",
    window,
    WebSocket: socket,
  });
}

/** `count` corrections, one a session, made at once; resolves when all are answered. */
function sendMany(ingest: IngestClient, count: number) {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      ingest.send({ session_id: `s-${i}`, progress_percent: 1 }),
    ),
  );
}

const busyOnce = (u: Update, times: number) =>
  times === 1
    ? {
        ref: u.ref,
        session_id: u.session_id,
        error: { code: "resource_exhausted", message: "1000 updates are waiting" },
        retry_after_s: 0.05,
      }
    : { ref: u.ref, session_id: u.session_id, epoch: 7, seq: 42 };

describe("the ingest client", () => {
  it("sends again, after retry_after_s, a correction refused for a while", async () => {
    const seen: Update[] = [];
    const ingest = new IngestClient({
      baseUrl: "http://crafting.test",
      token: () => "t",
      WebSocket: answeringSocket(busyOnce, seen),
    });
    const startedAt = Date.now();
    await expect(ingest.send({ session_id: "s-1", progress_percent: 5 })).resolves.toEqual({
      sessionId: "s-1",
      epoch: 7,
      seq: 42,
      changed: true,
      superseded: false,
    });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(45);
    expect(seen.map((u) => [u.session_id, u.progress_percent])).toEqual([
      ["s-1", 5],
      ["s-1", 5],
    ]);
    expect(ingest.held).toBe(0);
    await ingest.idle(); // Nothing held: at once.
    ingest.close();
  });

  it("says which answers are a newer correction's: those folded into it, not sent on their own", async () => {
    const seen: Update[] = [];
    const ingest = new IngestClient({
      baseUrl: "http://crafting.test",
      token: () => "t",
      WebSocket: answeringSocket(
        (u) => ({ ref: u.ref, session_id: u.session_id, epoch: 7, seq: u.progress_percent }),
        seen,
      ),
    });
    // Made in one turn: s-1's three fold into its newest; s-2's one is sent as it is.
    const answers = [
      ingest.send({ session_id: "s-1", progress_percent: 1 }),
      ingest.send({ session_id: "s-1", progress_percent: 2 }),
      ingest.send({ session_id: "s-2", progress_percent: 9 }),
      ingest.send({ session_id: "s-1", progress_percent: 3 }),
    ];
    const settled = await Promise.all(answers);
    expect(settled.map((a) => [a.sessionId, a.seq, a.superseded])).toEqual([
      ["s-1", 3, true],
      ["s-1", 3, true],
      ["s-2", 9, false],
      ["s-1", 3, false],
    ]);
    expect(seen.map((u) => [u.session_id, u.progress_percent])).toEqual([
      ["s-1", 3],
      ["s-2", 9],
    ]);
    ingest.close();

    // Refused for a while, then a newer one of its session is made while it rests: that one answers for it.
    const resting = new IngestClient({
      baseUrl: "http://crafting.test",
      token: () => "t",
      WebSocket: answeringSocket(busyOnce, []),
    });
    const refusedFirst = resting.send({ session_id: "s-1", progress_percent: 5 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const newer = resting.send({ session_id: "s-1", progress_percent: 6 });
    expect((await Promise.all([refusedFirst, newer])).map((a) => a.superseded)).toEqual([
      true,
      false,
    ]);
    resting.close();
  });

  it("is idle once every correction is answered, or once it is closed", async () => {
    const ingest = new IngestClient({
      baseUrl: "http://crafting.test",
      token: () => "t",
      WebSocket: answeringSocket(busyOnce, []),
    });
    const answer = ingest.send({ session_id: "s-1", progress_percent: 5 });
    let idle = false;
    const waiting = ingest.idle().then(() => {
      idle = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Refused for a while, resting before its retry: still held.
    expect(idle).toBe(false);
    await waiting;
    await expect(answer).resolves.toMatchObject({ seq: 42 });
    const closing = ingest.send({ session_id: "s-2", progress_percent: 1 });
    const closedIdle = ingest.idle();
    ingest.close();
    await expect(closing).rejects.toMatchObject({ code: "cancelled" });
    await closedIdle;
  });

  it("gives up after its retries, with the service's refusal", async () => {
    const seen: Update[] = [];
    const ingest = new IngestClient({
      baseUrl: "http://crafting.test",
      token: () => "t",
      retries: 2,
      WebSocket: answeringSocket((u) => busyOnce(u, 1), seen),
    });
    await expect(ingest.send({ session_id: "s-1", progress_percent: 5 })).rejects.toMatchObject({
      code: "resource_exhausted",
      sessionId: "s-1",
    });
    expect(seen).toHaveLength(3);
    ingest.close();
  });

  it("keeps in flight what a long round trip needs, and no more than a busy service answers in time", async () => {
    // 100 ms away, answering at once: the window grows past where it starts.
    const far = { held: 0 };
    const distant = clientOf(servingSocket(100, 0, far));
    expect(distant.window).toBe(256);
    await sendMany(distant, 1500);
    expect(distant.window).toBeGreaterThan(400);
    expect(far.held).toBeGreaterThan(400);
    distant.close();

    // Nearby, answering one a millisecond, sent ten times that: what it holds is a queue, so the window shrinks.
    const busy = clientOf(servingSocket(0, 1, { held: 0 }));
    const answers: Promise<unknown>[] = [];
    for (let round = 0; round < 60; round++) {
      answers.push(sendMany(busy, 50));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(answers);
    expect(busy.window).toBeLessThanOrEqual(64);
    busy.close();

    // A refusal answered at once does not time its session's round trip: 100 ms is no wait.
    const refusing = clientOf(servingSocket(100, 0, { held: 0 }, true));
    for (let round = 0; round < 4; round++) await sendMany(refusing, 300);
    expect(refusing.window).toBeGreaterThan(256);
    refusing.close();

    // A window set below where it starts is kept to.
    const small = { held: 0 };
    const capped = clientOf(servingSocket(20, 0, small), 10);
    await sendMany(capped, 100);
    expect(small.held).toBe(10);
    capped.close();
  });

  it("says at once an option it cannot run with", () => {
    const options = { baseUrl: "http://crafting.test", token: () => "t" };
    const Socket = answeringSocket(busyOnce, []);
    // Past 1,000 the service would refuse what waits beyond its limit, for a second at a time.
    for (const window of [0, -1, 1.5, Number.NaN, 1001])
      expect(() => new IngestClient({ ...options, window, WebSocket: Socket })).toThrow(
        /window must be a whole number, from 1 to 1000/,
      );
    expect(MOST_IN_FLIGHT).toBe(INGEST_STREAM_LIMITS.maxPending);
    expect(MAX_PER_MESSAGE).toBe(INGEST_STREAM_LIMITS.maxUpdatesPerMessage);
    expect(() => new IngestClient({ ...options, retries: -1, WebSocket: Socket })).toThrow(
      /retries must be a whole number, at least 0/,
    );
    // A base URL without its scheme would fail every attempt, and be retried forever.
    expect(
      () => new IngestClient({ ...options, baseUrl: "localhost:8787", WebSocket: Socket }),
    ).toThrow(/baseUrl must be the service's http\(s\) URL/);
  });

  it("says a final close as the refusal it stands for, the inverse of the service's table", () => {
    expect(refusalOfClose(CloseCode.TOKEN_EXPIRED)).toBe("unauthenticated");
    expect(refusalOfClose(CloseCode.FORBIDDEN)).toBe("permission_denied");
    expect(refusalOfClose(CloseCode.NOT_FOUND)).toBe("not_found");
    expect(refusalOfClose(CloseCode.POLICY_VIOLATION)).toBe("invalid_argument");
    expect(refusalOfClose(CloseCode.NORMAL)).toBeNull();
    // Every refusal's close code reads back as a refusal with that same code.
    for (const close of Object.values(REFUSAL_CLOSE_CODES)) {
      const refusal = refusalOfClose(close);
      expect(refusal && REFUSAL_CLOSE_CODES[refusal]).toBe(close);
    }
  });
});
