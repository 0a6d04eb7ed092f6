/**
 * The dead-letter log, read page by page: every kept letter can be reached
 * (`next_before`), newest first, and a malformed query is refused. Letters
 * are sent again (redrive) to the real local Queues and applied.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { DeadLetter } from "../../src/domain/events/dead-letter";
import { parseEventRecord } from "../../src/events/event-input";
import { freshId, token } from "../support/tokens";
import { rawEvent, START, until } from "./event-helpers";
import { call, serviceCall } from "./helpers";

interface Page {
  count: number;
  letters: { id: number; reason: string }[];
  next_before: number | null;
}

async function page(query: string): Promise<Page> {
  const response = await serviceCall(`/v1/events/dead-letters?${query}`, undefined, "GET");
  expect(response.status, query).toBe(200);
  return (await response.json()) as Page;
}

describe("GET /v1/events/dead-letters", () => {
  it("pages through every kept letter, newest first, each once", async () => {
    const tag = crypto.randomUUID();
    const letters = Array.from({ length: 7 }, (_, i) => ({
      reason: `${tag} ${i}`,
      queue: "crafting-events",
      attempts: 1,
      body: { i },
      atMs: Date.now(),
    }));
    await env.DEAD_LETTERS.getByName("dead-letters").record(letters);

    // Small pages while ours (the newest) come by, then large ones to the end:
    // other tests' letters may be kept too.
    const seen: { id: number; reason: string }[] = [];
    let query = "limit=3";
    let last = false;
    for (let pages = 0; pages < 100 && !last; pages++) {
      const { letters: batch, next_before: next, count } = await page(query);
      seen.push(...batch);
      last = next === null;
      if (last) {
        expect(seen.length).toBe(count);
        break;
      }
      expect(next).toBe(batch.at(-1)?.id);
      query = `limit=${seen.length < letters.length ? 3 : 500}&before=${next}`;
    }
    expect(last).toBe(true);
    const ids = seen.map((letter) => letter.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(ids.length);
    const ours = seen.filter((letter) => letter.reason.startsWith(tag)).map((l) => l.reason);
    expect(ours).toEqual(letters.map((l) => l.reason).reverse());
  });

  it("refuses a limit or a cursor that is not a whole number in range", async () => {
    for (const query of [
      "limit=abc",
      "limit=0",
      "limit=501",
      "limit=-1",
      "before=0",
      "before=1.5",
    ]) {
      const response = await serviceCall(`/v1/events/dead-letters?${query}`, undefined, "GET");
      expect(response.status, query).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
        /^(limit|before) must be a whole number from 1 to \d+$/,
      );
    }
    expect((await page("limit=500")).letters.length).toBeLessThanOrEqual(500);
  });

  it("names both faults at once, and refuses a parameter it does not take rather than ignore it", async () => {
    const said = async (query: string) => {
      const response = await serviceCall(`/v1/events/dead-letters?${query}`, undefined, "GET");
      expect(response.status, query).toBe(400);
      return ((await response.json()) as { error: { message: string } }).error.message;
    };
    expect(await said("limit=0&before=x")).toBe(
      `limit must be a whole number from 1 to 500; before must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`,
    );
    // A misspelt cursor would otherwise list the first page again, as if it were the next.
    expect(await said("limit=5&befor=9")).toBe(
      "befor is not a query parameter here (the parameters are limit, before)",
    );
    // Said with the other parameters' faults, not one per request.
    expect(await said("limt=5&limit=0")).toBe(
      "limt is not a query parameter here (the parameters are limit, before); limit must be a whole number from 1 to 500",
    );
    // As POST /v1/events does with its one.
    const response = await serviceCall("/v1/events?oninvalid=dead_letter", []);
    expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
      "oninvalid is not a query parameter here (the parameters are on_invalid)",
    );
  });
});

describe("POST /v1/events/dead-letters/redrive", () => {
  /** A raw record as /v1/events would have queued it. */
  function queued(record: Record<string, unknown>) {
    const parsed = parseEventRecord(record, Date.now());
    if (!parsed.ok) throw new Error(parsed.message);
    return parsed.event;
  }

  /** Records `letters` and returns their ids, in order. */
  async function keep(letters: DeadLetter[]): Promise<number[]> {
    await env.DEAD_LETTERS.getByName("dead-letters").record(letters);
    const { letters: newest } = await page("limit=500");
    return letters.map((letter) => {
      const kept = newest.find((l) => l.reason === letter.reason);
      if (!kept) throw new Error(`not kept: ${letter.reason}`);
      return kept.id;
    });
  }

  const redrive = (body: unknown) => serviceCall("/v1/events/dead-letters/redrive", body);

  it("sends kept events back to their queues, where they apply; refuses what was refused at ingest", async () => {
    const tag = crypto.randomUUID();
    const sessionId = freshId("s");
    const playerId = freshId("p");
    const atMs = Date.now();
    // The object was overloaded past every retry; fixed since.
    const [startId, progressId, ingestId] = await keep([
      {
        reason: `${tag} retries exhausted`,
        queue: "unknown",
        attempts: 6,
        body: queued(rawEvent(sessionId, playerId, "start", 1, START)),
        atMs,
      },
      {
        reason: `${tag} retries exhausted (progress)`,
        queue: "crafting-progress",
        attempts: 4,
        body: queued(rawEvent(sessionId, playerId, "progress", 2, { elapsed_seconds: 30 })),
        atMs,
      },
      {
        reason: `${tag} refused at ingest: event_id must be a UUID`,
        queue: "ingest",
        attempts: 0,
        body: { event_id: "nope" },
        atMs,
      },
    ]);
    const response = await redrive({ ids: [startId, progressId, ingestId, 9_000_000_000] });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({
      redriven: [startId, progressId],
      missing: [9_000_000_000],
      refused: [
        {
          id: ingestId,
          error: {
            code: "failed_precondition",
            message:
              "this record was refused at ingest, so it would be refused again: correct it, POST it to /v1/events, then discard the letter",
          },
        },
      ],
    });
    // Applied by the consumer, as if they had never failed.
    const state = await until(
      async () => {
        const view = await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET");
        return view.status === 200
          ? ((await view.json()) as { playerId: string; clock: { anchorElapsedMs: number } })
          : null;
      },
      (s) => s?.clock.anchorElapsedMs === 30_000,
      "the redriven start and progress",
    );
    expect(state?.playerId).toBe(playerId);
    // Sent letters are forgotten; the refused one is kept.
    const left = (await page("limit=500")).letters.filter((l) => l.reason.startsWith(tag));
    expect(left.map((l) => l.id)).toEqual([ingestId]);
    // Again: nothing left to send, nothing sent twice.
    const again = await redrive({ ids: [startId, progressId] });
    expect(await again.json()).toEqual({
      redriven: [],
      missing: [startId, progressId],
      refused: [],
    });
    // The refused record, corrected and posted again elsewhere: its letter is discarded.
    const discarded = await serviceCall("/v1/events/dead-letters/discard", {
      ids: [ingestId, startId],
    });
    expect(discarded.status).toBe(200);
    expect(await discarded.json()).toEqual({ discarded: [ingestId], missing: [startId] });
    const after = (await page("limit=500")).letters.filter((l) => l.reason.startsWith(tag));
    expect(after).toEqual([]);
  });

  it("is crafting-service's: an operator reads the log but may not redrive or discard", async () => {
    for (const action of ["redrive", "discard"]) {
      const response = await call(`/v1/events/dead-letters/${action}`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${await token("alice", "operator")}`,
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ ids: [1] }),
      });
      expect(response.status, action).toBe(403);
    }
  });

  it("refuses a body that is not a list of ids, each once", async () => {
    const discard = (body: unknown) => serviceCall("/v1/events/dead-letters/discard", body);
    for (const body of [
      {},
      { ids: [] },
      { ids: [1, 1] },
      { ids: "1" },
      { ids: [0] },
      { ids: [1.5] },
    ]) {
      for (const send of [redrive, discard]) {
        const response = await send(body);
        expect(response.status, JSON.stringify(body)).toBe(400);
        expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
          /^ids must be a list of 1 to 500 dead-letter ids|^ids\[0\] must be a dead-letter id \(a whole number from 1\)$/,
        );
      }
    }
    for (const send of [redrive, discard]) {
      const tooMany = await send({ ids: Array.from({ length: 501 }, (_, i) => i + 1) });
      expect(tooMany.status).toBe(400);
    }
  });
});
