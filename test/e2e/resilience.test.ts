/**
 * Streams against a real `wrangler dev`: the 30 s idle close, and clients
 * that resume across a crash of the whole server with nothing lost or repeated.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DevServer } from "../support/dev-server";
import { servicePost, startedSession } from "../support/http";
import { token } from "../support/tokens";
import { type Frame, openWs, type WsClient } from "../support/ws-client";

const wsUrl = (baseUrl: string, path: string) => `${baseUrl.replace(/^http/, "ws")}${path}`;

describe("idle streams", () => {
  const baseUrl = inject("baseUrl");

  it("closes a stream silent for 30 s at the object's next wake, with 4008, and never an active one", async () => {
    const { sessionId, playerId } = await startedSession(baseUrl);
    const headers = { Authorization: `Bearer ${await token(playerId)}` };
    const url = wsUrl(baseUrl, `/ws/crafting/${sessionId}`);
    const [silent, chatty, framed] = await Promise.all([
      openWs(url, { headers }),
      openWs(url, { headers }),
      openWs(url, { headers }),
    ]);
    if (!silent?.ok || !chatty?.ok || !framed?.ok) throw new Error("upgrade refused");
    // One keeps alive with the runtime-answered text "ping" (which wakes nothing), one with
    // Ping frames (which do wake the object), every 7 s: the object looks for dead streams
    // at most once per 30 s, and 7 does not divide 30, so no ping lands on that boundary.
    const keepalive = setInterval(() => {
      chatty.client.socket.send("ping");
      framed.client.socket.send(JSON.stringify({ ping: { clientTimeMs: String(Date.now()) } }));
    }, 7_000);
    try {
      // Past the silent one's 30 s; the framed client's next ping wakes the object, which
      // then closes the dead stream — no timer of its own did. At the latest: a look at
      // 7 s, the next one allowed from 37 s, made at the ping of 42 s.
      await silent.client.until(() => silent.client.closed !== null, "idle close", 52_000);
      expect(silent.client.closed).toEqual({ code: 4008, reason: "idle for 30 s" });
      // The active ones are still open, and still get changes.
      expect(
        (await servicePost(baseUrl, `/udp/sessions/${sessionId}/progress`, { elapsed_ms: 5_000 }))
          .status,
      ).toBe(200);
      await chatty.client.until(() => chatty.client.frames.some((f) => "update" in f), "update");
      await framed.client.until(() => framed.client.frames.some((f) => "update" in f), "update");
      expect(chatty.client.closed).toBeNull();
      expect(framed.client.closed).toBeNull();
    } finally {
      clearInterval(keepalive);
      chatty.client.close();
      framed.client.close();
    }
  }, 70_000);
});

/**
 * A client that reconnects whenever its stream drops, resuming from the last
 * (epoch, seq) it saw, and records every update's seq.
 */
class ResumingClient {
  readonly updates: number[] = [];
  /** Updates that did not continue the previous seq: gaps, duplicates, reordering. */
  readonly breaks: { after: number; got: number; superseded: number }[] = [];
  /** Changes accounted for: frames received plus the changes they superseded. */
  covered = 0;
  readonly snapshots: Frame[] = [];
  reconnects = 0;
  #epoch = 0;
  #seq = 0;
  #client: WsClient | null = null;
  #stopped = false;

  constructor(
    readonly server: DevServer,
    readonly sessionId: string,
    readonly bearer: string,
  ) {}

  get lastSeq(): number {
    return this.#seq;
  }

  async connect(): Promise<void> {
    const query = this.#epoch ? `?resume_epoch=${this.#epoch}&resume_seq=${this.#seq}` : "";
    const url = wsUrl(this.server.baseUrl, `/ws/crafting/${this.sessionId}${query}`);
    for (;;) {
      try {
        const opened = await openWs(url, { headers: { Authorization: `Bearer ${this.bearer}` } });
        if (opened.ok) {
          this.#attach(opened.client);
          return;
        }
        throw new Error(`refused ${opened.status}: ${opened.body}`);
      } catch (error) {
        if (this.#stopped) return;
        if (error instanceof Error && error.message.startsWith("refused 4")) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 200));
      }
    }
  }

  #attach(client: WsClient): void {
    this.#client = client;
    let read = 0;
    const pump = setInterval(() => {
      for (; read < client.frames.length; read++) this.#onFrame(client.frames[read] as Frame);
      if (client.closed) {
        clearInterval(pump);
        if (!this.#stopped) {
          this.reconnects++;
          void this.connect();
        }
      }
    }, 5);
  }

  #onFrame(frame: Frame): void {
    const seq = frame.seq as number;
    if ("snapshot" in frame) {
      this.snapshots.push(frame);
      this.#epoch = frame.epoch as number;
      this.#seq = seq;
    } else if ("update" in frame) {
      const superseded = (frame.update as { superseded?: number }).superseded ?? 0;
      // Live progress is latest-wins: a frame may stand for the changes it supersedes.
      if (seq !== this.#seq + 1 + superseded)
        this.breaks.push({ after: this.#seq, got: seq, superseded });
      this.updates.push(seq);
      this.covered += 1 + superseded;
      this.#seq = seq;
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#client?.close();
  }
}

describe("a crash of the whole server", () => {
  const server = new DevServer();
  beforeAll(() => server.start(), 120_000);
  afterAll(() => server.dispose());

  it("50 clients × 200 updates resume across a kill -9 and restart: 0 gaps, 0 duplicates", async () => {
    const SESSIONS = 10;
    const CLIENTS_PER_SESSION = 5;
    const UPDATES = 200;
    const sessions: { sessionId: string; playerId: string }[] = [];
    for (let i = 0; i < SESSIONS; i++) sessions.push(await startedSession(server.baseUrl));
    const clients: ResumingClient[] = [];
    for (const { sessionId, playerId } of sessions) {
      const bearer = await token(playerId);
      for (let i = 0; i < CLIENTS_PER_SESSION; i++)
        clients.push(new ResumingClient(server, sessionId, bearer));
    }
    await Promise.all(clients.map((client) => client.connect()));
    await until(() => clients.every((c) => c.snapshots.length === 1), "every first snapshot");
    const firstSeq = new Map(clients.map((c) => [c, c.lastSeq]));

    const post = (n: number) =>
      Promise.all(
        sessions.map(async ({ sessionId }) => {
          for (let i = 0; i < n; i++) {
            const response = await servicePost(
              server.baseUrl,
              `/udp/sessions/${sessionId}/progress`,
              {
                elapsed_ms: 1000 + i,
              },
            );
            expect(response.status).toBe(200);
          }
        }),
      );

    await post(UPDATES / 2);
    await server.stop("SIGKILL");
    await server.start();
    await post(UPDATES / 2);

    await until(() => clients.every((c) => c.covered >= UPDATES), "every update", 60_000).catch(
      () => {},
    );
    for (const client of clients) client.stop();

    for (const client of clients) {
      const start = firstSeq.get(client) as number;
      expect(client.breaks).toEqual([]);
      expect(client.covered).toBe(UPDATES);
      expect(client.lastSeq).toBe(start + UPDATES);
      // Strictly increasing across the restart: no duplicate, no reordering.
      expect(
        client.updates.every((seq, i) => i === 0 || seq > (client.updates[i - 1] as number)),
      ).toBe(true);
      // One snapshot at the first connect; every reconnect was a resume.
      expect(client.snapshots).toHaveLength(1);
      expect(client.reconnects).toBeGreaterThanOrEqual(1);
    }
  }, 300_000);
});

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
