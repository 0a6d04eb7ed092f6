/** A player's crafting queue as a projection of their sessions, streamed live. */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TRIES_KEY } from "../../durable-objects/owed-retry";
import type { Player } from "../../durable-objects/player/player";
import { ReplayLog } from "../../durable-objects/streams/replay-log";
import { PROGRESS_NOTICE_INTERVAL_MS } from "../../src/domain/session/session-machine";
import { ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import { freshId, token } from "../support/tokens";
import {
  call,
  createSession,
  type Frame,
  metricGrows,
  metricSettled,
  overloaded,
  rebindIn,
  serviceCall,
  TestSocket,
} from "./helpers";

/** The status of `requestId` in the player's queue, as crafting-service reads it. */
async function queueStatus(playerId: string, requestId: string): Promise<string | undefined> {
  const read = await serviceCall(`/v1/players/${playerId}/queue`, undefined, "GET");
  const queue = (await read.json()) as { entries?: { requestId: string; status: string }[] };
  return queue.entries?.find((e) => e.requestId === requestId)?.status;
}

async function watchQueue(playerId: string, bearer: string, query = ""): Promise<TestSocket> {
  const response = await call(`/ws/queue/${playerId}${query}`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}` },
  });
  if (response.status !== 101 || !response.webSocket)
    throw new Error(`refused ${response.status}: ${await response.text()}`);
  return new TestSocket(response.webSocket);
}

type Entry = {
  requestId: string;
  queuePosition?: number;
  estimatedWaitSeconds?: number;
  status: string;
};
const entriesOf = (frame: Frame | undefined): Entry[] => {
  const queue = ((frame?.snapshot as { queue?: unknown } | undefined)?.queue ?? frame?.queue) as
    | { entries?: Entry[] }
    | undefined;
  return queue?.entries ?? [];
};
const byRequest = (frame: Frame | undefined) =>
  Object.fromEntries(
    entriesOf(frame).map((e) => [
      e.requestId,
      [e.status, e.queuePosition ?? 0, e.estimatedWaitSeconds ?? 0],
    ]),
  );

describe("the player's queue", () => {
  it("follows create, start, complete and the slot count, live", async () => {
    const playerId = freshId("p");
    const [a, b, c] = [freshId("s"), freshId("s"), freshId("s")];
    for (const id of [a, b, c]) {
      expect((await createSession(id, playerId)).status).toBe(201);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const socket = await watchQueue(playerId, await token(playerId));
    const [snapshot] = await socket.frameCount(1);
    // Two steps of 60 s each: 120 s per request, one slot.
    expect(byRequest(snapshot)).toEqual({
      [a]: ["QUEUE_ENTRY_STATUS_QUEUED", 1, 0],
      [b]: ["QUEUE_ENTRY_STATUS_QUEUED", 2, 120],
      [c]: ["QUEUE_ENTRY_STATUS_QUEUED", 3, 240],
    });

    await serviceCall(`/v1/sessions/${a}/start`);
    const started = (await socket.frameCount(2))[1];
    expect(byRequest(started)[a]).toEqual(["QUEUE_ENTRY_STATUS_PROCESSING", 0, 0]);
    expect(byRequest(started)[b]?.slice(0, 2)).toEqual(["QUEUE_ENTRY_STATUS_QUEUED", 1]);
    expect(byRequest(started)[b]?.[2]).toBeGreaterThan(119);

    await serviceCall(`/v1/sessions/${a}/complete`);
    const completed = (await socket.frameCount(3))[2];
    expect(Object.keys(byRequest(completed)).sort()).toEqual([b, c].sort());
    // The request that left says how it ended.
    expect(completed).toMatchObject({
      queue: { ended: [{ requestId: a, status: "QUEUE_ENTRY_STATUS_COMPLETED" }] },
    });

    expect((await serviceCall(`/v1/players/${playerId}/slots`, { slots: 2 }, "PUT")).status).toBe(
      200,
    );
    const twoSlots = (await socket.frameCount(4))[3];
    expect(byRequest(twoSlots)).toEqual({
      [b]: ["QUEUE_ENTRY_STATUS_QUEUED", 1, 0],
      [c]: ["QUEUE_ENTRY_STATUS_QUEUED", 2, 0],
    });
    expect(twoSlots).toMatchObject({ queue: { slots: 2 } });
    // A request that failed says why, as crafting-service said it.
    await serviceCall(`/v1/sessions/${b}/fail`, { reason: "out of coal" });
    const failed = (await socket.frameCount(5))[4];
    expect(failed).toMatchObject({
      queue: {
        ended: [
          { requestId: b, status: "QUEUE_ENTRY_STATUS_FAILED", failureReason: "out of coal" },
        ],
      },
    });
    // Every frame continues the previous seq.
    expect(socket.frames.map((f) => f.seq)).toEqual(
      [1, 2, 3, 4, 5].map((n) => (snapshot?.seq as number) + n - 1),
    );
  });

  it("hears of a progress report only when it moves the waits: one that agrees with the plan sends and stores nothing", async () => {
    const playerId = freshId("p");
    const [a, b] = [freshId("s"), freshId("s")];
    for (const id of [a, b]) expect((await createSession(id, playerId)).status).toBe(201);
    const startedAt = Date.now();
    await serviceCall(`/v1/sessions/${a}/start`);
    const socket = await watchQueue(playerId, await token(playerId));
    const [snapshot] = await socket.frameCount(1);
    // b waits for a's 120 s.
    expect(byRequest(snapshot)[b]?.[2]).toBeGreaterThan(118);
    const player = env.PLAYER.getByName(playerId);
    const logged = () =>
      runInDurableObject(player, (_p: Player, state) =>
        [...state.storage.kv.list({ prefix: "queue_log:" })].map(([key]) => key),
      );
    const before = await logged();

    // Each report after the session's 1 s between notices to the player, so none is merged away.
    const pause = () =>
      new Promise((resolve) => setTimeout(resolve, PROGRESS_NOTICE_INTERVAL_MS + 100));
    await pause();
    // crafting-service reports what the plan says: the queue has nothing new to show.
    const agrees = { elapsed_ms: Date.now() - startedAt };
    expect((await serviceCall(`/udp/sessions/${a}/progress`, agrees)).status).toBe(200);
    await pause();
    // 30 s ahead of plan: b's wait shrinks by 30 s.
    const ahead = { elapsed_ms: Date.now() - startedAt + 30_000 };
    expect((await serviceCall(`/udp/sessions/${a}/progress`, ahead)).status).toBe(200);
    const moved = (await socket.frameCount(2))[1];
    expect(byRequest(moved)[b]?.[2]).toBeLessThan(91);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // The report that agreed made no frame and no row: only the one that moved did.
    expect(socket.frames).toHaveLength(2);
    expect((await logged()).length).toBe(before.length + 1);
  });

  it("sends no frame when a report moves only the finish of the one session crafting, and a request queued later waits by it", async () => {
    const playerId = freshId("p");
    const [a, b] = [freshId("s"), freshId("s")];
    expect((await createSession(a, playerId)).status).toBe(201);
    const startedAt = Date.now();
    await serviceCall(`/v1/sessions/${a}/start`);
    const socket = await watchQueue(playerId, await token(playerId));
    await socket.frameCount(1);
    const player = env.PLAYER.getByName(playerId);
    const logged = () =>
      runInDurableObject(player, (_p: Player, state) =>
        [...state.storage.kv.list({ prefix: "queue_log:" })].map(([key]) => key),
      );
    const before = await logged();
    await new Promise((resolve) => setTimeout(resolve, PROGRESS_NOTICE_INTERVAL_MS + 100));
    // 30 s ahead of plan: the queue takes it (it moves a's finish), but nobody waits on a yet.
    const ahead = { elapsed_ms: Date.now() - startedAt + 30_000 };
    expect((await serviceCall(`/udp/sessions/${a}/progress`, ahead)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(socket.frames).toHaveLength(1);
    expect((await logged()).length).toBe(before.length);
    // A request queued now waits for a's corrected finish: ~90 s, not ~120 s.
    expect((await createSession(b, playerId)).status).toBe(201);
    const queued = (await socket.frameCount(2))[1];
    expect(byRequest(queued)[b]?.[2]).toBeLessThan(91);
    expect(byRequest(queued)[b]?.[2]).toBeGreaterThan(80);
    expect(queued?.seq).toBe((socket.frames[0]?.seq as number) + 1);
    expect((await logged()).length).toBe(before.length + 1);
  });

  it("reads a player's queue over HTTP as its stream's snapshot shows it (service, operators)", async () => {
    const playerId = freshId("p");
    const [a, b] = [freshId("s"), freshId("s")];
    for (const id of [a, b]) expect((await createSession(id, playerId)).status).toBe(201);
    await serviceCall(`/v1/sessions/${a}/start`);
    const socket = await watchQueue(playerId, await token(playerId));
    const [snapshot] = await socket.frameCount(1);
    const read = async (bearer: string, id = playerId) =>
      call(`/v1/players/${id}/queue`, { headers: { Authorization: `Bearer ${bearer}` } });
    const response = await read(await token("crafting-service", "service"));
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    const queue = (await response.json()) as { playerId: string; slots: number };
    expect(queue).toMatchObject({ playerId, slots: 1 });
    expect(byRequest({ queue })).toEqual(byRequest(snapshot));
    expect(Object.keys(byRequest({ queue }))).toEqual([a, b]);
    // An operator reads it too; a player (even this one) and no token do not.
    expect((await read(await token("alice", "operator"))).status).toBe(200);
    expect((await read(await token(playerId))).status).toBe(403);
    expect((await call(`/v1/players/${playerId}/queue`)).status).toBe(401);
    // An operator still changes nothing.
    const slots = await call(`/v1/players/${playerId}/slots`, {
      method: "PUT",
      headers: {
        Authorization: `Bearer ${await token("alice", "operator")}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ slots: 2 }),
    });
    expect(slots.status).toBe(403);
    // A player who never queued anything has an empty queue, and reading it stores nothing.
    const nobody = freshId("p");
    const empty = await read(await token("crafting-service", "service"), nobody);
    expect(await empty.json()).toEqual({ playerId: nobody, slots: 1 });
    const stored = await runInDurableObject(env.PLAYER.getByName(nobody), (_p: Player, state) => [
      ...state.storage.kv.list(),
    ]);
    expect(stored).toEqual([]);
    expect((await read(await token("crafting-service", "service"), "bad id!")).status).toBe(400);
  });

  it("is told a change again when a retry finds it stored and the session's object died before telling it", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
    const statusOf = async () => {
      const read = await serviceCall(`/v1/players/${playerId}/queue`, undefined, "GET");
      const queue = (await read.json()) as { entries?: { requestId: string; status: string }[] };
      return queue.entries?.find((e) => e.requestId === sessionId)?.status ?? "absent";
    };
    expect(await statusOf()).toBe("QUEUE_ENTRY_STATUS_PROCESSING");
    // The start's notice lost: the player's stored queue without the request, as if the
    // session's object died between storing the start and telling the player; both
    // objects then start afresh.
    const player = env.PLAYER.getByName(playerId);
    await runInDurableObject(player, (_p: Player, state) => {
      const queue = state.storage.kv.get<{ entries: Record<string, unknown> }>("queue");
      if (queue) delete queue.entries[sessionId];
      state.storage.kv.put("queue", queue);
    });
    await evictDurableObject(player);
    await evictDurableObject(env.CRAFTING_SESSION.getByName(sessionId));
    expect(await statusOf()).toBe("absent");
    // crafting-service, which got no answer, retries: the start is stored already, and
    // the queue is told again.
    const retried = await serviceCall(`/v1/sessions/${sessionId}/start`);
    expect(retried.status).toBe(200);
    expect(await statusOf()).toBe("QUEUE_ENTRY_STATUS_PROCESSING");
  });

  it("answers 503 when the player could not be told a status, and the retry tells it", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    const session = env.CRAFTING_SESSION.getByName(sessionId);
    // The player's object unreachable for this session's object (overloaded, as the platform says it).
    const reachable = await rebindIn(session, "PLAYER", () => ({ sessionChanged: overloaded }));
    const refused = await serviceCall(`/v1/sessions/${sessionId}/start`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("Retry-After")).toBe("1");
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(
      /^the change is stored \(seq 2\), but the player's queue or the workflow could not be told: send the same call again/,
    );
    expect(await queueStatus(playerId, sessionId)).toBe("QUEUE_ENTRY_STATUS_QUEUED");
    // Reachable again, crafting-service retries as told: the queue has the start.
    await reachable();
    expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
    expect(await queueStatus(playerId, sessionId)).toBe("QUEUE_ENTRY_STATUS_PROCESSING");
    // Its own retry, due later, finds the player told and calls no one.
    expect(await runDurableObjectAlarm(session)).toBe(true);
    expect(await runDurableObjectAlarm(session)).toBe(false);
  });

  it("tells the player a status it could not tell by itself, when the caller never retries", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    const session = env.CRAFTING_SESSION.getByName(sessionId);
    const owed = (outcome: string) =>
      metricSettled(
        "crafting_owed_work_total",
        `object="session",outcome="${outcome}",work="notify"`,
      );
    const [scheduled, done] = [await owed("retry_scheduled"), await owed("done")];
    const reachable = await rebindIn(session, "PLAYER", () => ({ sessionChanged: overloaded }));
    expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(503);
    // Still unreachable when the object's alarm tries: it tries again later.
    expect(await runDurableObjectAlarm(session)).toBe(true);
    expect(await queueStatus(playerId, sessionId)).toBe("QUEUE_ENTRY_STATUS_QUEUED");
    await reachable();
    // The object's memory lost too (evicted): its alarm is stored.
    await evictDurableObject(session);
    expect(await runDurableObjectAlarm(session)).toBe(true);
    expect(await queueStatus(playerId, sessionId)).toBe("QUEUE_ENTRY_STATUS_PROCESSING");
    // Told, it owes nothing more: no alarm left.
    expect(await runDurableObjectAlarm(session)).toBe(false);
    // Counted for operators: two tries scheduled, then done.
    const series = (outcome: string) => `object="session",outcome="${outcome}",work="notify"`;
    expect(
      await metricGrows("crafting_owed_work_total", series("retry_scheduled"), scheduled, 2),
    ).toBe(2);
    expect(await metricGrows("crafting_owed_work_total", series("done"), done, 1)).toBe(1);
  });

  it("still answers 503 when its retry cannot be stored, and says it gave up", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    expect((await createSession(sessionId, playerId)).status).toBe(201);
    const session = env.CRAFTING_SESSION.getByName(sessionId);
    const abandoned = `object="session",outcome="abandoned",work="notify"`;
    const before = await metricSettled("crafting_owed_work_total", abandoned);
    await rebindIn(session, "PLAYER", () => ({ sessionChanged: overloaded }));
    await runInDurableObject(session, (_instance, state) => {
      state.storage.setAlarm = () => Promise.reject(new Error("storage is unavailable"));
    });
    // The caller is told to send it again, which is then the only repair.
    const refused = await serviceCall(`/v1/sessions/${sessionId}/start`);
    expect(refused.status).toBe(503);
    expect(await metricGrows("crafting_owed_work_total", abandoned, before, 1)).toBe(1);
    // Given up is forgotten: no tries left behind for an alarm that will not come.
    const tries = await runInDurableObject(session, (_instance, state) =>
      state.storage.kv.get(TRIES_KEY),
    );
    expect(tries).toBeUndefined();
  });

  it("resumes a queue stream with exactly what was missed", async () => {
    const playerId = freshId("p");
    const bearer = await token(playerId);
    const first = await watchQueue(playerId, bearer);
    const [snapshot] = await first.frameCount(1);
    first.ws.close(1000);
    for (let i = 0; i < 3; i++) await createSession(freshId("s"), playerId);
    const resumed = await watchQueue(
      playerId,
      bearer,
      `?resume_epoch=${snapshot?.epoch}&resume_seq=${snapshot?.seq}`,
    );
    const frames = await resumed.frameCount(4);
    expect(frames.slice(0, 3).map((f) => entriesOf(f).length)).toEqual([1, 2, 3]);
    expect(frames[3]).toMatchObject({ resumed: { replayed: 3 } });
  });

  it("refuses a player watching another player's queue with 403, and bad slot counts with 400", async () => {
    const response = await call(`/ws/queue/${freshId("p")}`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(freshId("p"))}` },
    });
    expect(response.status).toBe(403);
    for (const slots of [0, 1.5, 17, "2"]) {
      expect(
        (await serviceCall(`/v1/players/${freshId("p")}/slots`, { slots }, "PUT")).status,
      ).toBe(400);
    }
    expect(await env.PLAYER.getByName(freshId("p")).craftingQueue()).toMatchObject({
      ok: false,
      error: { code: "not_found" },
    });
  });
});

describe("a replay log (a player's queue, a workflow)", () => {
  const frame = (seq: number) => create(ServerFrameSchema, { seq, epoch: 7 });
  const tables = (storage: DurableObjectStorage) =>
    storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .toArray()
      .map((row) => row.name);

  it("keeps the last `limit` frames in seq order past ten, and forgets the rest", async () => {
    await runInDurableObject(env.PLAYER.getByName(freshId("log")), (_i: Player, state) => {
      const log = new ReplayLog(state.storage, "test_log", 4);
      expect(log.after(0)).toEqual([]);
      for (let seq = 1; seq <= 12; seq++) log.append(seq, frame(seq));
      // Seqs 9..12: ordered as numbers (a key of 10 sorts after 9), 1..8 gone.
      expect(log.after(0).map((f) => f.seq)).toEqual([9, 10, 11, 12]);
      expect(log.after(10).map((f) => f.seq)).toEqual([11, 12]);
      expect(log.after(12)).toEqual([]);
      expect([...state.storage.kv.list({ prefix: "test_log:" })]).toHaveLength(4);
    });
  });

  it("costs a player no table of its own: its queue, slots and log share the key-value store", async () => {
    const playerId = freshId("p");
    for (let i = 0; i < 3; i++) await createSession(freshId("s"), playerId);
    const socket = await watchQueue(playerId, await token(playerId));
    await socket.frameCount(1);
    await runInDurableObject(env.PLAYER.getByName(playerId), (_i: Player, state) => {
      // The log holds the three changes; a table for it would be a 4 KB page more.
      expect([...state.storage.kv.list({ prefix: "queue_log:" })]).toHaveLength(3);
      // Only the runtime's key-value store: no table of ours, and no alarm's (a watched player sets none).
      expect(tables(state.storage)).toEqual(["_cf_KV"]);
    });
    socket.ws.close(1000);
  });

  it("moves a log kept in a table of its own (the earlier layout) over, and drops the table", async () => {
    await runInDurableObject(env.PLAYER.getByName(freshId("log")), (_i: Player, state) => {
      const { sql } = state.storage;
      sql.exec("CREATE TABLE old_log (seq INTEGER PRIMARY KEY, frame BLOB NOT NULL)");
      for (const seq of [5, 6, 7])
        sql.exec(
          "INSERT INTO old_log (seq, frame) VALUES (?, ?)",
          seq,
          toBinary(ServerFrameSchema, frame(seq)),
        );
      const log = new ReplayLog(state.storage, "old_log", 3);
      expect(log.after(5).map((f) => f.seq)).toEqual([6, 7]);
      expect(tables(state.storage)).not.toContain("old_log");
      // The next change goes on from there, the oldest falling out.
      log.append(8, frame(8));
      expect(log.after(0).map((f) => f.seq)).toEqual([6, 7, 8]);
    });
  });
});
