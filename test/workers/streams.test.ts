/**
 * Streams that survive: resume, stream slots, idle and token sweeps,
 * frame budget, origin allowlist and rate limits, in workerd.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { CraftingSession } from "../../durable-objects/crafting-session/crafting-session";
import type { StreamAttachment } from "../../durable-objects/streams/stream-attachment";
import { PROGRESS_PACING } from "../../src/domain/streams/progress-pacing";
import { LEASE_RULES } from "../../src/domain/streams/stream-leases";
import { FRAME_BUDGET } from "../../src/domain/streams/stream-liveness";
import { freshId, token } from "../support/tokens";
import {
  call,
  createSession,
  type Frame,
  openStream,
  serviceCall,
  type TestSocket,
  watch,
} from "./helpers";

const sessionObject = (sessionId: string) => env.CRAFTING_SESSION.getByName(sessionId);
const playerStreams = (playerId: string) => env.PLAYER.getByName(playerId).streams();

/** A created and started session, and its owner's token. */
async function activeSession(): Promise<{ sessionId: string; playerId: string; bearer: string }> {
  const sessionId = freshId("s");
  const playerId = freshId("p");
  expect((await createSession(sessionId, playerId)).status).toBe(201);
  expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
  return { sessionId, playerId, bearer: await token(playerId) };
}

/** Posts `count` progress corrections, each a new seq. */
async function postProgress(sessionId: string, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    const response = await serviceCall(`/udp/sessions/${sessionId}/progress`, {
      elapsed_ms: i * 10,
    });
    expect(response.status).toBe(200);
  }
}

/** What a state change would alter (progress readings move with the clock; these do not). */
async function sessionJson(sessionId: string): Promise<Record<string, unknown>> {
  const state = (await (
    await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")
  ).json()) as Record<string, unknown>;
  return { seq: state.seq, epoch: state.epoch, status: state.status, clock: state.clock };
}

const kindOf = (frame: Frame) =>
  ["snapshot", "update", "error", "pong", "resumed", "heartbeat"].find((k) => k in frame);

describe("resume", () => {
  it("replays exactly the updates missed while away, in order, then says so and goes live", async () => {
    const { sessionId, bearer } = await activeSession();
    const first = await watch(sessionId, bearer);
    const [snapshot] = await first.frameCount(1);
    const { epoch, seq } = snapshot as { epoch: number; seq: number };
    first.ws.close(1000);
    await first.closing();

    await postProgress(sessionId, 50);
    const resumed = await watch(sessionId, bearer, `?resume_epoch=${epoch}&resume_seq=${seq}`);
    const frames = await resumed.frameCount(51);
    expect(frames.slice(0, 50).map(kindOf)).toEqual(Array(50).fill("update"));
    expect(frames.slice(0, 50).map((f) => f.seq)).toEqual(
      Array.from({ length: 50 }, (_, i) => seq + 1 + i),
    );
    expect(frames[50]).toMatchObject({ seq: seq + 50, resumed: { fromSeq: seq, replayed: 50 } });

    await postProgress(sessionId, 1);
    const [live] = (await resumed.frameCount(52)).slice(51);
    expect(live).toMatchObject({ seq: seq + 51, update: { cause: "progress" } });
  });

  it("resumes from a Resume frame sent on an open stream", async () => {
    const { sessionId, bearer } = await activeSession();
    const socket = await watch(sessionId, bearer);
    const [snapshot] = await socket.frameCount(1);
    const { epoch, seq } = snapshot as { epoch: number; seq: number };
    await postProgress(sessionId, 3);
    await socket.frameCount(4);
    socket.ws.send(JSON.stringify({ resume: { epoch, seq: seq + 1 } }));
    const frames = (await socket.frameCount(7)).slice(4);
    expect(frames.map((f) => f.seq)).toEqual([seq + 2, seq + 3, seq + 3]);
    expect(frames[2]).toMatchObject({ resumed: { fromSeq: seq + 1, replayed: 2 } });
  });

  it("tells a client that is already up to date that it missed nothing", async () => {
    const { sessionId, bearer } = await activeSession();
    const socket = await watch(sessionId, bearer);
    const [snapshot] = await socket.frameCount(1);
    const { epoch, seq } = snapshot as { epoch: number; seq: number };
    const again = await watch(sessionId, bearer, `?resume_epoch=${epoch}&resume_seq=${seq}`);
    expect(await again.frameCount(1)).toEqual([
      expect.objectContaining({ seq, resumed: { fromSeq: seq } }),
    ]);
  });

  it("sends a snapshot marked not recovered when the gap is older than the replay log", async () => {
    const { sessionId, bearer } = await activeSession();
    const socket = await watch(sessionId, bearer);
    const [snapshot] = await socket.frameCount(1);
    const { epoch, seq } = snapshot as { epoch: number; seq: number };
    socket.ws.close(1000);
    // 1,001 updates, applied in the object (over HTTP this test would take 20 s).
    await runInDurableObject(sessionObject(sessionId), async (instance: CraftingSession) => {
      for (let i = 1; i <= 1001; i++)
        expect((await instance.correctProgress({ elapsedMs: i })).ok).toBe(true);
    });

    const late = await watch(sessionId, bearer, `?resume_epoch=${epoch}&resume_seq=${seq}`);
    const frames = await late.frameCount(1);
    expect(frames[0]).toMatchObject({ seq: seq + 1001, snapshot: { session: { sessionId } } });
    // proto3 JSON omits false: "recovered" is absent, never true.
    expect(frames[0]).not.toHaveProperty("snapshot.recovered");
    // One step inside the log still replays.
    const edge = await watch(sessionId, bearer, `?resume_epoch=${epoch}&resume_seq=${seq + 1}`);
    const replayed = await edge.frameCount(1001);
    expect(replayed[0]).toMatchObject({ seq: seq + 2, update: {} });
    expect(replayed[1000]).toMatchObject({ resumed: { replayed: 1000 } });
  });

  it("sends a snapshot marked not recovered for another epoch or a seq from the future", async () => {
    const { sessionId, bearer } = await activeSession();
    const socket = await watch(sessionId, bearer);
    const [snapshot] = await socket.frameCount(1);
    const { epoch, seq } = snapshot as { epoch: number; seq: number };
    for (const query of [
      `?resume_epoch=${(epoch + 1) % 2 ** 32}&resume_seq=${seq}`,
      `?resume_epoch=${epoch}&resume_seq=${seq + 5}`,
    ]) {
      const client = await watch(sessionId, bearer, query);
      const [frame] = await client.frameCount(1);
      expect(kindOf(frame)).toBe("snapshot");
      expect(frame).not.toHaveProperty("snapshot.recovered");
    }
  });

  it("refuses a malformed resume point with 400 before taking a slot", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    for (const query of [
      "?resume_epoch=1",
      "?resume_seq=1",
      "?resume_epoch=-1&resume_seq=1",
      "?resume_epoch=1&resume_seq=4294967296",
      "?resume_epoch=x&resume_seq=1",
    ]) {
      const { response } = await openStream(sessionId, bearer, {}, query);
      expect(response.status, query).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: "invalid_argument" } });
    }
    expect(await playerStreams(playerId)).toEqual([]);
  });
});

describe("slow consumers: progress is latest-wins", () => {
  /** Checks that every update continues the previous frame's seq, counting what it supersedes. */
  function expectUnbroken(frames: Frame[], fromSeq: number): number {
    let seen = fromSeq;
    for (const frame of frames.filter((f) => "update" in f)) {
      const superseded = ((frame.update as { superseded?: number }).superseded ?? 0) as number;
      expect(frame.seq).toBe(seen + 1 + superseded);
      seen = frame.seq as number;
    }
    return seen;
  }

  it(`sends at most ${PROGRESS_PACING.perSecond} progress frames/s a session, always the newest, never losing a status change`, async () => {
    const { sessionId, bearer } = await activeSession();
    const socket = await watch(sessionId, bearer);
    const [snapshot] = await socket.frameCount(1);
    const startSeq = snapshot?.seq as number;
    const FLOOD = 300;
    const startedAt = Date.now();
    await runInDurableObject(sessionObject(sessionId), async (instance: CraftingSession) => {
      for (let i = 1; i <= FLOOD; i++)
        expect((await instance.correctProgress({ elapsedMs: i * 100 })).ok).toBe(true);
    });
    const elapsedS = (Date.now() - startedAt) / 1000;
    // The newest progress always arrives.
    await socket.until(() => socket.frames.at(-1)?.seq === startSeq + FLOOD, "the newest progress");
    const updates = socket.frames.filter((f) => "update" in f);
    expect(updates.at(-1)).toMatchObject({
      update: { progress: { elapsedSeconds: expect.closeTo((FLOOD * 100) / 1000, 1) } },
    });
    // Far fewer frames than changes, within the budget, and no change unaccounted for.
    expect(updates.length).toBeLessThanOrEqual(
      PROGRESS_PACING.burst + Math.ceil(PROGRESS_PACING.perSecond * (elapsedS + 0.2)) + 1,
    );
    expect(updates.length).toBeLessThan(FLOOD / 2);
    expect(expectUnbroken(socket.frames, startSeq)).toBe(startSeq + FLOOD);

    // A status change right after a flood goes out at once, superseding the held progress.
    await runInDurableObject(sessionObject(sessionId), async (instance: CraftingSession) => {
      for (let i = 1; i <= 20; i++) await instance.correctProgress({ elapsedMs: 40_000 + i });
      expect((await instance.lifecycle("pause")).ok).toBe(true);
    });
    await socket.until(
      () => socket.frames.some((f) => (f.update as { cause?: string })?.cause === "pause"),
      "pause",
    );
    const pause = socket.frames.find((f) => (f.update as { cause?: string })?.cause === "pause");
    expect(pause?.seq).toBe(startSeq + FLOOD + 21);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Nothing older follows it.
    expect(socket.frames.at(-1)).toBe(pause);
    expect(expectUnbroken(socket.frames, startSeq)).toBe(startSeq + FLOOD + 21);

    // A resuming client still gets every change, one by one.
    const resumed = await watch(
      sessionId,
      bearer,
      `?resume_epoch=${snapshot?.epoch}&resume_seq=${startSeq}`,
    );
    const replay = await resumed.frameCount(FLOOD + 22);
    expect(replay.slice(0, -1).map((f) => f.seq)).toEqual(
      Array.from({ length: FLOOD + 21 }, (_, i) => startSeq + 1 + i),
    );
    expect(replay.some((f) => (f.update as { superseded?: number } | undefined)?.superseded)).toBe(
      false,
    );
  });

  it("does not send a held frame to a stream that joined after it, nor count it as superseded there", async () => {
    const { sessionId, bearer } = await activeSession();
    const early = await watch(sessionId, bearer);
    const [snapshot] = await early.frameCount(1);
    const startSeq = snapshot?.seq as number;
    const stub = sessionObject(sessionId);
    await runInDurableObject(stub, async (instance: CraftingSession) => {
      for (let i = 1; i <= 40; i++) await instance.correctProgress({ elapsedMs: i * 10 });
    });
    // Joins while the newest progress may still be held.
    const late = await watch(sessionId, bearer);
    const [lateSnapshot] = await late.frameCount(1);
    expect(lateSnapshot?.seq).toBe(startSeq + 40);
    await early.until(() => early.frames.at(-1)?.seq === startSeq + 40, "the newest progress");
    await runInDurableObject(stub, async (instance: CraftingSession) => {
      expect((await instance.lifecycle("pause")).ok).toBe(true);
    });
    const [pause] = (await late.frameCount(2)).slice(1);
    expect(pause).toMatchObject({ seq: startSeq + 41, update: { cause: "pause" } });
    expect(pause).not.toHaveProperty("update.superseded");
    expect(expectUnbroken(early.frames, startSeq)).toBe(startSeq + 41);
  });
});

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
    await runInDurableObject(player, (_instance, state) => {
      const key = "stream_leases";
      const leases = state.storage.kv.get<{ expiresAtMs: number }[]>(key) ?? [];
      state.storage.kv.put(
        key,
        leases.map((lease) => ({ ...lease, expiresAtMs: lease.expiresAtMs - 10_000 })),
      );
    });
    const opened = await openStream(sessionId, bearer);
    expect(opened.response.status).toBe(101);
    // The six lost slots are gone; the four open streams and the new one hold theirs.
    expect(await playerStreams(playerId)).toHaveLength(5);
    for (const socket of open) expect(socket.closed).toBeNull();
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

describe("the sweep", () => {
  it("closes a stream idle for 30 s with 4008, keeps an active one and sends it a heartbeat", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const idle = await watch(sessionId, bearer);
    const active = await watch(sessionId, bearer);
    await idle.frameCount(1);
    await active.frameCount(1);
    const stub = sessionObject(sessionId);
    // As if 31 s had passed since both connected; then the active one pings.
    await ageStreams(stub, 31_000);
    active.ws.send(JSON.stringify({ ping: { clientTimeMs: "1" } }));
    await active.frameCount(2);
    const before = await sessionJson(sessionId);
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    expect(await idle.closing()).toEqual({ code: 4008, reason: "idle for 30 s" });
    const [heartbeat] = (await active.frameCount(3)).slice(2);
    expect(heartbeat).toMatchObject({ heartbeat: { idleTimeoutMs: 30_000 } });
    expect(active.closed).toBeNull();
    expect(await sessionJson(sessionId)).toEqual(before);
    await until(async () => (await playerStreams(playerId)).length === 1, "idle slot freed");
    // The sweep stays scheduled while a stream is open.
    await runInDurableObject(stub, async (_instance, state) => {
      expect(await state.storage.getAlarm()).not.toBeNull();
    });
  });

  it("sweeps after hibernation: the evicted object still closes idle streams", async () => {
    const { sessionId, bearer } = await activeSession();
    const socket = await watch(sessionId, bearer);
    await socket.frameCount(1);
    const stub = sessionObject(sessionId);
    await ageStreams(stub, 60_000);
    await evictDurableObject(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await socket.closing()).code).toBe(4008);
  });

  it("closes a stream when its token expires, with 4001 (reconnect with a new token)", async () => {
    const { sessionId, playerId } = await activeSession();
    const shortLived = await token(playerId, "player", { ttlSeconds: 2 });
    const socket = await watch(sessionId, shortLived);
    await socket.frameCount(1);
    // The alarm is set for the token's expiry and fires by itself.
    const closed = await socket
      .until(() => socket.closed !== null, "token-expiry close", 6_000)
      .then(() => socket.closed);
    expect(closed).toEqual({ code: 4001, reason: "token expired: reconnect with a new token" });
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

  it("refuses a browser from a foreign Origin with 403; allows listed origins and native clients", async () => {
    const { sessionId, playerId, bearer } = await activeSession();
    const foreign = await openStream(sessionId, bearer, { Origin: "https://evil.example" });
    expect(foreign.response.status).toBe(403);
    expect(await foreign.response.json()).toMatchObject({ error: { code: "permission_denied" } });
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

/** Moves every stream's last activity `ms` into the past, as if that much time had passed. */
async function ageStreams(stub: DurableObjectStub<CraftingSession>, ms: number): Promise<void> {
  await runInDurableObject(stub, (_instance, state) => {
    for (const ws of state.getWebSockets()) {
      const attachment = ws.deserializeAttachment() as StreamAttachment;
      ws.serializeAttachment({ ...attachment, lastSeenMs: attachment.lastSeenMs - ms });
    }
  });
}

/** Polls an async condition. */
async function until(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("audit log", () => {
  it("writes one line per connect, refusal, throttle and close, with ids, origin and code, never a token", async () => {
    const lines: string[] = [];
    const capture = (...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    };
    const spies = [
      vi.spyOn(console, "log").mockImplementation(capture),
      vi.spyOn(console, "warn").mockImplementation(capture),
      vi.spyOn(console, "error").mockImplementation(capture),
    ];
    try {
      const { sessionId, playerId, bearer } = await activeSession();
      const origin = env.ALLOWED_ORIGINS.split(",")[0] as string;
      const { socket } = await openStream(sessionId, bearer, { Origin: origin });
      if (!socket) throw new Error("upgrade refused");
      await socket.frameCount(1);
      for (let i = 0; i < FRAME_BUDGET.burst + 2; i++) socket.ws.send("{}");
      await socket.until(
        () =>
          socket.frames.some(
            (f) => "error" in f && JSON.stringify(f).includes("resource_exhausted"),
          ),
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
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
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

    expect(
      (await openStream(sessionId, bearer, { Origin: "https://evil.example" })).response.status,
    ).toBe(403);
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
