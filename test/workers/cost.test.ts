/**
 * What the platform bills, counted in /metrics, in workerd: storage rows
 * written and read per object, and activations (an object started or woken
 * from hibernation).
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { freshId } from "../support/tokens";
import { postEvents, rawEvent, startedByEvent } from "./event-helpers";
import {
  createSession,
  metricGrows as grows,
  metricSeries as series,
  serviceCall,
  metricSettled as settled,
} from "./helpers";

describe("the bill, counted", () => {
  it("counts two rows written per bridged progress event: the event (its key is the row) and the state", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await startedByEvent(sessionId, playerId);
    const written = await settled("crafting_storage_rows_written_total", 'object="session"');
    for (let version = 2; version <= 6; version++) {
      const progress = rawEvent(sessionId, playerId, "progress", version, {
        elapsed_seconds: version,
      });
      expect((await postEvents(JSON.stringify([progress]))).status).toBe(202);
    }
    expect(
      await grows("crafting_storage_rows_written_total", 'object="session"', written, 10),
    ).toBe(10);
  });

  it("counts the rows a session writes and reads: one row written per progress update", async () => {
    const sessionId = freshId("s");
    expect((await createSession(sessionId, freshId("p"))).status).toBe(201);
    expect((await serviceCall(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
    const written = await settled("crafting_storage_rows_written_total", 'object="session"');
    const read = await settled("crafting_storage_rows_read_total", 'object="session"');
    for (let i = 1; i <= 10; i++)
      expect(
        (await serviceCall(`/udp/sessions/${sessionId}/progress`, { elapsed_ms: i * 100 })).status,
      ).toBe(200);
    expect(
      await grows("crafting_storage_rows_written_total", 'object="session"', written, 10),
    ).toBe(10);
    // Reads: what a GET costs (the newest row of the log).
    expect((await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).status).toBe(200);
    expect(
      await grows("crafting_storage_rows_read_total", 'object="session"', read, 1),
    ).toBeGreaterThan(0);
  });

  it("counts an activation each time an object starts or wakes", async () => {
    const sessionId = freshId("s");
    expect((await createSession(sessionId, freshId("p"))).status).toBe(201);
    const before = await series("crafting_object_activations_total", 'object="session"');
    for (let i = 0; i < 3; i++) {
      await evictDurableObject(env.CRAFTING_SESSION.getByName(sessionId));
      expect((await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET")).status).toBe(200);
    }
    expect(
      await grows("crafting_object_activations_total", 'object="session"', before, 3),
    ).toBeGreaterThanOrEqual(3);
  });
});
