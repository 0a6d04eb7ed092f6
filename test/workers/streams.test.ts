/** Streams that survive: resume and latest-wins delivery, in workerd. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CraftingSession } from "../../durable-objects/crafting-session/crafting-session";
import { PROGRESS_PACING } from "../../src/domain/streams/progress-pacing";
import { freshId, token } from "../support/tokens";
import {
  call,
  createSession,
  type Frame,
  openStream,
  serviceCall,
  TestSocket,
  watch,
} from "./helpers";
import {
  activeSession,
  kindOf,
  playerStreams,
  postProgress,
  sessionObject,
} from "./stream-helpers";

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
      update: { clock: { anchorElapsedMs: FLOOD * 100 } },
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

  it("sends the held progress before a material change, so neither its clock nor a seq goes missing", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId, {
      steps: [{ name: "smelt", duration_ms: 600_000 }],
      materials: [{ material_id: "iron-ore", required: 3 }],
    });
    expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
    const socket = await watch(sessionId, await token(playerId));
    const [snapshot] = await socket.frameCount(1);
    const startSeq = snapshot?.seq as number;
    const CORRECTIONS = PROGRESS_PACING.burst + 10;
    await runInDurableObject(sessionObject(sessionId), async (instance: CraftingSession) => {
      // Past the burst, so the newest correction is held when the material change comes.
      for (let i = 1; i <= CORRECTIONS; i++)
        await instance.correctProgress({ elapsedMs: i * 1000 });
      const changes = [{ materialId: "iron-ore", quantity: 1, available: true }];
      expect((await instance.materials(changes, Date.now())).ok).toBe(true);
    });
    const last = startSeq + CORRECTIONS + 1;
    await socket.until(() => socket.frames.at(-1)?.seq === last, "the material change");
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Every frame continues the one before it (an update may stand for the ones it supersedes).
    let seen = startSeq;
    for (const frame of socket.frames.slice(1)) {
      const superseded = (frame.update as { superseded?: number } | undefined)?.superseded ?? 0;
      expect(frame.seq, JSON.stringify(frame)).toBe(seen + 1 + superseded);
      seen = frame.seq as number;
    }
    expect(seen).toBe(last);
    // The newest correction reached the client, before the material change.
    const updates = socket.frames.filter((f) => "update" in f);
    expect(updates.at(-1)).toMatchObject({
      seq: last - 1,
      update: { clock: { anchorElapsedMs: CORRECTIONS * 1000 } },
    });
    expect(socket.frames.at(-1)).toMatchObject({ seq: last, material: expect.anything() });
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

describe("refusals a browser can read", () => {
  // A page of an allowed origin (a foreign one is refused before anything else, with 4003).
  const ORIGIN = env.ALLOWED_ORIGINS.split(",")[0]?.trim() ?? "";

  it("closes a browser's refused upgrade with the refusal's code and reason, and keeps HTTP statuses for native clients", async () => {
    const { sessionId, bearer } = await activeSession();
    const other = await token(freshId("p"));
    const cases: [string, string, number, number, RegExp][] = [
      [sessionId, "not-a-token", 4001, 401, /malformed/],
      [sessionId, other, 4003, 403, /belongs to another player/],
      [freshId("s"), bearer, 4004, 404, /no crafting session/],
    ];
    for (const [id, credential, closeCode, status, reason] of cases) {
      const browser = await call(`/ws/crafting/${id}`, {
        headers: {
          Upgrade: "websocket",
          Origin: ORIGIN,
          "Sec-WebSocket-Protocol": `crafting.v1.json, bearer.${credential}`,
        },
      });
      expect(browser.status).toBe(101);
      // The browser offered crafting.v1.json: it is echoed, or the browser would fail the handshake.
      expect(browser.headers.get("Sec-WebSocket-Protocol")).toBe("crafting.v1.json");
      const closed = await new TestSocket(browser.webSocket as WebSocket).closing();
      expect(closed.code).toBe(closeCode);
      expect(closed.reason).toMatch(reason);
      const native = await call(`/ws/crafting/${id}`, {
        headers: { Upgrade: "websocket", Authorization: `Bearer ${credential}` },
      });
      expect(native.status).toBe(status);
    }
  });

  it("does the same for a native client that asks (crafting.refusals), on every upgrade path, and never selects that entry", async () => {
    const { sessionId, bearer } = await activeSession();
    const service = await token("crafting-service", "service");
    const refusals: [string, string, string, number, RegExp, string | null][] = [
      [
        `/ws/crafting/${sessionId}`,
        "crafting.v1.bin",
        await token(freshId("p")),
        4003,
        /another player/,
        "crafting.v1.bin",
      ],
      ["/v1/progress/stream", "crafting.ingest.v1", bearer, 4003, /service/, "crafting.ingest.v1"],
      [
        "/v1/progress/stream",
        "crafting.ingest.v1",
        "not-a-token",
        4001,
        /malformed/,
        "crafting.ingest.v1",
      ],
      [
        `/ws/nothing/${sessionId}`,
        "crafting.v1.json",
        bearer,
        4004,
        /no such route/,
        "crafting.v1.json",
      ],
      [`/ws/crafting/${sessionId}`, "", "not-a-token", 4001, /malformed/, null],
      // A route that answers, but not with a stream.
      ["/health", "crafting.v1.json", bearer, 4004, /\/health is not a stream/, "crafting.v1.json"],
      [`/v1/sessions/${sessionId}`, "", service, 4004, /is not a stream/, null],
    ];
    for (const [path, protocol, credential, code, reason, echoed] of refusals) {
      const offered = [protocol, "crafting.refusals", `bearer.${credential}`].filter(Boolean);
      const asked = await call(path, {
        headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": offered.join(", ") },
      });
      expect(asked.status, path).toBe(101);
      expect(asked.headers.get("Sec-WebSocket-Protocol"), path).toBe(echoed);
      const closed = await new TestSocket(asked.webSocket as WebSocket).closing();
      expect([closed.code, closed.reason], path).toEqual([code, expect.stringMatching(reason)]);
    }
    // Accepted upgrades: the entry is a request, not a format.
    for (const [path, protocol, credential] of [
      [`/ws/crafting/${sessionId}`, "crafting.v1.json", bearer],
      [`/ws/crafting/${sessionId}`, "", bearer],
      ["/v1/progress/stream", "crafting.ingest.v1", service],
    ] as const) {
      const offered = [protocol, "crafting.refusals", `bearer.${credential}`].filter(Boolean);
      const accepted = await call(path, {
        headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": offered.join(", ") },
      });
      expect(accepted.status, path).toBe(101);
      expect(accepted.headers.get("Sec-WebSocket-Protocol"), path).toBe(protocol || null);
      const socket = new TestSocket(accepted.webSocket as WebSocket);
      if (path.startsWith("/ws/"))
        expect((await socket.frameCount(1))[0], path).toHaveProperty("snapshot");
      socket.ws.close(1000);
    }
  });

  it("does the same on the sync channel and the health stream", async () => {
    const { sessionId, bearer } = await activeSession();
    const refusals: [string, string, string, number][] = [
      [`/udp/sessions/${sessionId}/sync`, "crafting.sync.v1", "not-a-token", 4001],
      ["/health/ws", "crafting.v1.json", bearer, 4003],
    ];
    for (const [path, protocol, credential, code] of refusals) {
      const browser = await call(path, {
        headers: {
          Upgrade: "websocket",
          Origin: ORIGIN,
          "Sec-WebSocket-Protocol": `${protocol}, bearer.${credential}`,
        },
      });
      expect(browser.status, path).toBe(101);
      expect(browser.headers.get("Sec-WebSocket-Protocol")).toBe(protocol);
      expect((await new TestSocket(browser.webSocket as WebSocket).closing()).code).toBe(code);
    }
  });
});
