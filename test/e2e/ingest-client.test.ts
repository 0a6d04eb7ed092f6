/**
 * crafting-service's ingest client (`crafting-network-service/client/ingest`)
 * against a real `wrangler dev` (its own, so it can be killed and
 * restarted): every correction answered, nothing lost across a kill -9,
 * refusals said with the service's reason.
 */

import { IngestClient, IngestError } from "crafting-network-service/client/ingest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WsSocket from "ws";
import { DevServer } from "../support/dev-server";
import { startedSession } from "../support/http";
import { serviceToken, token, wrongKeyToken } from "../support/tokens";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the ingest client", () => {
  const server = new DevServer();
  beforeAll(() => server.start(), 120_000);
  afterAll(() => server.dispose());

  const client = () =>
    new IngestClient({
      baseUrl: server.baseUrl,
      token: serviceToken,
      backoff: { baseMs: 100, capMs: 1_000 },
      connectTimeoutMs: 3_000,
    });
  const sessions = (count: number) =>
    Promise.all(Array.from({ length: count }, () => startedSession(server.baseUrl)));
  /** Where a session stands, as crafting-service reads it. */
  const progressOf = async (sessionId: string) => {
    const read = await fetch(`${server.baseUrl}/v1/sessions/${sessionId}`, {
      headers: { Authorization: `Bearer ${await serviceToken()}` },
    });
    const session = (await read.json()) as {
      progress?: { progressPercent?: number };
      seq?: number;
    };
    // Where the session's clock stands now: it runs on from the last correction.
    return { percent: Math.round(session.progress?.progressPercent ?? 0), seq: session.seq };
  };

  it("answers every correction with the seq its session stored it at", async () => {
    const ids = (await sessions(10)).map((s) => s.sessionId);
    const ingest = client();
    let settled = 0;
    const sent = Array.from({ length: 50 }, (_, i) =>
      ids.map((session_id) => ingest.send({ session_id, progress_percent: i + 1 })),
    )
      .flat()
      .map((answer) => answer.finally(() => settled++));
    // idle() resolves once every correction has its answer.
    await ingest.idle();
    await Promise.resolve();
    expect(settled).toBe(500);
    const answers = await Promise.all(sent);
    for (const sessionId of ids) {
      const mine = answers.filter((a) => a.sessionId === sessionId);
      expect(mine).toHaveLength(50);
      // Answered in order: a session's seqs never go back.
      const seqs = mine.map((a) => a.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      const now = await progressOf(sessionId);
      expect(now).toEqual({ percent: 50, seq: seqs.at(-1) });
    }
    expect(ingest.held).toBe(0);
    ingest.close();
  }, 60_000);

  it("loses nothing across a kill -9: the newest correction of every session lands", async () => {
    const ids = (await sessions(5)).map((s) => s.sessionId);
    const states: string[] = [];
    const ingest = new IngestClient({
      baseUrl: server.baseUrl,
      token: serviceToken,
      backoff: { baseMs: 100, capMs: 1_000 },
      connectTimeoutMs: 3_000,
      onState: ({ state }) => states.push(state),
    });
    const answers: Promise<unknown>[] = [];
    const sendRound = (percent: number) => {
      for (const session_id of ids)
        answers.push(ingest.send({ session_id, progress_percent: percent }));
    };
    for (let percent = 1; percent <= 20; percent++) sendRound(percent);
    await Promise.all(answers);
    // Killed with corrections on their way, and more sent while it is down.
    sendRound(21);
    await server.stop("SIGKILL");
    for (let percent = 22; percent <= 40; percent++) sendRound(percent);
    await server.start();
    sendRound(41);
    const settled = await Promise.race([
      Promise.allSettled(answers),
      sleep(30_000).then(() => {
        throw new Error(`${ingest.held} corrections still unanswered 30 s after the restart`);
      }),
    ]);
    expect(settled.filter((s) => s.status === "rejected")).toEqual([]);
    for (const sessionId of ids) expect((await progressOf(sessionId)).percent).toBe(41);
    expect(states).toContain("reconnecting");
    expect(ingest.held).toBe(0);
    ingest.close();
  }, 180_000);

  it("runs on the ws package's WebSocket, for a crafting-service on Node < 22", async () => {
    const [session] = await sessions(1);
    const sessionId = session?.sessionId ?? "";
    const ingest = new IngestClient({
      baseUrl: server.baseUrl,
      token: serviceToken,
      WebSocket: WsSocket as unknown as typeof WebSocket,
    });
    const answers = await Promise.all(
      [10, 20, 30].map((progress_percent) =>
        ingest.send({ session_id: sessionId, progress_percent }),
      ),
    );
    expect(answers.map((a) => a.sessionId)).toEqual([sessionId, sessionId, sessionId]);
    expect((await progressOf(sessionId)).percent).toBe(30);
    ingest.close();
  }, 60_000);

  it("refuses a correction with the service's code and reason; the others land", async () => {
    const [session] = await sessions(1);
    const sessionId = session?.sessionId ?? "";
    const ingest = client();
    const refused = ingest.send({ session_id: sessionId, progress_percent: 150 });
    await expect(refused).rejects.toThrow(IngestError);
    await expect(refused).rejects.toMatchObject({
      code: "invalid_argument",
      sessionId,
      message: expect.stringMatching(/progress_percent must be between 0 and 100/),
    });
    await expect(
      ingest.send({ session_id: "no-such-session", progress_percent: 5 }),
    ).rejects.toMatchObject({ code: "not_found" });
    await expect(
      ingest.send({ session_id: sessionId, progress_percent: 5 }),
    ).resolves.toMatchObject({ sessionId, changed: true });
    ingest.close();
    await expect(ingest.send({ session_id: sessionId, progress_percent: 6 })).rejects.toMatchObject(
      {
        code: "cancelled",
      },
    );
  }, 60_000);

  it("ends when its token is refused, rejecting every correction with why", async () => {
    const [session] = await sessions(1);
    for (const [bad, code] of [
      [await wrongKeyToken("crafting-service"), "unauthenticated"],
      [await token("p-1"), "permission_denied"],
    ] as const) {
      const states: string[] = [];
      const ingest = new IngestClient({
        baseUrl: server.baseUrl,
        token: () => bad,
        onState: ({ state }) => states.push(state),
      });
      const answer = ingest.send({ session_id: session?.sessionId ?? "", progress_percent: 5 });
      await expect(answer).rejects.toMatchObject({ code });
      // A correction made later is refused with the same reason, not sent.
      await expect(
        ingest.send({ session_id: session?.sessionId ?? "", progress_percent: 6 }),
      ).rejects.toMatchObject({ code, message: expect.stringMatching(/closed for good: 400[13]/) });
      expect(states.at(-1)).toBe("closed");
      expect(states).not.toContain("reconnecting");
      expect(ingest.held).toBe(0);
    }
  }, 60_000);
});
