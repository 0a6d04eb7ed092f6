/** The client SDK's pure parts: backoff, clock sync, progress prediction, and the connection's retry rules. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { backoffCeiling, backoffDelay, DEFAULT_BACKOFF } from "../../src/client/backoff";
import { serviceBases } from "../../src/client/base-url";
import { ClockSync } from "../../src/client/clock";
import { Connection, type StateChange } from "../../src/client/connection";
import { endedReason } from "../../src/client/ended";
import { ProgressPredictor, stepAt, WorkflowPredictor } from "../../src/client/predict";
import { tokenExpiryMs } from "../../src/client/token";
import { SessionStatusSchema } from "../../src/gen/crafting/v1/session_pb";
import { WorkflowStatusSchema } from "../../src/gen/crafting/v1/workflow_pb";
import { sessionEndedOnWire } from "../../src/protocol/session-wire";
import { workflowEndedOnWire } from "../../src/protocol/workflow-wire";

describe("backoff", () => {
  it("doubles its ceiling up to the cap, with full jitter below it", () => {
    expect([0, 1, 2, 3, 10, 40].map((n) => backoffCeiling(n))).toEqual([
      250, 500, 1000, 2000, 30_000, 30_000,
    ]);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0)).toBe(0);
    expect(backoffDelay(3, DEFAULT_BACKOFF, () => 0.999)).toBe(1998);
    for (let i = 0; i < 1000; i++) {
      const attempt = i % 12;
      const delay = backoffDelay(attempt);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(backoffCeiling(attempt));
    }
  });
});

describe("clock sync", () => {
  it("takes the offset from the sample with the shortest round trip", () => {
    const clock = new ClockSync(8, () => 10_000);
    clock.sample(1_000, 6_100, 1_400); // rtt 400, offset 4900
    clock.sample(2_000, 7_050, 2_100); // rtt 100, offset 5000
    clock.sample(3_000, 8_300, 3_600); // rtt 600, offset 5000
    expect(clock.offsetMs).toBe(5_000);
    expect(clock.uncertaintyMs).toBe(50);
    expect(clock.serverNow()).toBe(15_000);
  });

  it("uses a one-way hint only until a round trip is measured", () => {
    const clock = new ClockSync(8, () => 0);
    clock.hint(500, 0);
    expect(clock.offsetMs).toBe(500);
    clock.sample(0, 1_000, 10);
    clock.hint(99_999, 10);
    expect(clock.offsetMs).toBe(995);
  });
});

describe("progress prediction", () => {
  const clock = {
    anchorAtMs: 0,
    anchorElapsedMs: 0,
    rate: 1,
    running: true,
    totalDurationMs: 10_000,
  };

  it("follows the clock between updates", () => {
    const p = new ProgressPredictor();
    p.update(clock);
    expect(p.elapsedAt(2_500)).toBe(2_500);
    expect(p.percentAt(5_000)).toBe(50);
    expect(p.elapsedAt(20_000)).toBe(10_000);
  });

  it("never moves back on a correction behind it: it slows down until the truth catches up", () => {
    const p = new ProgressPredictor({ catchUpRate: 0.25 });
    p.update(clock);
    expect(p.elapsedAt(4_000)).toBe(4_000);
    // The server says it is really at 3,000 ms at t = 4,000.
    p.update({ ...clock, anchorAtMs: 4_000, anchorElapsedMs: 3_000 });
    const shown = [4_000, 4_400, 4_800, 5_200, 5_600].map((t) => p.elapsedAt(t));
    for (let i = 1; i < shown.length; i++)
      expect(shown[i]).toBeGreaterThanOrEqual(shown[i - 1] as number);
    expect(shown[1]).toBe(4_100); // a quarter of the speed
    // The truth (3,000 + t − 4,000) passes 4,000 + creep after a while, then the bar follows it exactly.
    expect(p.elapsedAt(6_000)).toBe(5_000);
    expect(p.elapsedAt(7_000)).toBe(6_000);
  });

  it("jumps forward at once, holds when paused, and starts over on reset", () => {
    const p = new ProgressPredictor();
    p.update(clock);
    p.elapsedAt(1_000);
    p.update({ ...clock, anchorAtMs: 1_000, anchorElapsedMs: 6_000 });
    expect(p.elapsedAt(1_000)).toBe(6_000);
    p.update({ ...clock, anchorAtMs: 2_000, anchorElapsedMs: 7_000, running: false });
    expect(p.elapsedAt(9_000)).toBe(7_000);
    p.reset();
    p.update({ ...clock, anchorAtMs: 9_000 });
    expect(p.elapsedAt(9_500)).toBe(500);
  });

  it("places elapsed time in its step", () => {
    expect(stepAt([1_000, 3_000], 2_500)).toEqual({ index: 1, percent: 50 });
    expect(stepAt([1_000, 3_000], 9_000)).toEqual({ index: 1, percent: 100 });
  });
});

describe("workflow progress prediction", () => {
  const stopped = { anchorAtMs: 0, anchorElapsedMs: 0, rate: 1, running: false };

  it("follows each step's clock, weighted by its planned time, and counts a completed step whole", () => {
    const p = new WorkflowPredictor();
    p.update([
      {
        completed: true,
        percent: 0,
        clock: { ...stopped, anchorElapsedMs: 3_000, totalDurationMs: 10_000 },
      },
      {
        completed: false,
        percent: 0,
        clock: { ...stopped, anchorAtMs: 1_000, running: true, totalDurationMs: 30_000 },
      },
      { completed: false, percent: 0, clock: { ...stopped, totalDurationMs: 60_000 } },
    ]);
    // At 16 s: step 0 whole (10 s), step 1 15 of 30 s, step 2 not started: 25 of 100 s.
    expect(p.at(16_000)).toEqual({ percent: 25, steps: [100, 50, 0] });
    expect(p.at(61_000).steps).toEqual([100, 100, 0]);
  });

  it("never moves a step back on a correction behind it, until reset", () => {
    const p = new WorkflowPredictor();
    const running = { ...stopped, running: true, totalDurationMs: 10_000 };
    p.update([{ completed: false, percent: 0, clock: running }]);
    expect(p.at(5_000).percent).toBe(50);
    // The server says 3 s at t = 5 s: the bar holds until the truth passes it.
    p.update([
      {
        completed: false,
        percent: 0,
        clock: { ...running, anchorAtMs: 5_000, anchorElapsedMs: 3_000 },
      },
    ]);
    expect(p.at(6_000).percent).toBe(50);
    expect(p.at(8_000).percent).toBe(60);
    p.reset();
    p.update([
      {
        completed: false,
        percent: 0,
        clock: { ...running, anchorAtMs: 5_000, anchorElapsedMs: 3_000 },
      },
    ]);
    expect(p.at(5_000).percent).toBe(30);
  });

  it("shows a step from a server before step clocks where it was reported", () => {
    const p = new WorkflowPredictor();
    p.update([
      { completed: false, clock: undefined, percent: 40 },
      { completed: false, clock: undefined, percent: 0 },
    ]);
    expect(p.at(1e12)).toEqual({ percent: 20, steps: [40, 0] });
  });
});

describe("the connection's retry rules", () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  /** A socket that fails to connect (close 1006), or closes with `code` after opening. */
  /** When each socket was constructed (fake time). */
  let opened: number[] = [];

  /** Close codes, in order; `{ code, afterFrame }`: the server sent a frame first. */
  /**
   * Sockets that each end as the next of `codes` says: closed with it (after
   * a frame if so marked), or `"closing"`: opened, a frame, then the
   * server's close frame (CLOSING) and no close event ever, as Node's
   * WebSocket has it while the server's object stays busy (docs/streams.md).
   */
  function socketClass(
    codes: (number | { code: number; afterFrame: true } | "closing")[],
    urls: string[],
  ) {
    return class {
      readyState = 0;
      binaryType = "blob";
      #listeners = new Map<string, ((event: unknown) => void)[]>();
      constructor(url: string) {
        urls.push(url);
        opened.push(Date.now());
        const next = codes.shift() ?? 1006;
        if (next === "closing") {
          queueMicrotask(() => {
            this.readyState = 1;
            this.#fire("open", {});
            this.#fire("message", { data: "{}" });
            this.readyState = 2;
          });
          return;
        }
        const { code, afterFrame } =
          typeof next === "number" ? { code: next, afterFrame: false } : next;
        queueMicrotask(() => {
          if (code !== 1006) this.#fire("open", {});
          if (afterFrame) this.#fire("message", { data: "{}" });
          this.#fire("close", { code, reason: "" });
        });
      }
      addEventListener(type: string, listener: (event: unknown) => void) {
        this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
      }
      send() {}
      close() {}
      #fire(type: string, event: unknown) {
        for (const listener of this.#listeners.get(type) ?? []) listener(event);
      }
    } as unknown as typeof WebSocket;
  }

  it("says at once that the runtime has no WebSocket, rather than retrying forever", async () => {
    vi.stubGlobal("WebSocket", undefined);
    const { LiteClient } = await import("../../src/client/lite");
    const { CraftingClient } = await import("../../src/client/index");
    try {
      const options = { baseUrl: "http://x", token: () => "t" };
      for (const open of [
        () => new LiteClient(options).watchSession("s-1"),
        () => new CraftingClient(options).watchSession("s-1"),
        () => new CraftingClient(options).syncSession("s-1"),
      ])
        expect(open).toThrow(/this runtime has no WebSocket: use Node >= 22/);
      // One passed in is enough.
      const passed = socketClass([1000], []);
      expect(() =>
        new LiteClient({ ...options, WebSocket: passed }).watchSession("s-1").close(),
      ).not.toThrow();
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("backs off within the ceilings, asks for a token every time, and stops on a final close", async () => {
    vi.useFakeTimers();
    opened = [];
    // The top of each jittered range, so the delays are the ceilings (minus a hair).
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    const urls: string[] = [];
    const states: { state: string; attempt: number }[] = [];
    let tokens = 0;
    const connection = new Connection({
      url: () => "ws://x/ws",
      token: () => `t${++tokens}`,
      protocols: ["crafting.v1.json"],
      backoff: { baseMs: 100, capMs: 1_000 },
      onMessage: () => {},
      onState: (state, detail) => states.push({ state, attempt: detail.attempt }),
      WebSocket: socketClass([1006, 1006, 1006, 1006, 1006, 1000], urls),
    }).start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(urls).toHaveLength(6);
    expect(tokens).toBe(6);
    // 100 · 2ⁿ capped at 1,000: the gaps between attempts.
    expect(opened.slice(1).map((t, i) => t - (opened[i] as number))).toEqual([
      99, 199, 399, 799, 999,
    ]);
    expect(connection.state).toBe("closed");
    // Each retry is said once, with its number; then the stream opens and ends for good.
    expect(states).toEqual([
      { state: "connecting", attempt: 0 },
      ...[1, 2, 3, 4, 5].map((attempt) => ({ state: "reconnecting", attempt })),
      { state: "open", attempt: 0 },
      { state: "closed", attempt: 0 },
    ]);
  });

  it("reconnects at once with a new token after 4001 on a stream that was live", async () => {
    vi.useFakeTimers();
    const urls: string[] = [];
    let tokens = 0;
    const expired = { code: 4001, afterFrame: true } as const;
    new Connection({
      url: () => "ws://x/ws",
      token: () => `t${++tokens}`,
      protocols: [],
      backoff: { baseMs: 60_000, capMs: 60_000 },
      onMessage: () => {},
      WebSocket: socketClass([expired, expired, 1000], urls),
    }).start();
    await vi.advanceTimersByTimeAsync(10);
    // No backoff (its base here is a minute): two expiries, three connects, three tokens.
    expect(urls).toHaveLength(3);
    expect(tokens).toBe(3);
  });

  /** A JWT-shaped token (unsigned: the client only reads it) expiring at `expMs`. */
  function jwtExpiringAt(expMs: number, n: number): string {
    const payload = btoa(JSON.stringify({ sub: `p${n}`, exp: Math.floor(expMs / 1000) }))
      .replaceAll("+", "-")
      .replaceAll("/", "_")
      .replaceAll("=", "");
    return `eyJhbGciOiJIUzI1NiJ9.${payload}.sig`;
  }

  it("reads a token's expiry from its payload, and nothing from what is not a JWT with an exp", () => {
    expect(tokenExpiryMs(jwtExpiringAt(1_800_000_000_000, 1))).toBe(1_800_000_000_000);
    expect(tokenExpiryMs("opaque-token")).toBeNull();
    expect(tokenExpiryMs("a.!!!.c")).toBeNull();
    expect(tokenExpiryMs(`a.${btoa(JSON.stringify({ sub: "p" }))}.c`)).toBeNull();
  });

  it("reconnects with a new token just before the one in use expires, and not before", async () => {
    vi.useFakeTimers();
    const protocols: string[][] = [];
    // A socket that opens, gets its first frame and stays open; a client close is echoed.
    const Socket = class {
      readyState = 0;
      binaryType = "blob";
      #listeners = new Map<string, ((event: unknown) => void)[]>();
      constructor(_url: string, offered: string[]) {
        protocols.push(offered);
        queueMicrotask(() => {
          this.readyState = 1;
          this.#fire("open", {});
          this.#fire("message", { data: "{}" });
        });
      }
      addEventListener(type: string, listener: (event: unknown) => void) {
        this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
      }
      send() {}
      close(code: number, reason: string) {
        this.readyState = 3;
        queueMicrotask(() => this.#fire("close", { code, reason }));
      }
      #fire(type: string, event: unknown) {
        for (const listener of this.#listeners.get(type) ?? []) listener(event);
      }
    } as unknown as typeof WebSocket;
    let issued = 0;
    const connection = new Connection({
      url: () => "ws://x/ws",
      // Each token lives 60 s from when it is issued.
      token: () => jwtExpiringAt(Date.now() + 60_000, ++issued),
      protocols: [],
      heartbeatMs: 3_600_000,
      onMessage: () => {},
      WebSocket: Socket,
    }).start();
    await vi.advanceTimersByTimeAsync(54_000);
    expect(protocols).toHaveLength(1);
    // 5 s before the expiry (a tenth of its life, at most 5 s): a new token, a new stream.
    await vi.advanceTimersByTimeAsync(2_000);
    expect(protocols).toHaveLength(2);
    expect(issued).toBe(2);
    const expiryOf = (offered: string[] | undefined) =>
      tokenExpiryMs(String(offered?.find((p) => p.startsWith("bearer."))).replace("bearer.", ""));
    expect(expiryOf(protocols[1])).toBe((expiryOf(protocols[0]) as number) + 55_000);
    expect(connection.state).toBe("open");
    connection.close();
  });

  it("says at once that a base URL is not the service's http(s) URL, rather than retrying forever", async () => {
    const { LiteClient } = await import("../../src/client/lite");
    const { CraftingClient } = await import("../../src/client/index");
    const WebSocket = socketClass([1000, 1000, 1000], []);
    for (const baseUrl of ["localhost:8787", "127.0.0.1:8787", "", "ftp://x", "http:/x"]) {
      const options = { baseUrl, token: () => "t", WebSocket };
      for (const open of [
        () => new LiteClient(options).watchSession("s-1"),
        () => new CraftingClient(options).watchSession("s-1"),
        () => new CraftingClient(options).syncSession("s-1"),
      ])
        expect(open).toThrow(
          `baseUrl must be the service's http(s) URL, such as http://127.0.0.1:8787 (got ${JSON.stringify(baseUrl)})`,
        );
    }
    expect(serviceBases("https://api.example/crafting/")).toEqual({
      http: "https://api.example/crafting",
      ws: "wss://api.example/crafting",
    });
    expect(serviceBases("HTTP://127.0.0.1:8787")).toEqual({
      http: "http://127.0.0.1:8787",
      ws: "ws://127.0.0.1:8787",
    });
    expect(serviceBases("ws://h:1")).toEqual({ http: "http://h:1", ws: "ws://h:1" });
  });

  it('says at once that an id is not a non-empty string, rather than watching the session "null"', async () => {
    const { LiteClient } = await import("../../src/client/lite");
    const { CraftingClient } = await import("../../src/client/index");
    const urls: string[] = [];
    const options = {
      baseUrl: "http://127.0.0.1:8787",
      token: () => "t",
      WebSocket: socketClass([1000, 1000, 1000, 1000, 1000, 1000], urls),
      // A sync view negotiates first: never answered here.
      fetch: () => new Promise<Response>(() => {}),
    };
    const lite = new LiteClient(options);
    const full = new CraftingClient(options);
    const openers = {
      sessionId: [
        (id: unknown) => lite.watchSession(id as string),
        (id: unknown) => full.watchSession(id as string),
        (id: unknown) => full.syncSession(id as string),
      ],
      playerId: [
        (id: unknown) => lite.watchQueue(id as string),
        (id: unknown) => full.watchQueue(id as string),
      ],
      workflowId: [
        (id: unknown) => lite.watchWorkflow(id as string),
        (id: unknown) => full.watchWorkflow(id as string),
      ],
    };
    const views: { close(): void }[] = [];
    for (const [name, opens] of Object.entries(openers))
      for (const open of opens) {
        for (const [id, said] of [
          [null, "null"],
          [undefined, "undefined"],
          ["", '""'],
          [42, "42"],
        ])
          expect(() => open(id)).toThrow(
            new TypeError(`${name} must be a non-empty string, such as "s-1001" (got ${said})`),
          );
        views.push(open("a b/c"));
      }
    await vi.waitFor(() => expect(urls).toHaveLength(6));
    for (const view of views) view.close();
    // A real id is encoded as one path segment.
    expect(urls.map((url) => url.replace(/\?.*/, ""))).toEqual([
      "ws://127.0.0.1:8787/ws/crafting/a%20b%2Fc",
      "ws://127.0.0.1:8787/ws/crafting/a%20b%2Fc",
      "ws://127.0.0.1:8787/ws/queue/a%20b%2Fc",
      "ws://127.0.0.1:8787/ws/queue/a%20b%2Fc",
      "ws://127.0.0.1:8787/ws/workflow/a%20b%2Fc",
      "ws://127.0.0.1:8787/ws/workflow/a%20b%2Fc",
    ]);
  });

  it("ends the light SDK's views on the statuses the full SDK's end on: the domain's rule", async () => {
    const { LiteClient } = await import("../../src/client/lite");
    const lite = new LiteClient({
      baseUrl: "http://127.0.0.1:8787",
      token: () => "t",
      WebSocket: socketClass([1000, 1000], []),
    });
    const session = lite.watchSession("s-1");
    const workflow = lite.watchWorkflow("w-1");
    for (const { name, number } of SessionStatusSchema.values) {
      session.current = { sessionId: "s-1", status: name };
      expect([name, session.ended]).toEqual([name, sessionEndedOnWire(number)]);
    }
    for (const { name, number } of WorkflowStatusSchema.values) {
      workflow.current = { workflowId: "w-1", status: name };
      expect([name, workflow.ended]).toEqual([name, workflowEndedOnWire(number)]);
    }
    // Both kinds of view end on some status, and a name of the other kind is not theirs.
    expect(SessionStatusSchema.values.filter((v) => sessionEndedOnWire(v.number))).toHaveLength(3);
    session.current = { sessionId: "s-1", status: "WORKFLOW_STATUS_COMPLETED" };
    expect(session.ended).toBe(false);
    session.close();
    workflow.close();
  });

  it("retries an attempt whose token provider hangs or fails, and says why", async () => {
    vi.useFakeTimers();
    const reasons: (string | undefined)[] = [];
    let calls = 0;
    const connection = new Connection({
      url: () => "ws://x/ws",
      token: () => {
        calls++;
        if (calls === 2) throw new Error("identity provider unreachable");
        return new Promise<string>(() => {}); // never answers
      },
      protocols: [],
      connectTimeoutMs: 1_000,
      backoff: { baseMs: 1, capMs: 1 },
      onMessage: () => {},
      onState: (state, { reason }) => state === "reconnecting" && reasons.push(reason),
      WebSocket: socketClass([], []),
    }).start();
    await vi.advanceTimersByTimeAsync(999);
    expect(reasons).toEqual([]);
    await vi.advanceTimersByTimeAsync(10);
    expect(reasons).toEqual([
      "could not connect: the token provider did not answer within 1000 ms",
      "could not connect: identity provider unreachable",
    ]);
    expect(calls).toBe(3);
    connection.close();
  });

  it("ends at once, as a refusal, when the token provider returns what cannot be a token", async () => {
    for (const [returned, said] of [
      ["Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", '"Bearer eyJhb…"'],
      [undefined, "undefined"],
      ["", '"…"'],
    ] as const) {
      const opened: string[] = [];
      const states: { state: string; code?: number; reason?: string }[] = [];
      let calls = 0;
      const connection = new Connection({
        url: () => "ws://x/ws",
        token: () => {
          calls++;
          return returned as string;
        },
        protocols: [],
        onMessage: () => {},
        onState: (state, detail) => states.push({ state, ...detail }),
        WebSocket: socketClass([1000], opened),
      }).start();
      await vi.waitFor(() => expect(connection.state).toBe("closed"));
      expect(states.at(-1)).toMatchObject({
        code: 4001,
        reason: `the token provider returned ${said}, not a token: return the JWT alone, without "Bearer "`,
      });
      expect({ calls, opened }).toEqual({ calls: 1, opened: [] });
    }
  });

  it("gives the sync channel the client's connection settings, as its other views", async () => {
    vi.useFakeTimers();
    const { CraftingClient } = await import("../../src/client/index");
    const reasons: (string | undefined)[] = [];
    const client = new CraftingClient({
      baseUrl: "http://x",
      token: () => new Promise<string>(() => {}), // never answers
      connectTimeoutMs: 1_000,
      backoff: { baseMs: 60_000, capMs: 60_000 },
      WebSocket: socketClass([], []),
    });
    const session = client.watchSession("s-1");
    const synced = client.syncSession("s-1");
    const said = ({ state, reason }: StateChange) =>
      state === "reconnecting" && reasons.push(reason);
    session.on("state", said);
    synced.on("state", said);
    await vi.advanceTimersByTimeAsync(1_001);
    expect(reasons).toEqual([
      "could not connect: the token provider did not answer within 1000 ms",
      "could not connect: the token provider did not answer within 1000 ms",
    ]);
    session.close();
    synced.close();
  });

  it("treats a server's close whose close event never comes as a dropped stream, and reconnects", async () => {
    vi.useFakeTimers();
    const urls: string[] = [];
    const states: { state: string; code?: number; reason?: string }[] = [];
    const connection = new Connection({
      url: () => "ws://x/ws",
      token: () => "t",
      protocols: [],
      heartbeatMs: 1_000,
      backoff: { baseMs: 1, capMs: 1 },
      onMessage: () => {},
      onState: (state, detail) => states.push({ state, ...detail }),
      WebSocket: socketClass(["closing", "closing"], urls),
    }).start();
    // The first heartbeat sees it closing; closeWaitMs (2 s) later it is given up on.
    await vi.advanceTimersByTimeAsync(2_900);
    expect(urls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(urls).toHaveLength(2);
    expect(states.find((s) => s.state === "reconnecting")).toMatchObject({
      code: 1006,
      reason: "the server closed the stream; its connection did not end",
    });
    connection.close();
  });

  it("names an ended stream's close as the server does, from either SDK's status name", () => {
    expect(endedReason("session", "COMPLETED")).toBe("session completed");
    expect(endedReason("session", "SESSION_STATUS_CANCELLED")).toBe("session cancelled");
    expect(endedReason("workflow", "WORKFLOW_STATUS_FAILED")).toBe("workflow failed");
  });

  it("reconnects after a deploy closes the stream (1012 service restart, 1001 going away)", async () => {
    vi.useFakeTimers();
    const urls: string[] = [];
    const states: { state: string; code?: number }[] = [];
    const restart = { code: 1012, afterFrame: true } as const;
    const away = { code: 1001, afterFrame: true } as const;
    new Connection({
      url: () => "ws://x/ws",
      token: () => "t",
      protocols: [],
      backoff: { baseMs: 100, capMs: 1_000 },
      onMessage: () => {},
      onState: (state, detail) => states.push({ state, code: detail.code }),
      WebSocket: socketClass([restart, away, 1000], urls),
    }).start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(urls).toHaveLength(3);
    // Each close is reported with its code, then the next attempt begins.
    expect(
      states.filter((s) => s.state === "reconnecting" && s.code !== undefined).map((s) => s.code),
    ).toEqual([1012, 1001]);
    expect(states.at(-1)).toMatchObject({ state: "closed", code: 1000 });
  });

  it("says why when the app closes it: 1000, closed by the client, as sent", async () => {
    vi.useFakeTimers();
    const states: { state: string; code?: number; reason?: string }[] = [];
    const connection = new Connection({
      url: () => "ws://x/ws",
      token: () => "t",
      protocols: [],
      onMessage: () => {},
      onState: (state, detail) => states.push({ state, code: detail.code, reason: detail.reason }),
      WebSocket: socketClass([{ code: 1000, afterFrame: true }], []),
    }).start();
    connection.close();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(states.at(-1)).toEqual({ state: "closed", code: 1000, reason: "closed by the client" });
    expect(states.filter((s) => s.state === "closed")).toHaveLength(1);
  });

  it("stops, and says why, when a fresh token is refused at the handshake (4001 before any frame)", async () => {
    vi.useFakeTimers();
    const urls: string[] = [];
    const states: { state: string; code?: number }[] = [];
    const connection = new Connection({
      url: () => "ws://x/ws",
      token: () => "t",
      protocols: [],
      onMessage: () => {},
      onState: (state, detail) => states.push({ state, code: detail.code }),
      WebSocket: socketClass([4001, 4001], urls),
    }).start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(urls).toHaveLength(1);
    expect(connection.state).toBe("closed");
    expect(states.at(-1)).toEqual({ state: "closed", code: 4001 });
  });
});
