/** crafting-service's ingest stream (GET /v1/progress/stream), in workerd. */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { CREDITS_PER_GRANT } from "../../src/middleware/limits";
import { INGEST_PROTOCOL } from "../../src/protocol/stream-codec";
import { INGEST_STREAM_LIMITS } from "../../src/routes/ingest-stream";
import { freshId, serviceToken, token } from "../support/tokens";
import { call, RawSocket, watch } from "./helpers";
import { activeSession, sessionJson } from "./stream-helpers";

type Answer = {
  ref: number | null;
  session_id: string | null;
  epoch?: number;
  seq?: number;
  error?: { code: string; message: string };
  retry_after_s?: number;
};

/** Opens an ingest stream with `bearer`; the raw response when it is refused. */
async function openIngest(bearer: string, headers: Record<string, string> = {}) {
  const response = await call("/v1/progress/stream", {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}`, ...headers },
  });
  return { response, socket: response.webSocket ? new RawSocket(response.webSocket) : null };
}

async function ingest(): Promise<RawSocket> {
  const { response, socket } = await openIngest(await serviceToken());
  if (response.status !== 101 || !socket) throw new Error(`refused: ${response.status}`);
  return socket;
}

/** Every answer so far: each message is an array of them. */
const answers = (socket: RawSocket) =>
  socket.messages.flatMap((m) => JSON.parse(String(m)) as Answer[]);

/** Waits for `n` answers and returns them. */
async function answered(socket: RawSocket, n: number): Promise<Answer[]> {
  await socket.until(() => answers(socket).length >= n, `${n} answers`);
  return answers(socket);
}

describe("the ingest stream", () => {
  it("applies each update in order and answers it with the seq its watchers were sent", async () => {
    const { sessionId, bearer } = await activeSession();
    const watcher = await watch(sessionId, bearer);
    const [snapshot] = await watcher.frameCount(1);
    const base = (snapshot as { seq: number }).seq;

    const socket = await ingest();
    socket.ws.send(JSON.stringify({ ref: 1, session_id: sessionId, elapsed_ms: 1000 }));
    const [alone] = await answered(socket, 1);
    expect(alone).toEqual({ ref: 1, session_id: sessionId, epoch: snapshot?.epoch, seq: base + 1 });
    await watcher.until(() => watcher.frames.at(-1)?.seq === base + 1, "the first update");

    // Sent faster than one session stores them: what waited goes in as one change.
    for (let ref = 2; ref <= 20; ref++)
      socket.ws.send(JSON.stringify({ ref, session_id: sessionId, elapsed_ms: ref * 1000 }));
    const got = await answered(socket, 20);
    expect(got.map((a) => a.ref)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const seqs = got.map((a) => a.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBeLessThan(20);
    expect(got.every((a) => a.session_id === sessionId && a.epoch === snapshot?.epoch)).toBe(true);
    // The updates of one change are answered in one message.
    expect(socket.messages.length).toBeLessThan(20);
    // Stored: the session is at the last answer's seq, placed by the last update (latest wins).
    const stored = await sessionJson(sessionId);
    expect(stored.seq).toBe(seqs.at(-1));
    expect(stored.clock).toMatchObject({ anchorElapsedMs: 20_000 });
    // Delivered: the watcher's newest frame is that change.
    await watcher.until(() => watcher.frames.at(-1)?.seq === seqs.at(-1), "the newest update");
    socket.ws.close(1000);
  });

  it("refuses only the update at fault when a change of several is refused by the session", async () => {
    const { sessionId } = await activeSession();
    const socket = await ingest();
    // The first goes alone; the next three wait for it and are tried as one change.
    socket.ws.send(JSON.stringify({ ref: 1, session_id: sessionId, elapsed_ms: 1000 }));
    socket.ws.send(JSON.stringify({ ref: 2, session_id: sessionId, elapsed_ms: 2000 }));
    socket.ws.send(JSON.stringify({ ref: 3, session_id: sessionId, elapsed_ms: 10_000_000 }));
    socket.ws.send(JSON.stringify({ ref: 4, session_id: sessionId, elapsed_ms: 4000 }));
    const got = await answered(socket, 4);
    expect(got.map((a) => a.ref)).toEqual([1, 2, 3, 4]);
    expect(got[2]).toEqual({
      ref: 3,
      session_id: sessionId,
      error: { code: "invalid_argument", message: "elapsed_ms must be between 0 and 120000" },
    });
    for (const i of [0, 1, 3]) expect(got[i]?.seq).toBeGreaterThan(0);
    const stored = await sessionJson(sessionId);
    expect(stored.seq).toBe(got[3]?.seq);
    expect(stored.clock).toMatchObject({ anchorElapsedMs: 4000 });
    socket.ws.close(1000);
  });

  it("keeps each session's order while serving many sessions on one stream", async () => {
    const sessions = await Promise.all([activeSession(), activeSession(), activeSession()]);
    const socket = await ingest();
    let ref = 0;
    for (let round = 1; round <= 10; round++)
      for (const { sessionId } of sessions)
        socket.ws.send(JSON.stringify({ ref: ++ref, session_id: sessionId, elapsed_ms: round }));
    const got = await answered(socket, 30);
    for (const { sessionId } of sessions) {
      const mine = got.filter((a) => a.session_id === sessionId);
      expect(mine).toHaveLength(10);
      const seqs = mine.map((a) => a.seq as number);
      const refs = mine.map((a) => a.ref as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(refs).toEqual([...refs].sort((a, b) => a - b));
      expect((await sessionJson(sessionId)).seq).toBe(seqs.at(-1));
    }
    socket.ws.close(1000);
  });

  it("refuses a bad message on its own, naming it, and goes on", async () => {
    const { sessionId } = await activeSession();
    const socket = await ingest();
    const big = "x".repeat(INGEST_STREAM_LIMITS.maxMessageBytes + 1);
    socket.ws.send("{not json");
    socket.ws.send(JSON.stringify({ ref: 2, session_id: sessionId, elapsed_ms: -5 }));
    socket.ws.send(JSON.stringify({ ref: 3, session_id: sessionId, step_progress: 10 }));
    socket.ws.send(JSON.stringify({ session_id: sessionId, elapsed_ms: 5 }));
    socket.ws.send(JSON.stringify({ ref: 5, session_id: "no such/id", elapsed_ms: 5 }));
    socket.ws.send(JSON.stringify({ ref: 6, session_id: freshId("missing"), elapsed_ms: 5 }));
    socket.ws.send(new Uint8Array([1, 2, 3]));
    socket.ws.send(JSON.stringify({ ref: 8, session_id: sessionId, pad: big }));
    socket.ws.send(JSON.stringify({ ref: 10, session_id: sessionId, elapsd_ms: 5, rate: "x" }));
    socket.ws.send(JSON.stringify({ ref: 9, session_id: sessionId, elapsed_ms: 9_000 }));
    const got = await answered(socket, 10);
    const byRef = (ref: number | null) => got.filter((a) => a.ref === ref);

    expect(
      byRef(null)
        .map((a) => a.error?.code)
        .sort(),
    ).toEqual(["invalid_argument", "invalid_argument", "invalid_argument", "payload_too_large"]);
    expect(byRef(null)[0]?.error?.message).toMatch(/not valid JSON/);
    expect(got.find((a) => a.error?.message.startsWith("ref "))).toBeDefined();
    expect(got.find((a) => /JSON text message/.test(a.error?.message ?? ""))).toBeDefined();
    expect(byRef(2)[0]?.error).toMatchObject({ code: "invalid_argument" });
    expect(byRef(3)[0]?.error).toEqual({
      code: "invalid_argument",
      message: "step_progress needs current_step_index",
    });
    expect(byRef(5)[0]).toMatchObject({ session_id: null, error: { code: "invalid_argument" } });
    expect(byRef(5)[0]?.error?.message).toMatch(/^session_id /);
    expect(byRef(6)[0]?.error).toMatchObject({ code: "not_found" });
    // A misspelt field is said with the message's other faults, as a body's is.
    expect(byRef(10)[0]?.error?.message).toMatch(
      /^elapsd_ms is not a field here \([^)]+\); rate must be a number/,
    );
    expect(byRef(null).find((a) => a.error?.code === "payload_too_large")?.error?.message).toBe(
      `a message is at most ${INGEST_STREAM_LIMITS.maxMessageBytes} bytes`,
    );
    // Nothing bad reached the session; the good update after them did.
    expect(byRef(9)[0]?.seq).toBeGreaterThan(0);
    expect((await sessionJson(sessionId)).seq).toBe(byRef(9)[0]?.seq);
    expect(socket.closed).toBeNull();
    socket.ws.close(1000);
  });

  it("answers the keepalive ping with pong, as every stream does, and counts it as no update", async () => {
    const { sessionId } = await activeSession();
    const socket = await ingest();
    socket.ws.send("ping");
    socket.ws.send(JSON.stringify({ ref: 1, session_id: sessionId, elapsed_ms: 1_000 }));
    socket.ws.send("ping");
    await socket.count(3);
    expect(socket.messages.filter((m) => m === "pong")).toHaveLength(2);
    // The one answer is the update's: the pings were neither refused nor applied.
    const got = socket.messages.filter((m) => m !== "pong").flatMap((m) => JSON.parse(String(m)));
    expect(got).toEqual([
      expect.objectContaining({ ref: 1, session_id: sessionId, seq: expect.any(Number) }),
    ]);
    socket.ws.close(1000);
  });

  it("takes arrays of updates: a session's share of one message is one change, a bad entry is refused alone", async () => {
    const sessions = await Promise.all([activeSession(), activeSession()]);
    const before = await Promise.all(
      sessions.map(async (s) => (await sessionJson(s.sessionId)).seq),
    );
    const socket = await ingest();
    const updates = [1, 2, 3, 4].flatMap((n) =>
      sessions.map(({ sessionId }, i) => ({
        ref: n * 10 + i,
        session_id: sessionId,
        elapsed_ms: n === 3 && i === 1 ? 10 ** 12 : n * 1000,
      })),
    );
    socket.ws.send(JSON.stringify(updates));
    const got = await answered(socket, 8);
    // Session 0: its four updates, one change.
    const first = got.filter((a) => a.session_id === sessions[0]?.sessionId);
    expect(first.map((a) => a.ref)).toEqual([10, 20, 30, 40]);
    expect(new Set(first.map((a) => a.seq))).toEqual(new Set([(before[0] as number) + 1]));
    // Session 1: the bad one (elapsed_ms past the plan, refused by the session) alone is refused.
    const second = got.filter((a) => a.session_id === sessions[1]?.sessionId);
    expect(second.map((a) => a.ref)).toEqual([11, 21, 31, 41]);
    expect(second[2]?.error?.code).toBe("invalid_argument");
    expect(second.filter((a) => a.seq !== undefined)).toHaveLength(3);
    expect((await sessionJson(sessions[1]?.sessionId as string)).clock).toMatchObject({
      anchorElapsedMs: 4000,
    });
    // Too many in one message: each is refused, naming the limit.
    const many = Array.from({ length: INGEST_STREAM_LIMITS.maxUpdatesPerMessage + 1 }, (_, i) => ({
      ref: 1000 + i,
      session_id: sessions[0]?.sessionId,
      elapsed_ms: 1,
    }));
    socket.ws.send(JSON.stringify(many));
    const all = await answered(socket, 8 + many.length);
    expect(all.slice(8).every((a) => a.error?.code === "invalid_argument")).toBe(true);
    expect(all[8]?.error?.message).toBe(
      `a message carries at most ${INGEST_STREAM_LIMITS.maxUpdatesPerMessage} updates`,
    );
    socket.ws.close(1000);
  });

  it("answers every update once, applied or refused, when a caller sends more than may wait", async () => {
    const { sessionId } = await activeSession();
    const before = (await sessionJson(sessionId)).seq as number;
    const socket = await ingest();
    const count = INGEST_STREAM_LIMITS.maxPending + 200;
    for (let ref = 1; ref <= count; ref++)
      socket.ws.send(JSON.stringify({ ref, session_id: sessionId, elapsed_ms: ref }));
    const got = await answered(socket, count);

    expect(new Set(got.map((a) => a.ref)).size).toBe(count);
    const applied = got.filter((a) => a.seq !== undefined);
    const refused = got.filter((a) => a.error !== undefined);
    expect(applied.length + refused.length).toBe(count);
    // The cap acted (the updates arrive faster than one session applies them).
    expect(refused.length).toBeGreaterThan(0);
    for (const a of refused) expect(a).toMatchObject({ error: { code: "resource_exhausted" } });
    // Applied in order; the session is at the last applied update's change, and no further.
    const seqs = applied.map((a) => a.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs[0]).toBe(before + 1);
    const stored = await sessionJson(sessionId);
    expect(stored.seq).toBe(seqs.at(-1));
    expect(stored.clock).toMatchObject({ anchorElapsedMs: applied.at(-1)?.ref });
    socket.ws.close(1000);
  }, 30_000);

  it("counts a message against the ingest limit once, whatever it carries, and refuses its updates past the limit", async () => {
    const { sessionId } = await activeSession();
    const limit = vi.spyOn(env.INGEST_RATE_LIMITER, "limit");
    try {
      // A service identity of its own: no credits held yet.
      const { response, socket } = await openIngest(await token(freshId("svc"), "service"));
      expect(response.status).toBe(101);
      const stream = socket as RawSocket;
      const updates = Array.from({ length: 200 }, (_, i) => ({
        ref: i,
        session_id: sessionId,
        elapsed_ms: i,
      }));
      stream.ws.send(JSON.stringify(updates));
      const got = await answered(stream, 200);
      expect(got.every((a) => a.seq !== undefined)).toBe(true);
      // The upgrade's grant covers the message: 200 updates, one count.
      expect(limit.mock.calls.length).toBe(1);

      // Once the limiter refuses, messages past the credits held are refused, each update answered.
      const other = await openIngest(await token(freshId("svc"), "service"));
      const refusing = other.socket as RawSocket;
      limit.mockImplementation(async () => ({ success: false }));
      const messages = 2 * CREDITS_PER_GRANT.INGEST_RATE_LIMITER;
      for (let i = 0; i < messages; i++)
        refusing.ws.send(JSON.stringify([{ ref: i, session_id: sessionId, elapsed_ms: i }]));
      const answers = await answered(refusing, messages);
      const refused = answers.filter((a) => a.error);
      expect(refused.length).toBeGreaterThanOrEqual(CREDITS_PER_GRANT.INGEST_RATE_LIMITER);
      for (const a of refused)
        expect(a).toMatchObject({ error: { code: "resource_exhausted" }, retry_after_s: 10 });
      refusing.ws.close(1000);
      stream.ws.close(1000);
    } finally {
      limit.mockRestore();
    }
  });

  it("needs a service token, a WebSocket upgrade and a protocol it speaks", async () => {
    const noToken = await call("/v1/progress/stream", { headers: { Upgrade: "websocket" } });
    expect(noToken.status).toBe(401);
    const player = await openIngest(await token(freshId("p")));
    expect(player.response.status).toBe(403);
    const plain = await call("/v1/progress/stream", {
      headers: { Authorization: `Bearer ${await serviceToken()}` },
    });
    expect(plain.status).toBe(400);
    const otherProtocol = await openIngest(await serviceToken(), {
      "Sec-WebSocket-Protocol": "crafting.v1.json",
    });
    expect(otherProtocol.response.status).toBe(400);
    const offered = await openIngest(await serviceToken(), {
      "Sec-WebSocket-Protocol": INGEST_PROTOCOL,
    });
    expect(offered.response.status).toBe(101);
    expect(offered.response.headers.get("Sec-WebSocket-Protocol")).toBe(INGEST_PROTOCOL);
    offered.socket?.ws.close(1000);
  });

  it("closes with 4001 when the token it was opened with expires", async () => {
    const shortLived = await token("crafting-service", "service", { ttlSeconds: 2 });
    const { response, socket } = await openIngest(shortLived);
    expect(response.status).toBe(101);
    const deadline = Date.now() + 5_000;
    while (!socket?.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(socket?.closed).toMatchObject({ code: 4001, reason: expect.stringMatching(/expired/) });
  }, 10_000);
});
