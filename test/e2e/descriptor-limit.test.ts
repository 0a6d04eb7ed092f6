/**
 * The descriptor budget against a real `wrangler dev` whose open-file limit
 * is 1,024: local workerd aborts when it runs out of descriptors (and loses
 * every stream), so the service refuses work with 503 before that, and
 * what it already serves keeps working (docs/reliability.md).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DESCRIPTOR_COSTS } from "../../src/health/descriptor-budget";
import { DevServer } from "../support/dev-server";
import { createSession, servicePost } from "../support/http";
import { freshId, serviceToken, token } from "../support/tokens";
import { openWs, type WsClient } from "../support/ws-client";

const OPEN_FILES = 1_024;
/**
 * About what `npm start` would set at this limit (409): under wrangler dev a
 * stream holds 4 descriptors in the runtime where the estimate counts 2.
 */
const BUDGET = 400;
/** Each attempt would hold 6 descriptors (a session's object and its player's): 1,200 in all, past the limit. */
const ATTEMPTS = 200;

interface Attempt {
  status: number;
  code?: string;
  retryAfter?: string | null;
  sessionId: string;
  playerId: string;
}

async function attempt(baseUrl: string): Promise<Attempt> {
  const sessionId = freshId("s");
  const playerId = freshId("p");
  const created = await createSession(baseUrl, sessionId, playerId);
  if (created.status !== 201) {
    const body = (await created.json()) as { error: { code: string } };
    return {
      status: created.status,
      code: body.error.code,
      retryAfter: created.headers.get("Retry-After"),
      sessionId,
      playerId,
    };
  }
  const started = await servicePost(baseUrl, `/v1/sessions/${sessionId}/start`);
  return { status: started.status, sessionId, playerId };
}

async function attempts(baseUrl: string, count: number): Promise<Attempt[]> {
  const results: Attempt[] = [];
  for (let i = 0; i < count; i++) results.push(await attempt(baseUrl));
  return results;
}

/** `crafting_throttles_total{limit="descriptors"}` on the server's /metrics. */
async function descriptorRefusals(baseUrl: string): Promise<number> {
  const response = await fetch(`${baseUrl}/metrics`, {
    headers: { Authorization: `Bearer ${await serviceToken()}` },
  });
  const line = (await response.text())
    .split("\n")
    .find((l) => l.startsWith('crafting_throttles_total{limit="descriptors"}'));
  return Number(line?.split(" ").at(-1) ?? 0);
}

/** The isolate's estimate of the descriptors it holds, from GET /health. */
async function held(baseUrl: string): Promise<number> {
  const health = (await (await fetch(`${baseUrl}/health`)).json()) as {
    descriptors?: { held: number; budget: number };
  };
  expect(health.descriptors?.budget).toBe(BUDGET);
  return health.descriptors?.held ?? -1;
}

describe("the descriptor budget", () => {
  /** Sessions the first test made, for the second to watch. */
  const made: Attempt[] = [];
  const server = new DevServer({
    openFiles: OPEN_FILES,
    vars: { DESCRIPTOR_BUDGET: String(BUDGET) },
  });
  beforeAll(() => server.start(), 120_000);
  afterAll(() => server.dispose());

  it("refuses sessions and streams with 503 before the process runs out, and keeps serving the streams it holds", async () => {
    // A burst of creations: refused once the budget is held, never an internal error.
    const first = await attempts(server.baseUrl, ATTEMPTS);
    made.push(...first.filter((a) => a.status === 200));
    const refused = first.filter((a) => a.status === 503);
    expect(made.length + refused.length).toBe(ATTEMPTS);
    expect(made.length).toBeGreaterThan(40);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((a) => a.code === "unavailable" && a.retryAfter === "10")).toBe(true);

    // While those objects are live, a stream is refused the same way, before any slot is taken.
    const watched = made.slice(0, 20);
    const early = await openWs(
      `${server.baseUrl.replace(/^http/, "ws")}/ws/crafting/${watched[0]?.sessionId}`,
      { headers: { Authorization: `Bearer ${await token(watched[0]?.playerId ?? "")}` } },
    );
    expect(early.ok ? 101 : early.status).toBe(503);

    // Idle objects are evicted 10 s after their last call: the budget frees with them.
    await sleep(11_000);
    const clients: WsClient[] = [];
    for (const { sessionId, playerId } of watched) {
      const opened = await openWs(
        `${server.baseUrl.replace(/^http/, "ws")}/ws/crafting/${sessionId}`,
        { headers: { Authorization: `Bearer ${await token(playerId)}` } },
      );
      if (!opened.ok) throw new Error(`stream refused: ${opened.status} ${opened.body}`);
      clients.push(opened.client);
    }
    try {
      // A second burst while 20 streams are open: refused again, and the streams live on.
      const second = await attempts(server.baseUrl, ATTEMPTS);
      expect(second.every((a) => a.status === 200 || a.status === 503)).toBe(true);
      expect(second.some((a) => a.status === 503)).toBe(true);

      // Every object idle again: what is held is the 20 sockets, 2 each.
      await sleep(11_000);
      expect(await held(server.baseUrl)).toBe(20 * 2);
      // A client's frame wakes its object without a call from the Worker: counted as live too.
      for (const client of clients)
        client.socket.send(JSON.stringify({ ping: { clientTimeMs: String(Date.now()) } }));
      for (const client of clients)
        await client.until(() => client.frames.some((f) => "pong" in f), "pong", 10_000);
      expect(await held(server.baseUrl)).toBeGreaterThanOrEqual(20 * 2 + 20 * 3);
      for (const { sessionId } of watched) {
        const progress = await servicePost(server.baseUrl, `/udp/sessions/${sessionId}/progress`, {
          elapsed_ms: 5_000,
        });
        expect(progress.status).toBe(200);
      }
      for (const client of clients)
        await client.until(() => client.frames.some((f) => "update" in f), "update", 10_000);
      expect(clients.every((client) => client.closed === null)).toBe(true);
      expect((await fetch(`${server.baseUrl}/health`)).status).toBe(200);
      expect(server.output).not.toContain("Too many open files");
    } finally {
      for (const client of clients) client.close();
    }
  }, 180_000);

  it("counts every open socket: streams stop at the budget however many objects are evicted", async () => {
    // Every object idle, every earlier stream closed: the budget is empty.
    await sleep(11_000);
    const clients: WsClient[] = [];
    let refused: { status: number; body: string } | null = null;
    try {
      // Up to 10 streams per session (its player's limit), session after session.
      for (const { sessionId, playerId } of made) {
        const url = `${server.baseUrl.replace(/^http/, "ws")}/ws/crafting/${sessionId}`;
        const headers = { Authorization: `Bearer ${await token(playerId)}` };
        for (let i = 0; i < 10 && !refused; i++) {
          const opened = await openWs(url, { headers });
          if (opened.ok) clients.push(opened.client);
          else refused = opened;
        }
        if (refused) break;
      }
      // 2 descriptors a socket: at most BUDGET / 2 streams, whatever was evicted meanwhile.
      expect(refused?.status).toBe(503);
      expect(refused?.body).toContain("unavailable");
      expect(clients.length).toBeGreaterThan(50);
      expect(clients.length).toBeLessThanOrEqual(BUDGET / 2);
      expect(clients.every((client) => client.closed === null)).toBe(true);
      expect(server.output).not.toContain("Too many open files");
      // Operators see the refusals (counts reach /metrics within a second or so).
      await expect
        .poll(() => descriptorRefusals(server.baseUrl), { timeout: 10_000, interval: 500 })
        .toBeGreaterThan(0);
    } finally {
      for (const client of clients) client.close();
    }
  }, 120_000);

  it("counts crafting-service's ingest streams too: their sockets are the Worker's", async () => {
    await sleep(11_000);
    const url = `${server.baseUrl.replace(/^http/, "ws")}/v1/progress/stream`;
    const headers = { Authorization: `Bearer ${await serviceToken()}` };
    const clients: WsClient[] = [];
    let refused: { status: number; body: string } | null = null;
    try {
      while (!refused && clients.length < BUDGET) {
        const opened = await openWs(url, { headers });
        if (opened.ok) clients.push(opened.client);
        else refused = opened;
      }
      expect(refused?.status).toBe(503);
      expect(refused?.body).toContain("unavailable");
      expect(clients.length).toBeGreaterThan(50);
      // An ingest stream costs its socket alone (its calls are admitted one by one): it is refused only
      // when its socket no longer fits, not when a watch's two objects would not.
      expect(await held(server.baseUrl)).toBeGreaterThan(BUDGET - DESCRIPTOR_COSTS.perSocket);
      expect(server.output).not.toContain("Too many open files");
      // A stream that closes gives its descriptors back: the next one opens.
      for (const client of clients.splice(0, 5)) client.close();
      await expect
        .poll(
          async () => {
            const opened = await openWs(url, { headers });
            if (opened.ok) clients.push(opened.client);
            return opened.ok;
          },
          { timeout: 10_000, interval: 500 },
        )
        .toBe(true);
    } finally {
      for (const client of clients) client.close();
    }
  }, 120_000);
});
