/** Operations in workerd: trace ids end to end, health checks and the health stream, /metrics access. */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { StreamAttachment } from "../../durable-objects/streams/stream-attachment";
import { runHealthChecks } from "../../src/health/checks";
import { MetricsBuffer } from "../../src/metrics/registry";
import { freshId, serviceToken, token } from "../support/tokens";
import { call, callWith, captureLogs, serviceCall, TestSocket } from "./helpers";
import { watchedSession } from "./stream-helpers";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

describe("tracing", () => {
  it("carries a posted traceparent into the subscriber's frame, the response and the logs", async () => {
    const logs = captureLogs();
    const { sessionId, socket } = await watchedSession();
    const progress = async (logLevel: string, traceId: string) =>
      callWith({ ...env, LOG_LEVEL: logLevel })(`/udp/sessions/${sessionId}/progress`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${await serviceToken()}`,
          "Content-Type": "application/json",
          traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
        },
        body: JSON.stringify({ progress_percent: 10 }),
      });
    const response = await progress("debug", TRACE_ID);
    expect(response.status).toBe(200);
    expect(response.headers.get("traceparent")).toMatch(
      new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`),
    );
    const [update] = (await socket.frameCount(2)).slice(1);
    expect(update).toMatchObject({ traceId: TRACE_ID, update: { cause: "progress" } });

    // A successful request's line is written at debug: the platform records every invocation itself.
    expect(logs.events("request")).toContainEqual(
      expect.objectContaining({
        level: "debug",
        trace_id: TRACE_ID,
        status: 200,
        method: "POST",
        path: `/udp/sessions/${sessionId}/progress`,
      }),
    );
    const request = logs.events("request").find((e) => e.trace_id === TRACE_ID);
    // Without a Ray ID from the edge, the line's request id is the span our traceparent names.
    expect(request?.request_id).toBe(response.headers.get("traceparent")?.split("-")[2]);
    expect(request).toHaveProperty("duration_ms");

    const quiet = "5bf92f3577b34da6a3ce929d0e0e4737";
    expect((await progress("info", quiet)).status).toBe(200);
    expect(logs.events("request").some((e) => e.trace_id === quiet)).toBe(false);
  });

  it("logs a refused request at warn, whatever the level", async () => {
    const logs = captureLogs();
    const response = await call("/udp/sessions/s-1/progress", {
      method: "POST",
      headers: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` },
    });
    expect(response.status).toBe(401);
    expect(logs.events("request")).toContainEqual(
      expect.objectContaining({ level: "warn", trace_id: TRACE_ID, status: 401 }),
    );
  });

  it("keeps a trace id it made up in the logs and the response, out of the frames", async () => {
    const { sessionId, socket } = await watchedSession();
    const response = await serviceCall(`/udp/sessions/${sessionId}/progress`, {
      progress_percent: 10,
    });
    expect(response.headers.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const [update] = (await socket.frameCount(2)).slice(1);
    expect(update).toMatchObject({ update: { cause: "progress" } });
    expect(update).not.toHaveProperty("traceId");
  });

  it("starts a trace when none (or an invalid one) is sent", async () => {
    const response = await call("/health", { headers: { traceparent: "garbage" } });
    expect(response.headers.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(response.headers.get("traceparent")).not.toContain("garbage");
  });
});

describe("health", () => {
  it("keeps each metrics shard's SLO series of the last 15 minutes beside its totals, and stores them", async () => {
    const shard = env.METRICS.getByName(freshId("shard"));
    const buffer = new MetricsBuffer();
    buffer.count("crafting_streams_opened_total", { kind: "session" }, 4);
    buffer.count("crafting_streams_closed_total", { kind: "session", code: "1011" }, 1);
    buffer.count("crafting_messages_out_total", {}, 3);
    await shard.add(buffer.drain());
    const expected = {
      'crafting_streams_opened_total{kind="session"}': 4,
      'crafting_streams_closed_total{code="1011",kind="session"}': 1,
    };
    expect((await shard.recent()).counters).toEqual(expected);
    expect((await shard.totals()).counters.crafting_messages_out_total).toBe(3);
    // Stored with the totals, in one value: a restarted shard reads both back.
    await evictDurableObject(shard);
    expect((await shard.recent()).counters).toEqual(expected);
    expect((await shard.totals()).counters.crafting_messages_out_total).toBe(3);
  });

  it("moves a shard's totals stored before the window under its one key, losing none", async () => {
    const shard = env.METRICS.getByName(freshId("shard"));
    await runInDurableObject(shard, (_instance, state) => {
      state.storage.kv.delete("state");
      state.storage.kv.put("totals", {
        counters: { crafting_messages_out_total: 7 },
        histograms: {},
      });
    });
    await evictDurableObject(shard);
    expect((await shard.totals()).counters.crafting_messages_out_total).toBe(7);
    const keys = await runInDurableObject(shard, (_instance, state) =>
      [...state.storage.kv.list()].map(([key]) => key),
    );
    expect(keys).toEqual(["state"]);
  });

  it("POST /health/batch runs the named checks, each with a status and latency", async () => {
    const response = await call("/health/batch", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ checks: ["secret", "durable_objects", "storage", "queues"] }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      status: string;
      checks: { name: string; status: string; latency_ms: number }[];
    };
    expect(body.status).toBe("ok");
    expect(body.checks.map((c) => [c.name, c.status])).toEqual([
      ["secret", "ok"],
      ["durable_objects", "ok"],
      ["storage", "ok"],
      ["queues", "ok"],
    ]);
    for (const check of body.checks) expect(check.latency_ms).toBeGreaterThanOrEqual(0);
    const bad = await call("/health/batch", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: '{"checks":["coffee"]}',
    });
    expect(bad.status).toBe(400);
  });

  it("reports a failing dependency as failing", async () => {
    const broken = { ...env, DEAD_LETTER_QUEUE: undefined, JWT_SECRET: "short" } as unknown as Env;
    const results = await runHealthChecks(broken, ["queues", "secret", "storage"]);
    expect(results).toEqual([
      expect.objectContaining({
        name: "queues",
        status: "failing",
        message: "not bound: DEAD_LETTER_QUEUE",
      }),
      expect.objectContaining({ name: "secret", status: "failing" }),
      expect.objectContaining({ name: "storage", status: "ok" }),
    ]);
  });

  it("GET /health/ws streams snapshots to a service token, and refuses a player", async () => {
    const refused = await call("/health/ws", {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await token("p-1")}` },
    });
    expect(refused.status).toBe(403);
    const response = await call("/health/ws", {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await serviceToken()}` },
    });
    expect(response.status).toBe(101);
    const socket = new TestSocket(response.webSocket as WebSocket);
    const [first] = await socket.frameCount(1);
    expect(first).toMatchObject({
      health: { status: expect.stringMatching(/^HEALTH_STATUS_/), version: env.SERVICE_VERSION },
    });
    const health = first?.health as { checks: { name: string }[] } | undefined;
    expect(health?.checks.map((c) => c.name)).toContain("storage");
    expect(await runDurableObjectAlarm(env.METRICS.getByName("health"))).toBe(true);
    await socket.frameCount(2);
    socket.ws.close(1000);
  });

  it("runs the health stream on the rules of every stream: a slot, seq, the idle close", async () => {
    const operator = freshId("ops");
    const bearer = await token(operator, "service");
    const open = () =>
      call("/health/ws", { headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}` } });
    const response = await open();
    expect(response.status).toBe(101);
    const socket = new TestSocket(response.webSocket as WebSocket);
    const [first] = await socket.frameCount(1);
    // The caller holds one of its ten stream slots while it watches.
    const slots = () => env.PLAYER.getByName(operator).streams();
    expect((await slots()).map((lease) => lease.kind)).toEqual(["health"]);
    // Snapshots are numbered like every stream's frames.
    const health = env.METRICS.getByName("health");
    expect(await runDurableObjectAlarm(health)).toBe(true);
    const [, second] = await socket.frameCount(2);
    expect(Number(second?.seq)).toBe(Number(first?.seq) + 1);
    expect(second?.epoch).toBe(first?.epoch);
    // Silent for 30 s: closed with 4008 at the next sweep, and the slot freed.
    await runInDurableObject(health, (_instance, state) => {
      for (const ws of state.getWebSockets()) {
        const attachment = ws.deserializeAttachment() as StreamAttachment;
        ws.serializeAttachment({ ...attachment, lastSeenMs: attachment.lastSeenMs - 31_000 });
      }
    });
    expect(await runDurableObjectAlarm(health)).toBe(true);
    expect(await socket.closing()).toEqual({ code: 4008, reason: "idle for 30 s" });
    for (let i = 0; i < 50 && (await slots()).length > 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await slots()).toEqual([]);
  });
});

describe("/metrics", () => {
  it("needs a service token and answers Prometheus text", async () => {
    expect((await call("/metrics")).status).toBe(401);
    expect(
      (await call("/metrics", { headers: { Authorization: `Bearer ${await token("p-1")}` } }))
        .status,
    ).toBe(403);
    const response = await serviceCall("/metrics", undefined, "GET");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain("# TYPE crafting_delivery_latency_seconds histogram");
    expect(text).toContain("# TYPE crafting_slo_breached gauge");
  });
});
