/**
 * The dead-letter log, read page by page: every kept letter can be reached
 * (`next_before`), newest first, and a malformed query is refused.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { serviceCall } from "./helpers";

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
});
