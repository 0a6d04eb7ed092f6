/**
 * The limits of streams, in workerd: stream slots, idle and token-expiry closes,
 * the frame budget, origin allowlist and rate limits, the audit log, and
 * bad input that changes nothing.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { LEASE_RULES } from "../../src/domain/streams/stream-leases";
import { FRAME_BUDGET } from "../../src/domain/streams/stream-liveness";
import { freshId, token } from "../support/tokens";
import {
  call,
  captureLogs,
  createSession,
  type Frame,
  openStream,
  serviceCall,
  type TestSocket,
  watch,
} from "./helpers";
import {
  activeSession,
  ageStreams,
  kindOf,
  playerStreams,
  sessionJson,
  sessionObject,
  until,
} from "./stream-helpers";

/** Moves the player's slots `ms` into the past, as if taken that long ago (then a fresh instance reads them). */
async function ageLeases(playerId: string, ms: number): Promise<void> {
  const player = env.PLAYER.getByName(playerId);
  await runInDurableObject(player, (_instance, state) => {
    for (const [key, lease] of state.storage.kv.list<{ takenAtMs?: number }>({ prefix: "lease:" }))
      state.storage.kv.put(key, { ...lease, takenAtMs: (lease.takenAtMs ?? 0) - ms });
  });
  await evictDurableObject(player);
}

describe("stream slots", () => {
  it(`lets exactly ${LEASE_RULES.maxStreamsPerPlayer} of 20 concurrent connects by one player through; the rest get 429`, async () => {
    const playerId = freshId("p");
    const bearer = await token(playerId);
    const sessions = Array.from({ length: 4 }, () => freshId("s"));
    for (const sessionId of sessions) await createSession(sessionId, playerId);

    const attempts = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        openStream(sessions[i % sessions.length] as string, bearer),
      ),
    );
    const statuses = attempts.map((a) => a.response.status);
    expect(statuses.filter((s) => s === 101)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    for (const refused of attempts.filter((a) => a.response.status === 429)) {
      expect(await refused.response.json()).toMatchObject({
        error: { code: "resource_exhausted", message: expect.stringContaining("10 streams") },
      });
    }
    expect(await playerStreams(playerId)).toHaveLength(10);
    // Another player is not affected.
    const other = freshId("p");
    const otherSession = freshId("s");
    await createSession(otherSession, other);
    expect((await openStream(otherSession, await token(other))).response.status).toBe(101);
  });

  it("frees a slot when a stream closes, however it closes", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const sockets = await Promise.all(Array.from({ length: 10 }, () => watch(sessionId, bearer)));
    expect((await openStream(sessionId, bearer)).response.status).toBe(429);

    (sockets[0] as TestSocket).ws.close(1000, "bye");
    await until(
      async () => (await playerStreams(playerId)).length === 9,
      "slot freed by a client close",
    );
    expect((await openStream(sessionId, bearer)).response.status).toBe(101);

    // A server-side close (the session ends) frees every slot it held.
    await serviceCall(`/v1/sessions/${sessionId}/complete`);
    await until(
      async () => (await playerStreams(playerId)).length === 0,
      "slots freed by the final close",
    );
  });

  it("reclaims, at the limit, slots whose streams were lost (a crash), and only those", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const open = await Promise.all(Array.from({ length: 4 }, () => watch(sessionId, bearer)));
    await Promise.all(open.map((socket) => socket.frameCount(1)));
    // Six slots whose streams no object holds: what a crash leaves behind.
    const player = env.PLAYER.getByName(playerId);
    for (let i = 0; i < 6; i++) await player.acquireStream("session", sessionId);
    expect(await playerStreams(playerId)).toHaveLength(10);
    // Taken moments ago, they could still be opening: not reclaimed yet.
    expect((await openStream(sessionId, bearer)).response.status).toBe(429);
    await ageLeases(playerId, 10_000);
    const opened = await openStream(sessionId, bearer);
    expect(opened.response.status).toBe(101);
    // The six lost slots are gone; the four open streams and the new one hold theirs.
    expect(await playerStreams(playerId)).toHaveLength(5);
    for (const socket of open) expect(socket.closed).toBeNull();
  });

  it("frees, when the player needs it, the slot of a dead client (silent for 30 s), closing its stream", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const streams = await Promise.all(
      Array.from({ length: LEASE_RULES.maxStreamsPerPlayer }, () => watch(sessionId, bearer)),
    );
    await Promise.all(streams.map((socket) => socket.frameCount(1)));
    expect((await openStream(sessionId, bearer)).response.status).toBe(429);
    // Nothing heard from any of them for 31 s; nothing woke the object meanwhile.
    await ageStreams(sessionObject(sessionId), 31_000);
    await ageLeases(playerId, 31_000);
    const opened = await openStream(sessionId, bearer);
    expect(opened.response.status).toBe(101);
    for (const socket of streams)
      expect(await socket.closing()).toEqual({ code: 4008, reason: "idle for 30 s" });
    expect(await playerStreams(playerId)).toHaveLength(1);
  });

  it("keeps each slot under its own key: taking or freeing one writes one small row, however many the player holds", async () => {
    const playerId = freshId("p");
    const player = env.PLAYER.getByName(playerId);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const taken = await player.acquireStream("session", freshId("s"));
      if (!taken.ok) throw new Error(taken.error.message);
      ids.push(taken.value.leaseId);
    }
    const stored = () =>
      runInDurableObject(player, (_instance, state) => ({
        keys: [...state.storage.kv.list<{ id: string }>({ prefix: "lease:" })].map(
          ([key, lease]) => `${key}=${lease.id}`,
        ),
        legacy: state.storage.kv.get("stream_leases") ?? null,
      }));
    expect(await stored()).toEqual({
      keys: ids.map((id) => `lease:${id}=${id}`).sort(),
      legacy: null,
    });
    await player.releaseStreams([ids[1] as string]);
    expect((await stored()).keys).toEqual([ids[0], ids[2]].map((id) => `lease:${id}=${id}`).sort());
  });

  it("moves slots kept in the older one-list layout over, and drops those expired", async () => {
    const playerId = freshId("p");
    const player = env.PLAYER.getByName(playerId);
    const now = Date.now();
    const lease = (id: string, expiresAtMs: number) => ({
      id,
      kind: "session",
      target: "s-old",
      takenAtMs: now - 60_000,
      expiresAtMs,
    });
    await runInDurableObject(player, (_instance, state) => {
      state.storage.kv.put("stream_leases", [
        lease("live", now + 3_600_000),
        lease("gone", now - 1),
      ]);
    });
    await evictDurableObject(player);
    expect((await playerStreams(playerId)).map((l) => l.id)).toEqual(["live"]);
    const keys = () =>
      runInDurableObject(player, (_instance, state) => ({
        keys: [...state.storage.kv.list({ prefix: "lease:" })].map(([key]) => key),
        legacy: state.storage.kv.get("stream_leases") ?? null,
      }));
    expect(await keys()).toEqual({ keys: ["lease:gone", "lease:live"], legacy: null });
    // The next slot freed drops the expired one too.
    const taken = await player.acquireStream("session", "s-new");
    if (!taken.ok) throw new Error(taken.error.message);
    await player.releaseStreams([taken.value.leaseId]);
    expect(await keys()).toEqual({ keys: ["lease:live"], legacy: null });
  });

  it("does not spend a slot on a refused upgrade", async () => {
    const owner = freshId("p");
    const sessionId = freshId("s");
    await createSession(sessionId, owner);
    const intruder = freshId("p");
    const intruderBearer = await token(intruder);
    for (let i = 0; i < 12; i++) {
      expect((await openStream(sessionId, intruderBearer)).response.status).toBe(403);
      expect((await openStream(freshId("s"), intruderBearer)).response.status).toBe(404);
    }
    expect(await playerStreams(intruder)).toEqual([]);
  });

  it("frees the slots of a stream whose session has ended by the time it connects", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    await serviceCall(`/v1/sessions/${sessionId}/cancel`);
    const socket = await watch(sessionId, bearer);
    expect((await socket.closing()).code).toBe(1000);
    await until(async () => (await playerStreams(playerId)).length === 0, "slot freed");
  });
});

/** The alarm set on a session's object (null: none, so it never wakes by a timer). */
async function alarmOf(sessionId: string): Promise<number | null> {
  return runInDurableObject(sessionObject(sessionId), (_instance, state) =>
    state.storage.getAlarm(),
  );
}

/** The size of a session's database, by SQLite (4 KB pages). */
async function databaseBytes(sessionId: string): Promise<number> {
  return runInDurableObject(
    sessionObject(sessionId),
    (_instance, state) => state.storage.sql.databaseSize,
  );
}

describe("stream rules at wakes, with no timer", () => {
  it("closes a stream idle for 30 s with 4008 at the object's next wake, keeps an active one, and sets no alarm", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const idle = await watch(sessionId, bearer);
    const active = await watch(sessionId, bearer);
    await idle.frameCount(1);
    await active.frameCount(1);
    // Watching schedules nothing: an idle watched session never wakes, and its
    // database stays at two pages, the schema's and its state's (an alarm
    // would add the runtime's table for it, a third).
    expect(await alarmOf(sessionId)).toBeNull();
    expect(await databaseBytes(sessionId)).toBe(2 * 4096);
    const stub = sessionObject(sessionId);
    // As if 31 s had passed since both connected, and the object hibernated meanwhile.
    await ageStreams(stub, 31_000);
    await evictDurableObject(stub);
    const before = await sessionJson(sessionId);
    // The active one speaks: that wake closes the silent one, and answers the speaker.
    active.ws.send(JSON.stringify({ ping: { clientTimeMs: "1" } }));
    expect(await idle.closing()).toEqual({ code: 4008, reason: "idle for 30 s" });
    const [, pong] = await active.frameCount(2);
    expect(kindOf(pong as Frame)).toBe("pong");
    expect(active.closed).toBeNull();
    expect(await sessionJson(sessionId)).toEqual(before);
    await until(async () => (await playerStreams(playerId)).length === 1, "idle slot freed");
    expect(await alarmOf(sessionId)).toBeNull();
  });

  it("sends a stream nothing once its token expired: the next change closes it with 4001 instead, and reaches the others", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const shortLived = await token(playerId, "player", { ttlSeconds: 2 });
    const expiring = await watch(sessionId, shortLived);
    const lasting = await watch(sessionId, bearer);
    await expiring.frameCount(1);
    await lasting.frameCount(1);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    // No timer closes it while nothing happens: it costs nothing, and receives nothing.
    expect(expiring.closed).toBeNull();
    expect(await alarmOf(sessionId)).toBeNull();
    expect((await serviceCall(`/v1/sessions/${sessionId}/pause`)).status).toBe(200);
    expect(await expiring.closing()).toEqual({
      code: 4001,
      reason: "token expired: reconnect with a new token",
    });
    const [, paused] = await lasting.frameCount(2);
    expect(kindOf(paused as Frame)).toBe("update");
    // The change never reached the expired stream; a new token resumes it (replay).
    expect(expiring.frames).toHaveLength(1);
    await until(async () => (await playerStreams(playerId)).length === 1, "expired slot freed");
  });

  it("answers nothing to a frame on a stream whose token expired, and closes it with 4001", async () => {
    const { sessionId, playerId } = await activeSession();
    const socket = await watch(sessionId, await token(playerId, "player", { ttlSeconds: 2 }));
    await socket.frameCount(1);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    socket.ws.send(JSON.stringify({ ping: { clientTimeMs: "1" } }));
    expect((await socket.closing()).code).toBe(4001);
    expect(socket.frames).toHaveLength(1);
  });
});

describe("hostile clients", () => {
  it(`throttles a client over ${FRAME_BUDGET.perSecond} frames/s, then closes it with 1008; the session is untouched`, async () => {
    const { sessionId, bearer } = await activeSession();
    const socket = await watch(sessionId, bearer);
    await socket.frameCount(1);
    const before = await sessionJson(sessionId);
    // Keep flooding until the server gives up (bounded): how many frames that
    // takes depends on how fast they are processed, since the bucket refills.
    for (let i = 0; i < 2_000 && socket.closed === null; i++) {
      socket.ws.send(JSON.stringify({ ping: { clientTimeMs: String(i) } }));
      if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect((await socket.closing()).code).toBe(1008);
    const kinds = socket.frames.slice(1).map(kindOf);
    // The burst is served in full before the first refusal; refusals follow; then the close.
    expect(kinds.indexOf("error")).toBeGreaterThanOrEqual(FRAME_BUDGET.burst);
    expect(kinds.filter((k) => k === "error").length).toBeGreaterThanOrEqual(
      FRAME_BUDGET.maxStrikes,
    );
    expect(socket.frames.find((f) => kindOf(f) === "error")).toMatchObject({
      error: { code: "resource_exhausted" },
    });
    expect(await sessionJson(sessionId)).toEqual(before);
  });

  it("refuses a browser from a foreign Origin (close 4003); allows listed origins and native clients", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const foreign = await openStream(sessionId, bearer, { Origin: "https://evil.example" });
    // A browser cannot read a handshake's status: it is told with a close code.
    expect(foreign.response.status).toBe(101);
    expect(await foreign.socket?.closing()).toEqual({
      code: 4003,
      reason: "origin https://evil.example may not open streams here",
    });
    expect(await playerStreams(playerId)).toEqual([]);
    for (const origin of env.ALLOWED_ORIGINS.split(",")) {
      expect((await openStream(sessionId, bearer, { Origin: origin })).response.status).toBe(101);
    }
    expect((await openStream(sessionId, bearer)).response.status).toBe(101);
  });

  it("rate-limits upgrades per player with 429 and Retry-After", async () => {
    const playerId = freshId("p");
    const bearer = await token(playerId);
    const missing = freshId("s");
    const statuses: number[] = [];
    let limited: Response | null = null;
    // The limiter counts in fixed 60 s windows: a run that straddles a window
    // boundary may get up to twice the limit through before the first 429.
    for (let i = 0; i < 125 && !limited; i++) {
      const { response } = await openStream(missing, bearer);
      statuses.push(response.status);
      if (response.status === 429) limited = response;
    }
    expect(statuses.slice(0, 60).every((s) => s === 404)).toBe(true);
    expect(limited?.headers.get("Retry-After")).toBe("60");
    expect(await limited?.json()).toMatchObject({ error: { code: "resource_exhausted" } });
  });

  it("rate-limits health checks per client IP", async () => {
    const ip = `2001:db8::${crypto.randomUUID().slice(0, 4)}`;
    const statuses: number[] = [];
    // Fixed 60 s windows: at most twice the limit gets through before the first 429.
    while (statuses.length < 125 && statuses.at(-1) !== 429) {
      statuses.push((await call("/health", { headers: { "CF-Connecting-IP": ip } })).status);
    }
    expect(statuses.slice(0, 60).every((s) => s === 200)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    expect(
      (await call("/health", { headers: { "CF-Connecting-IP": "198.51.100.7" } })).status,
    ).toBe(200);
  });
});

describe("audit log", () => {
  it("writes one line per connect, refusal, throttle and close, with ids, origin and code, never a token", async () => {
    const { lines } = captureLogs();
    const { sessionId, playerId, bearer } = await activeSession();
    const origin = env.ALLOWED_ORIGINS.split(",")[0] as string;
    const { socket } = await openStream(sessionId, bearer, { Origin: origin });
    if (!socket) throw new Error("upgrade refused");
    await socket.frameCount(1);
    for (let i = 0; i < FRAME_BUDGET.burst + 2; i++) socket.ws.send("{}");
    await socket.until(
      () =>
        socket.frames.some((f) => "error" in f && JSON.stringify(f).includes("resource_exhausted")),
      "throttle",
    );
    socket.ws.close(1000, "bye");
    await socket.closing();
    const forged = `${bearer.slice(0, -4)}AAAA`;
    expect((await openStream(sessionId, forged)).response.status).toBe(401);
    await until(async () => lines.some((l) => l.includes('"stream.close"')), "close line");

    const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events).toContainEqual(
      expect.objectContaining({
        event: "stream.connect",
        session_id: sessionId,
        player_id: playerId,
        origin,
      }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({
        event: "stream.throttle",
        session_id: sessionId,
        player_id: playerId,
        origin,
      }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({
        event: "stream.close",
        session_id: sessionId,
        player_id: playerId,
        close_code: 1000,
      }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ event: "auth.failure", reason: "bad_signature" }),
    );
    // No token, nor any of its three parts.
    const secrets = [bearer, forged, ...bearer.split("."), ...forged.split(".")];
    for (const line of lines) for (const secret of secrets) expect(line).not.toContain(secret);
  });
});

describe("bad input changes nothing", () => {
  it("leaves the session's state and the player's slots as they were, whatever the refusal", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const before = await sessionJson(sessionId);
    const expectUnchanged = async (what: string) => {
      expect(await sessionJson(sessionId), what).toEqual(before);
    };

    const big = await watch(sessionId, bearer);
    big.ws.send("x".repeat(64 * 1024 + 1));
    expect((await big.closing()).code).toBe(1009);
    await expectUnchanged("frame over 64 KB");

    const odd = await watch(sessionId, bearer);
    odd.ws.send("{not json");
    odd.ws.send(new Uint8Array([1, 2, 3]));
    odd.ws.send(JSON.stringify({ resume: { epoch: "x" } }));
    await odd.until(
      () => odd.frames.filter((f) => "error" in f).length === 3,
      "three error frames",
    );
    expect(odd.closed).toBeNull();
    await expectUnchanged("malformed, binary and ill-typed frames");
    odd.ws.close(1000);

    const foreign = await openStream(sessionId, bearer, { Origin: "https://evil.example" });
    expect((await foreign.socket?.closing())?.code).toBe(4003);
    expect((await openStream(sessionId, bearer, {}, "?resume_epoch=1")).response.status).toBe(400);
    expect(
      (
        await call(`/ws/crafting/${sessionId}?token=${bearer}`, {
          headers: { Upgrade: "websocket" },
        })
      ).status,
    ).toBe(400);
    await expectUnchanged("refused upgrades");
    await until(async () => (await playerStreams(playerId)).length === 0, "every slot back");
  });
});
