/**
 * The client SDK against a real `wrangler dev` (its own, so it can be
 * restarted): reconnect and resume with nothing missed, token refresh,
 * prediction accuracy, binary frames and the sync channel.
 */

import type { AddressInfo, Socket } from "node:net";
import { connect, createServer } from "node:net";
import { CraftingClient } from "crafting-network-service/client";
import { LiteClient } from "crafting-network-service/client/lite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer } from "../support/dev-server";
import { servicePost } from "../support/http";
import { freshId, serviceToken, token } from "../support/tokens";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * A TCP relay to `port` whose `stall()` makes the connections open at that
 * moment go silent both ways, as a dropped Wi-Fi or a NAT that forgot them
 * does: nothing is sent, nothing ends. Connections made later pass.
 */
async function stallingRelay(port: number) {
  const open = new Set<{ stalled: boolean }>();
  const sockets: Socket[] = [];
  const relay = createServer((client) => {
    const link = { stalled: false };
    open.add(link);
    const upstream = connect(port, "127.0.0.1");
    sockets.push(client, upstream);
    client.on("data", (data) => link.stalled || upstream.write(data));
    upstream.on("data", (data) => link.stalled || client.write(data));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => link.stalled || b.destroy());
    }
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    stall: () => {
      for (const link of open) link.stalled = true;
      open.clear();
    },
    dispose: () => {
      for (const socket of sockets) socket.destroy();
      relay.close();
    },
  };
}

describe("the client SDK", () => {
  const server = new DevServer();
  beforeAll(() => server.start(), 120_000);
  afterAll(() => server.dispose());
  const service = (path: string, body?: unknown) => servicePost(server.baseUrl, path, body);

  async function activeSession(stepMs = 60_000) {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const created = await service("/v1/sessions", {
      session_id: sessionId,
      player_id: playerId,
      recipe_id: "iron-sword",
      steps: [
        { name: "smelt", duration_ms: stepMs },
        { name: "forge", duration_ms: stepMs },
      ],
      materials: [{ material_id: "iron-ore", required: 2 }],
    });
    expect(created.status).toBe(201);
    await service(`/v1/sessions/${sessionId}/start`);
    return { sessionId, playerId };
  }

  it("reconnects after the server restarts and resumes with nothing missed", async () => {
    const { sessionId, playerId } = await activeSession();
    const client = new CraftingClient({
      baseUrl: server.baseUrl,
      token: () => token(playerId),
      backoff: { baseMs: 100, capMs: 1_000 },
      connectTimeoutMs: 3_000,
    });
    const session = client.watchSession(sessionId);
    const seqs: number[] = [];
    const states: string[] = [];
    session.on("frame", (frame) => {
      if (frame.kind.case === "update" || frame.kind.case === "material") seqs.push(frame.seq);
    });
    session.on("state", ({ state }) => states.push(state));
    await until(() => session.session !== null, "the snapshot");
    const first = session.position.seq;
    for (let i = 1; i <= 10; i++)
      await service(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: i * 1000 });
    await until(() => session.position.seq === first + 10, "ten updates");
    await server.stop("SIGKILL");
    await server.start();
    for (let i = 11; i <= 20; i++)
      await service(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: i * 1000 });
    await service(`/udp/sessions/${sessionId}/materials`, {
      changes: [{ material_id: "iron-ore", quantity: 0 }],
    });
    await until(
      () => session.position.seq === first + 21,
      "every change after the restart",
      40_000,
    );
    // Every change exactly once, in order, across the restart.
    expect(seqs).toEqual(Array.from({ length: 21 }, (_, i) => first + 1 + i));
    expect(states).toContain("reconnecting");
    expect(session.state).toBe("open");
    expect(session.session?.materials[0]?.available ?? 0).toBe(0);
    session.close();
  }, 120_000);

  it("fetches a new token when the old one expires, and carries on", async () => {
    const { sessionId, playerId } = await activeSession();
    let issued = 0;
    const client = new CraftingClient({
      baseUrl: server.baseUrl,
      token: () => {
        issued++;
        return token(playerId, "player", { ttlSeconds: 3 });
      },
    });
    const session = client.watchSession(sessionId);
    await until(() => session.session !== null, "the snapshot");
    const start = session.position.seq;
    await until(
      () => issued >= 2 && session.state === "open",
      "a reconnect with a new token",
      15_000,
    );
    await service(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: 5_000 });
    await until(() => session.position.seq === start + 1, "the update after the refresh");
    session.close();
  }, 30_000);

  it("reports a refused stream with its close code and reason, without retrying, in every view of both SDKs", async () => {
    const { sessionId, playerId } = await activeSession();
    const own = () => token(playerId);
    const stranger = () => token(freshId("p"));
    const malformed = () => "not-a-token";
    const base = server.baseUrl;
    // Node's WebSocket, like a browser's, hides a refused handshake's HTTP status.
    type Detail = { state: string; code?: number; reason?: string };
    type Heard = { view: { close(): void }; seen: Detail[] };
    const heard = (view: {
      on(event: "state", listener: (detail: Detail) => void): unknown;
      close(): void;
    }): Heard => {
      const seen: Detail[] = [];
      view.on("state", (detail) => seen.push(detail));
      return { view, seen };
    };
    const lite = (tokenOf: () => string | Promise<string>, baseUrl = base) =>
      new LiteClient({ baseUrl, token: tokenOf });
    const full = (tokenOf: () => string | Promise<string>, codec: "json" | "binary" = "json") =>
      new CraftingClient({ baseUrl: base, token: tokenOf, codec });
    const synced = (tokenOf: () => string | Promise<string>): Heard => {
      const seen: Detail[] = [];
      const onState = (state: string, detail: object) => seen.push({ state, ...detail });
      return { view: full(tokenOf).syncSession(sessionId, { onState }), seen };
    };
    const cases: [string, () => Heard, number, RegExp][] = [
      [
        "lite, a malformed token",
        () => heard(lite(malformed).watchSession(sessionId)),
        4001,
        /malformed/,
      ],
      [
        "lite, another player's",
        () => heard(lite(stranger).watchSession(sessionId)),
        4003,
        /another player/,
      ],
      [
        "lite workflow, none such",
        () => heard(lite(own).watchWorkflow(freshId("w"))),
        4004,
        /workflow/,
      ],
      [
        "lite, a wrong base path",
        () => heard(lite(own, `${base}/x`).watchSession(sessionId)),
        4004,
        /no such route/,
      ],
      [
        "full, none such",
        () => heard(full(own).watchSession(freshId("s"))),
        4004,
        /no crafting session/,
      ],
      [
        "full binary, another player's",
        () => heard(full(stranger, "binary").watchSession(sessionId)),
        4003,
        /another player/,
      ],
      ["full queue, another player's", () => heard(full(own).watchQueue(freshId("p"))), 4003, /./],
      ["sync channel, another player's", () => synced(stranger), 4003, /another player/],
      ["sync channel, a malformed token", () => synced(malformed), 4001, /malformed/],
      [
        "sync channel heard with .on",
        () => heard(full(own).syncSession(freshId("s"))),
        4004,
        /no crafting session/,
      ],
    ];
    for (const [what, watch, code, reason] of cases) {
      const { view, seen } = watch();
      await until(() => seen.some((d) => d.state === "closed"), `${what}: closed`, 10_000);
      expect(
        seen.find((d) => d.state === "closed"),
        what,
      ).toMatchObject({ code });
      expect(seen.find((d) => d.state === "closed")?.reason, what).toMatch(reason);
      expect(
        seen.filter((d) => d.state === "reconnecting"),
        what,
      ).toEqual([]);
      view.close();
      // Closing a view that has closed says nothing more.
      expect(
        seen.filter((d) => d.state === "closed"),
        what,
      ).toHaveLength(1);
    }
  }, 60_000);

  it("retries at once when nothing is listening, not after the handshake timeout", async () => {
    // A port nothing listens on.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const seen: { state: string; reason?: string; attempt: number }[] = [];
    const session = new CraftingClient({
      baseUrl: `http://127.0.0.1:${port}`,
      token: () => "any",
      backoff: { baseMs: 50, capMs: 100 },
      connectTimeoutMs: 120_000,
    }).watchSession("s-1");
    session.on("state", (detail) => seen.push(detail));
    await until(() => seen.some((d) => d.attempt >= 3), "three attempts", 20_000);
    expect(seen.find((d) => d.reason)?.reason).toBe("could not connect");
    session.close();
  }, 30_000);

  it("gives up on a stream whose peer went silent, in both SDKs, reconnects and misses nothing", async () => {
    const { sessionId, playerId } = await activeSession();
    const relay = await stallingRelay(Number(new URL(server.baseUrl).port));
    try {
      const options = {
        baseUrl: relay.url,
        token: () => token(playerId),
        heartbeatMs: 300,
        pongTimeoutMs: 300,
        backoff: { baseMs: 50, capMs: 200 },
      };
      const full = new CraftingClient(options).watchSession(sessionId);
      const lite = new LiteClient(options).watchSession(sessionId);
      const reconnects: (string | undefined)[] = [];
      for (const view of [full, lite] as EndingView[])
        view.on("state", ({ state, reason }) => {
          if (state === "reconnecting") reconnects.push(reason);
        });
      await until(() => full.session !== null && lite.current !== null, "both snapshots");
      const before = full.position.seq;
      // The connections go silent: no pong, and the close each view sends is never answered.
      relay.stall();
      await service(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: 5_000 });
      await until(
        () => full.position.seq === before + 1 && lite.position.seq === before + 1,
        "the update, over new connections",
      );
      expect(reconnects).toEqual(["heartbeat timeout", "heartbeat timeout"]);
      expect(full.session?.clock?.anchorElapsedMs).toBe(5_000);
      full.close();
      lite.close();
    } finally {
      relay.dispose();
    }
  }, 30_000);

  it("predicts progress between updates within 1 % of the step's duration", async () => {
    const stepMs = 10_000;
    const { sessionId, playerId } = await activeSession(stepMs);
    const client = new CraftingClient({
      baseUrl: server.baseUrl,
      token: () => token(playerId),
      heartbeatMs: 500,
    });
    const session = client.watchSession(sessionId);
    await until(() => session.session !== null, "the snapshot");
    await sleep(1_200); // a couple of clock samples
    const errors: number[] = [];
    for (let i = 0; i < 8; i++) {
      // crafting-service corrects now and then (rate changes); the bar predicts in between.
      if (i % 3 === 0) await service(`/udp/sessions/${sessionId}/progress`, { rate: 1 + i / 10 });
      await sleep(150);
      const response = await fetch(`${server.baseUrl}/v1/sessions/${sessionId}`, {
        headers: { Authorization: `Bearer ${await serviceToken()}` },
      });
      const truth = (await response.json()) as {
        progress: { elapsedSeconds?: number; timestampMs: string };
      };
      const serverAt = Number(truth.progress.timestampMs);
      const predicted = session.predictProgress(serverAt - client.clock.offsetMs).elapsedMs;
      errors.push(Math.abs(predicted - (truth.progress.elapsedSeconds ?? 0) * 1000));
    }
    expect(Math.max(...errors)).toBeLessThanOrEqual(stepMs / 100);
    session.close();
  }, 30_000);

  it("speaks binary frames and the sync channel", async () => {
    const { sessionId, playerId } = await activeSession();
    const client = new CraftingClient({
      baseUrl: server.baseUrl,
      token: () => token(playerId),
      codec: "binary",
    });
    const session = client.watchSession(sessionId);
    const synced = client.syncSession(sessionId, { packetSize: 256 });
    await until(() => session.session !== null && synced.state !== null, "both views");
    await service(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: 30_000 });
    await until(() => synced.state?.anchorElapsedMs === 30_000, "the delta");
    await until(() => session.session?.clock?.anchorElapsedMs === 30_000, "the binary update");
    expect(synced.predictPercent()).toBeGreaterThanOrEqual(25);
    session.close();
    synced.close();
  }, 30_000);

  it("predicts a workflow's progress between frames, in the full and the light SDK, within 1 % of the server's", async () => {
    const workflowId = freshId("w");
    const playerId = freshId("p");
    const created = await service("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: [10_000, 30_000].map((duration_ms, i) => ({
        name: `step-${i}`,
        recipe_id: "r",
        steps: [{ name: "work", duration_ms }],
      })),
    });
    expect(created.status).toBe(201);
    const options = { baseUrl: server.baseUrl, token: () => token(playerId), heartbeatMs: 500 };
    const full = new CraftingClient(options).watchWorkflow(workflowId);
    const lite = new LiteClient(options).watchWorkflow(workflowId);
    await until(() => full.workflow !== null && lite.current !== null, "both snapshots");
    await sleep(1_200); // a couple of clock samples
    // No frame came since the snapshot (nothing changed), yet the bars moved.
    expect(full.workflow?.overallProgress ?? 0).toBeLessThan(1);
    for (const view of [full, lite]) {
      const response = await fetch(`${server.baseUrl}/v1/workflows/${workflowId}`, {
        headers: { Authorization: `Bearer ${await serviceToken()}` },
      });
      const truth = (await response.json()) as { overallProgress: number; timestampMs: string };
      expect(truth.overallProgress).toBeGreaterThan(2);
      const predicted = view.predictProgress(Number(truth.timestampMs) - view.clock.offsetMs);
      // 1 % of the step's 10 s, in the 40 s workflow.
      expect(Math.abs(predicted.percent - truth.overallProgress)).toBeLessThanOrEqual(100 / 400);
      expect(predicted.steps[1]).toBe(0);
    }
    // A completed first step: 100 % of its quarter.
    await service(`/v1/sessions/${workflowId}.0/complete`);
    await until(() => full.workflow?.currentStepIndex === 1, "the advance");
    expect(full.predictProgress().steps[0]).toBe(100);
    expect(full.predictProgress().percent).toBeGreaterThanOrEqual(25);
    full.close();
    lite.close();
  }, 30_000);

  /** What both SDKs' session and workflow views share: `.ended` and their state events. */
  interface EndingView {
    readonly ended: boolean;
    on(
      event: "state",
      fn: (change: { state: string; code?: number; reason?: string }) => void,
    ): unknown;
  }

  /**
   * Views of one thing, once `ready`: not ended; after `end()` each says
   * `.ended`, and every stream then closes normally (1000, `reason`),
   * while the watched object is kept busy (`path` read every 200 ms): the
   * runtime ends a connection the object closed only once the object
   * idles (docs/streams.md), and Node's WebSocket waits for that.
   */
  async function endsThenClosesNormally(
    views: readonly EndingView[],
    ready: () => boolean,
    end: () => Promise<unknown>,
    path: string,
    reason: string,
  ): Promise<void> {
    const closes: { code?: number; reason?: string }[] = [];
    for (const view of views)
      view.on("state", ({ state, code, reason }) => {
        if (state === "closed") closes.push({ code, reason });
      });
    await until(ready, "every snapshot");
    expect(views.map((view) => view.ended)).toEqual(views.map(() => false));
    await end();
    await until(() => views.every((view) => view.ended), "every view to end");
    let busy = true;
    const reads = (async () => {
      const headers = { Authorization: `Bearer ${await serviceToken()}` };
      while (busy) {
        expect((await fetch(`${server.baseUrl}${path}`, { headers })).status).toBe(200);
        await sleep(200);
      }
    })();
    try {
      await until(
        () => closes.length === views.length,
        "every stream to close while the object is busy",
      );
    } finally {
      busy = false;
      await reads;
    }
    expect(closes).toEqual(views.map(() => ({ code: 1000, reason })));
  }

  it("says when a session has ended, in both SDKs and the sync channel, and the stream then closes normally", async () => {
    const { sessionId, playerId } = await activeSession();
    const options = { baseUrl: server.baseUrl, token: () => token(playerId) };
    const full = new CraftingClient(options).watchSession(sessionId);
    const lite = new LiteClient(options).watchSession(sessionId);
    const synced = new CraftingClient(options).syncSession(sessionId);
    await endsThenClosesNormally(
      [full, lite, synced],
      () => full.session !== null && lite.current !== null && synced.state !== null,
      () => service(`/v1/sessions/${sessionId}/complete`),
      `/v1/sessions/${sessionId}`,
      "session completed",
    );
    expect(lite.current?.status).toBe("SESSION_STATUS_COMPLETED");
  }, 30_000);

  it("says when a workflow has ended, in both SDKs, and the stream then closes normally", async () => {
    const workflowId = freshId("w");
    const playerId = freshId("p");
    const created = await service("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: [{ name: "only", recipe_id: "r", steps: [{ name: "work", duration_ms: 60_000 }] }],
    });
    expect(created.status).toBe(201);
    const options = { baseUrl: server.baseUrl, token: () => token(playerId) };
    const full = new CraftingClient(options).watchWorkflow(workflowId);
    const lite = new LiteClient(options).watchWorkflow(workflowId);
    await endsThenClosesNormally(
      [full, lite],
      () => full.workflow !== null && lite.current !== null,
      () => service(`/v1/sessions/${workflowId}.0/complete`),
      `/v1/workflows/${workflowId}`,
      "workflow completed",
    );
    expect(lite.current?.status).toBe("WORKFLOW_STATUS_COMPLETED");
  }, 30_000);
});
