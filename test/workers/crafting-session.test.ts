import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  type CraftingSession,
  REPLAY_LOG_LIMIT,
} from "../../durable-objects/crafting-session/crafting-session";
import { PER_PAGE, SessionStore } from "../../durable-objects/crafting-session/session-store";
import type { StreamAttachment } from "../../durable-objects/streams/stream-attachment";
import type { Session } from "../../src/domain/session/session";
import { ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import { freshId, token } from "../support/tokens";
import { captureLogs, createSession, serviceCall, watch } from "./helpers";

describe("crafting session streams", () => {
  it("sends a snapshot first, then every update in sequence order to every subscriber", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    const bearer = await token(playerId);
    const sockets = await Promise.all([1, 2, 3].map(() => watch(sessionId, bearer)));

    expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
    expect(
      (await serviceCall(`/udp/sessions/${sessionId}/progress`, { progress_percent: 25 })).status,
    ).toBe(200);
    expect((await serviceCall(`/v1/sessions/${sessionId}/pause`)).status).toBe(200);

    for (const socket of sockets) {
      const frames = await socket.frameCount(4);
      expect(frames.map((f) => f.seq)).toEqual([1, 2, 3, 4]);
      expect(Object.keys(frames[0])).toContain("snapshot");
      expect(frames[0]).toMatchObject({
        snapshot: { session: { sessionId, playerId, status: "SESSION_STATUS_QUEUED" } },
      });
      expect(frames.slice(1).map((f) => (f.update as { cause: string }).cause)).toEqual([
        "start",
        "progress",
        "pause",
      ]);
      // A correction moves the clock (2 minutes planned: 25 % is 30 s); the status did not change.
      expect(frames[2]).toMatchObject({
        update: { clock: { running: true, anchorElapsedMs: 30_000 } },
      });
      expect(frames[2]).not.toHaveProperty("update.status");
      // Updates carry what changed; the plan and the progress view are the snapshot's.
      expect(frames[2]).not.toHaveProperty("update.progress");
      expect(frames[3]).toMatchObject({ update: { status: "SESSION_STATUS_PAUSED" } });
      // proto3 JSON omits false: a paused clock has no `running`.
      expect(frames[3]).not.toHaveProperty("update.clock.running");
      expect(new Set(frames.map((f) => f.epoch)).size).toBe(1);
    }
  });

  it("closes every stream normally after the final update", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const socket = await watch(sessionId, await token(playerId));
    await serviceCall(`/v1/sessions/${sessionId}/start`);
    await serviceCall(`/v1/sessions/${sessionId}/complete`);
    const frames = await socket.frameCount(3);
    expect(frames[2]).toMatchObject({
      seq: 3,
      update: { status: "SESSION_STATUS_COMPLETED", cause: "complete" },
    });
    expect(await socket.closing()).toEqual({ code: 1000, reason: "session completed" });
  });

  it("after the final update lets each client close first, and closes the streams that do not", async () => {
    const logs = captureLogs();
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const bearer = await token(playerId);
    const [leaving, staying] = [await watch(sessionId, bearer), await watch(sessionId, bearer)];
    await serviceCall(`/v1/sessions/${sessionId}/start`);
    await serviceCall(`/v1/sessions/${sessionId}/complete`);
    await leaving.frameCount(3);
    // Closed from the client's side, as the SDKs do on the final frame: a
    // close the client starts ends its connection at once (docs/streams.md).
    leaving.ws.close(1000, "done watching");
    await leaving.closing();
    expect(await staying.closing()).toEqual({ code: 1000, reason: "session completed" });
    const closes = logs.events("stream.close").filter((e) => e.session_id === sessionId);
    expect(closes.map((e) => e.by).sort()).toEqual(["client", "server"]);
  });

  it("answers a ping frame with a pong carrying both clocks", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const socket = await watch(sessionId, await token(playerId));
    socket.ws.send(JSON.stringify({ ping: { clientTimeMs: "12345" } }));
    const [, pong] = await socket.frameCount(2);
    expect(pong).toMatchObject({ seq: 1, pong: { clientTimeMs: "12345" } });
    expect(pong).toHaveProperty("pong.serverTimeMs", expect.stringMatching(/^[1-9]\d{12}$/));
  });

  it("answers a malformed frame with an error frame and keeps the stream open", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const socket = await watch(sessionId, await token(playerId));
    socket.ws.send("{not json");
    socket.ws.send(JSON.stringify({ something: "else" }));
    socket.ws.send(new Uint8Array([1, 2, 3]));
    const frames = await socket.frameCount(4);
    for (const frame of frames.slice(1))
      expect(frame).toMatchObject({ error: { code: "invalid_argument" } });
    await serviceCall(`/v1/sessions/${sessionId}/start`);
    await socket.until(() => socket.frames.some((f) => f.update), "the next update");
    expect(socket.closed).toBeNull();
  });

  it("closes a stream that sends a frame over 64 KB with 1009", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const socket = await watch(sessionId, await token(playerId));
    socket.ws.send("x".repeat(64 * 1024 + 1));
    expect((await socket.closing()).code).toBe(1009);
  });

  it("keeps sockets, their attachments and state through hibernation", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const socket = await watch(sessionId, await token(playerId));
    await serviceCall(`/v1/sessions/${sessionId}/start`);
    await socket.frameCount(2);

    const stub = env.CRAFTING_SESSION.getByName(sessionId);
    await evictDurableObject(stub, { webSockets: "hibernate" });

    expect(
      (await serviceCall(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: 90_000 })).status,
    ).toBe(200);
    const frames = await socket.frameCount(3);
    expect(frames[2]).toMatchObject({
      seq: 3,
      update: { cause: "progress", clock: { anchorElapsedMs: 90_000 } },
    });

    const attachments = await runInDurableObject(stub, (_instance: CraftingSession, state) =>
      state.getWebSockets().map((ws) => ws.deserializeAttachment() as StreamAttachment),
    );
    expect(attachments).toHaveLength(1);
    expect(attachments[0]).toMatchObject({ playerId });
    const view = await (await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).json();
    expect(view).toMatchObject({ status: "SESSION_STATUS_ACTIVE", seq: 3 });
  });

  it("leaves no partial state when the transaction fails, and tells no one", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const socket = await watch(sessionId, await token(playerId));
    const stub = env.CRAFTING_SESSION.getByName(sessionId);
    // Make the next write of the session's row fail inside its transaction.
    await runInDurableObject(stub, (_instance: CraftingSession, state) => {
      state.storage.sql.exec(
        "CREATE TRIGGER refuse BEFORE UPDATE ON session_pages BEGIN SELECT RAISE(ABORT, 'disk full'); END",
      );
      state.storage.sql.exec(
        "CREATE TRIGGER refuse_new BEFORE INSERT ON session_pages BEGIN SELECT RAISE(ABORT, 'disk full'); END",
      );
    });

    const response = await serviceCall(`/v1/sessions/${sessionId}/start`);
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: { code: "internal" } });

    const view = await (await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).json();
    expect(view).toMatchObject({ status: "SESSION_STATUS_QUEUED", seq: 1 });
    await evictDurableObject(stub);
    const stored = await (await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).json();
    expect(stored).toMatchObject({ status: "SESSION_STATUS_QUEUED", seq: 1 });
    expect(socket.frames).toHaveLength(1);
  });

  it("leaves nothing in storage when an unknown session is probed", async () => {
    const sessionId = freshId("s");
    const response = await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET");
    expect(response.status).toBe(404);
    const stub = env.CRAFTING_SESSION.getByName(sessionId);
    const stored = await runInDurableObject(stub, (_i: CraftingSession, state) => ({
      keys: [...state.storage.kv.list()].length,
      tables: state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((row) => row.name)
        .filter((name) => !name.startsWith("_cf_") && !name.startsWith("sqlite_")),
    }));
    expect(stored).toEqual({ keys: 0, tables: [] });
  });
});

describe("the session's storage", () => {
  const frame = (seq: number) =>
    // A 5-byte epoch and seqs past 127 put bytes above 0x7f (not UTF-8 text) in the frames.
    create(ServerFrameSchema, {
      seq,
      epoch: 4_000_000_007,
      kind: { case: "heartbeat", value: {} },
    });
  const session = (seq: number) =>
    ({ sessionId: "s", playerId: "p", seq, epoch: 7, materials: [] }) as unknown as Session;

  it("writes one row per change, keeps the last `limit` for replay, and reads the newest back", async () => {
    const stub = env.CRAFTING_SESSION.getByName(freshId("store"));
    await runInDurableObject(stub, (_instance: CraftingSession, state) => {
      const store = new SessionStore(state.storage, 3);
      const written = [1, 2, 3, 4, 5].map((seq) =>
        state.storage.transactionSync(() =>
          store.save(session(seq), seq === 1 ? null : frame(seq)),
        ),
      );
      expect(written).toEqual([1, 1, 1, 1, 1]);
      // A change that took no new seq rewrites its row and keeps the row's frame.
      expect(store.save({ ...session(5), recipeId: "restated" } as Session, null)).toBe(1);
      expect(store.after(0).map((f) => f.seq)).toEqual([3, 4, 5]);
      expect(new SessionStore(state.storage, 3).load()).toMatchObject({
        seq: 5,
        recipeId: "restated",
      });
    });
  });

  it("keeps the last `limit` seqs across pages, one state per page, and the slots wrap", async () => {
    const stub = env.CRAFTING_SESSION.getByName(freshId("pages"));
    await runInDurableObject(stub, (_instance: CraftingSession, state) => {
      const limit = PER_PAGE * 2 + 3;
      const store = new SessionStore(state.storage, limit);
      const last = PER_PAGE * 20 + 5;
      for (let seq = 1; seq <= last; seq++)
        expect(store.save(session(seq), seq === 1 ? null : frame(seq))).toBe(1);
      // Exactly the last `limit` seqs, in order, each once.
      const window = Array.from({ length: limit }, (_, i) => last - limit + 1 + i);
      expect(store.after(0).map((f) => f.seq)).toEqual(window);
      expect(store.after(last - 4).map((f) => f.seq)).toEqual(window.slice(-4));
      expect(store.after(last)).toEqual([]);
      expect(new SessionStore(state.storage, limit).load()).toMatchObject({ seq: last });
      const rows = state.storage.sql
        .exec<{ states: number; rows: number }>(
          "SELECT count(state) AS states, count(*) AS rows FROM session_pages",
        )
        .one();
      // The ring's slots (the window's pages, and one more): a state in each, never one per seq.
      expect(rows).toEqual({ states: 4, rows: 4 });
    });
  });

  it("loses no change when a transaction that began a page is rolled back", async () => {
    const stub = env.CRAFTING_SESSION.getByName(freshId("rollback"));
    await runInDurableObject(stub, (_instance: CraftingSession, state) => {
      const store = new SessionStore(state.storage, PER_PAGE * 4);
      for (let seq = 1; seq < PER_PAGE; seq++) store.save(session(seq), frame(seq));
      // The first seq of a new page, then the transaction fails: the page is not on disk.
      expect(() =>
        state.storage.transactionSync(() => {
          store.save(session(PER_PAGE), frame(PER_PAGE));
          throw new Error("a later write failed");
        }),
      ).toThrow("a later write failed");
      expect(store.after(PER_PAGE - 2).map((f) => f.seq)).toEqual([PER_PAGE - 1]);
      // The same seq again, and the next: both land, on the page the failed one began.
      expect(store.save(session(PER_PAGE), frame(PER_PAGE))).toBe(1);
      expect(store.save(session(PER_PAGE + 1), frame(PER_PAGE + 1))).toBe(1);
      expect(store.after(PER_PAGE - 2).map((f) => f.seq)).toEqual([
        PER_PAGE - 1,
        PER_PAGE,
        PER_PAGE + 1,
      ]);
      expect(new SessionStore(state.storage, PER_PAGE * 4).load()).toMatchObject({
        seq: PER_PAGE + 1,
      });
    });
  });

  it("moves a session stored one row per seq (a state in each) into pages on load", async () => {
    const stub = env.CRAFTING_SESSION.getByName(freshId("ring"));
    await runInDurableObject(stub, (_instance: CraftingSession, state) => {
      const { sql } = state.storage;
      sql.exec(
        "CREATE TABLE session_log (slot INTEGER PRIMARY KEY, seq INTEGER NOT NULL, state TEXT, frame BLOB)",
      );
      // A ring of 5 that has wrapped: seqs 36..40, seq 38 restated without a new frame.
      for (const seq of [36, 37, 38, 39, 40])
        sql.exec(
          "INSERT INTO session_log (slot, seq, state, frame) VALUES (?, ?, ?, ?)",
          seq % 5,
          seq,
          JSON.stringify(session(seq)),
          toBinary(ServerFrameSchema, frame(seq)),
        );
      const store = new SessionStore(state.storage, 5);
      expect(store.load()).toMatchObject({ seq: 40 });
      expect(store.after(35).map((f) => f.seq)).toEqual([36, 37, 38, 39, 40]);
      expect(store.after(38).map((f) => f.seq)).toEqual([39, 40]);
      const tables = sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name = 'session_log'")
        .toArray();
      expect(tables).toEqual([]);
      // The next change goes on as if nothing had moved.
      expect(store.save(session(41), frame(41))).toBe(1);
      expect(store.after(38).map((f) => f.seq)).toEqual([39, 40, 41]);
    });
  });

  it("moves a session stored in the earlier layout (state in KV, a replay_log table) over on load", async () => {
    const stub = env.CRAFTING_SESSION.getByName(freshId("legacy"));
    await runInDurableObject(stub, (_instance: CraftingSession, state) => {
      state.storage.kv.put("state", { ...session(4), materials: undefined });
      state.storage.sql.exec(
        "CREATE TABLE replay_log (seq INTEGER PRIMARY KEY, frame BLOB NOT NULL)",
      );
      for (const seq of [2, 3, 4])
        state.storage.sql.exec(
          "INSERT INTO replay_log (seq, frame) VALUES (?, ?)",
          seq,
          toBinary(ServerFrameSchema, frame(seq)),
        );
      const store = new SessionStore(state.storage, REPLAY_LOG_LIMIT);
      expect(store.load()).toMatchObject({ seq: 4, materials: [] });
      expect(store.after(1).map((f) => f.seq)).toEqual([2, 3, 4]);
      expect(state.storage.kv.get("state")).toBeUndefined();
      const tables = state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name = 'replay_log'")
        .toArray();
      expect(tables).toEqual([]);
    });
  });
});
