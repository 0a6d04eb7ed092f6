/**
 * /metrics counts what a scripted run did, against its own `wrangler dev`
 * (so no other test's traffic is counted), and passes promtool.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DevServer } from "../support/dev-server";
import { servicePost } from "../support/http";
import { freshId, serviceToken, token, wrongKeyToken } from "../support/tokens";
import { openWs, type WsClient } from "../support/ws-client";

const server = new DevServer();
beforeAll(() => server.start(), 120_000);
afterAll(() => server.dispose());

async function scrape(): Promise<Map<string, number>> {
  const response = await fetch(`${server.baseUrl}/metrics`, {
    headers: { Authorization: `Bearer ${await serviceToken()}` },
  });
  expect(response.status).toBe(200);
  const text = await response.text();
  lastText = text;
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}
let lastText = "";

it("counts N connects, M frames in and out, closes and auth failures, and passes promtool", async () => {
  const CONNECTS = 3;
  const PINGS_EACH = 2;
  const UPDATES = 4;
  const sessionId = freshId("s");
  const playerId = freshId("p");
  const base = server.baseUrl;
  expect(
    (
      await servicePost(base, "/v1/sessions", {
        session_id: sessionId,
        player_id: playerId,
        recipe_id: "iron-sword",
        steps: [{ name: "forge", duration_ms: 600_000 }],
      })
    ).status,
  ).toBe(201);
  expect((await servicePost(base, `/v1/sessions/${sessionId}/start`)).status).toBe(200);

  const bearer = await token(playerId);
  const clients: WsClient[] = [];
  for (let i = 0; i < CONNECTS; i++) {
    const opened = await openWs(`${base.replace("http", "ws")}/ws/crafting/${sessionId}`, {
      headers: { Authorization: `Bearer ${bearer}` },
    });
    if (!opened.ok) throw new Error(`refused ${opened.status}`);
    clients.push(opened.client);
  }
  for (const client of clients) {
    await client.frameCount(1);
    for (let i = 0; i < PINGS_EACH; i++)
      client.socket.send(JSON.stringify({ ping: { clientTimeMs: "1" } }));
    await client.frameCount(1 + PINGS_EACH);
  }
  for (let i = 1; i <= UPDATES; i++) {
    expect(
      (await servicePost(base, `/udp/sessions/${sessionId}/progress`, { elapsed_ms: i * 1000 }))
        .status,
    ).toBe(200);
  }
  expect((await servicePost(base, `/v1/sessions/${sessionId}/complete`)).status).toBe(200);
  for (const client of clients) await client.closing();
  const forged = await fetch(`${base}/v1/sessions/${sessionId}`, {
    headers: { Authorization: `Bearer ${await wrongKeyToken("crafting-service")}` },
  });
  expect(forged.status).toBe(401);

  const expected: [string, number][] = [
    ['crafting_streams_opened_total{kind="session"}', CONNECTS],
    ['crafting_streams_closed_total{code="1000",kind="session"}', CONNECTS],
    ['crafting_streams_open{kind="session"}', 0],
    ["crafting_messages_in_total", CONNECTS * PINGS_EACH],
    // Each progress update and the completion, to every subscriber.
    ["crafting_messages_out_total", CONNECTS * (UPDATES + 1)],
    ["crafting_delivery_latency_seconds_count", UPDATES + 1],
    ["crafting_sessions_created_total", 1],
    ['crafting_sessions_ended_total{status="completed"}', 1],
    ["crafting_sessions_active", 0],
    ['crafting_auth_failures_total{reason="bad_signature"}', 1],
  ];
  const deadline = Date.now() + 15_000;
  let values = await scrape();
  while (expected.some(([key, n]) => values.get(key) !== n) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    values = await scrape();
  }
  for (const [key, n] of expected) expect(values.get(key), key).toBe(n);
  expect(values.get('crafting_http_requests_total{code="201",route="/v1/sessions"}')).toBe(1);

  const check = spawnSync("promtool", ["check", "metrics"], { input: lastText, encoding: "utf8" });
  // promtool is provisioned by `npm test` (scripts/test-tools.mjs): never skipped.
  expect(check.error).toBeUndefined();
  expect(check.stdout + check.stderr).toBe("");
  expect(check.status).toBe(0);
}, 120_000);

it("tells streams that drop (1006) apart from the server's failures: the SLO stays met", async () => {
  const sessionId = freshId("s");
  const playerId = freshId("p");
  const base = server.baseUrl;
  const created = await servicePost(base, "/v1/sessions", {
    session_id: sessionId,
    player_id: playerId,
    recipe_id: "iron-sword",
    steps: [{ name: "forge", duration_ms: 600_000 }],
  });
  expect(created.status).toBe(201);
  const bearer = await token(playerId);
  const DROPS = 2;
  for (let i = 0; i < DROPS; i++) {
    const opened = await openWs(`${base.replace("http", "ws")}/ws/crafting/${sessionId}`, {
      headers: { Authorization: `Bearer ${bearer}` },
    });
    if (!opened.ok) throw new Error(`refused ${opened.status}`);
    await opened.client.frameCount(1);
    // A phone out of coverage: the connection goes, with no close frame.
    opened.client.socket.terminate();
  }
  const deadline = Date.now() + 15_000;
  let values = await scrape();
  while (
    values.get('crafting_streams_closed_total{code="1006",kind="session"}') !== DROPS &&
    Date.now() < deadline
  ) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    values = await scrape();
  }
  expect(values.get('crafting_streams_closed_total{code="1006",kind="session"}')).toBe(DROPS);
  const opened = values.get('crafting_streams_opened_total{kind="session"}') ?? 0;
  expect(values.get("crafting_slo_stream_drop_ratio")).toBeCloseTo(DROPS / opened);
  expect(values.get("crafting_slo_stream_failure_ratio")).toBe(0);
  expect(values.get("crafting_slo_breached")).toBe(0);

  const health = await fetch(`${base}/health/batch`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ checks: ["slo"] }),
  });
  expect(health.status).toBe(200);
  const [slo] = ((await health.json()) as { checks: { status: string; message: string }[] }).checks;
  expect(slo?.status).toBe("ok");
  // Judged over the last 15 minutes, which hold every stream of this server.
  expect(slo?.message).toContain(
    `last 15 min: stream failures 0.00 %, drops ${((DROPS / opened) * 100).toFixed(2)} %`,
  );
}, 60_000);
