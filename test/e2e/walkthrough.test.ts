/**
 * The README's walkthrough against a real `wrangler dev` with a real
 * WebSocket client: create → watch → start → progress → complete; and
 * walked as README.md writes it (its bodies, `npm run watch`'s script),
 * printing the lines it shows.
 */
import { readFileSync } from "node:fs";
import { describe, expect, inject, it } from "vitest";
import { servicePost } from "../support/http";
import { runScript } from "../support/run-script";
import { TEST_JWT_SECRET } from "../support/secret";
import {
  expiredToken,
  freshId,
  serviceToken,
  token,
  unsignedToken,
  wrongKeyToken,
} from "../support/tokens";
import { openWs } from "../support/ws-client";

const baseUrl = inject("baseUrl");
const wsUrl = (path: string) => `${baseUrl.replace(/^http/, "ws")}${path}`;

const service = (path: string, body?: unknown) => servicePost(baseUrl, path, body);

async function createSession(sessionId: string, playerId: string): Promise<void> {
  const response = await service("/v1/sessions", {
    session_id: sessionId,
    player_id: playerId,
    recipe_id: "iron-sword",
    steps: [
      { name: "smelt", duration_ms: 30_000 },
      { name: "forge", duration_ms: 30_000 },
    ],
  });
  expect(response.status).toBe(201);
}

describe("a crafting session over wrangler dev", () => {
  it("is created, watched, started, corrected and completed, live", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);

    const opened = await openWs(wsUrl(`/ws/crafting/${sessionId}`), {
      headers: { Authorization: `Bearer ${await token(playerId)}` },
    });
    if (!opened.ok) throw new Error(`refused: ${opened.status} ${opened.body}`);
    const { client } = opened;
    const [snapshot] = await client.frameCount(1);
    expect(snapshot).toMatchObject({
      seq: 1,
      snapshot: { session: { sessionId, status: "SESSION_STATUS_QUEUED" } },
    });

    expect((await service(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
    expect(
      (await service(`/udp/sessions/${sessionId}/progress`, { progress_percent: 60 })).status,
    ).toBe(200);
    expect((await service(`/v1/sessions/${sessionId}/complete`)).status).toBe(200);

    const frames = await client.frameCount(4);
    expect(frames.map((f) => f.seq)).toEqual([1, 2, 3, 4]);
    expect(frames[1]).toMatchObject({
      update: { cause: "start", status: "SESSION_STATUS_ACTIVE" },
    });
    // Updates carry what changed: a correction moves the clock (60 % of the
    // plan's total, from the snapshot); completion sets it at the total.
    const planned = snapshot?.snapshot as
      | { session?: { clock?: { totalDurationMs?: number } } }
      | undefined;
    const total = Number(planned?.session?.clock?.totalDurationMs ?? 0);
    expect(total).toBe(60_000);
    expect(frames[2]).toMatchObject({
      update: { cause: "progress", clock: { anchorElapsedMs: total * 0.6, running: true } },
    });
    expect(frames[3]).toMatchObject({
      update: {
        cause: "complete",
        status: "SESSION_STATUS_COMPLETED",
        clock: { anchorElapsedMs: total },
      },
    });
    expect(await client.closing()).toEqual({ code: 1000, reason: "session completed" });

    const view = await fetch(`${baseUrl}/v1/sessions/${sessionId}`, {
      headers: { Authorization: `Bearer ${await serviceToken()}` },
    });
    expect(await view.json()).toMatchObject({ status: "SESSION_STATUS_COMPLETED", seq: 4 });
  });

  it("prints in terminal 3 what the README shows, walked as the README walks it", async () => {
    const readme = readFileSync("README.md", "utf8");
    const matched = (pattern: RegExp) => {
      const found = pattern.exec(readme)?.[1];
      if (found === undefined) throw new Error(`the README has no ${pattern}`);
      return found;
    };
    const created = JSON.parse(matched(/\/v1\/sessions \\\n[\s\S]*?-d '(\{"session_id"[^']*)'/));
    const corrected = JSON.parse(matched(/\/progress \\\n[\s\S]*?-d '([^']*)'/));
    const watchArgs = matched(/npm run watch -- (.*)/).split(" ");
    const shown = [
      matched(/npm run watch -- .*\n# (.*)/),
      ...matched(/Terminal 3 shows each change[\s\S]*?```\n([^`]*)```/)
        .trimEnd()
        .split("\n"),
    ];
    // The README's ids, fresh for this run.
    const sessionId = freshId("s");
    const playerId = freshId("p");
    expect(watchArgs).toEqual([created.session_id, "--player", created.player_id]);
    expect(
      (await service("/v1/sessions", { ...created, session_id: sessionId, player_id: playerId }))
        .status,
    ).toBe(201);
    const watch = runScript("scripts/watch.mjs", { JWT_SECRET: TEST_JWT_SECRET }, [
      sessionId,
      "--player",
      playerId,
      "--url",
      baseUrl,
    ]);
    const deadline = Date.now() + 15_000;
    while (!watch.output.includes("seq=1 ")) {
      if (Date.now() > deadline) throw new Error(`no snapshot in:\n${watch.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await service(`/v1/sessions/${sessionId}/start`)).status).toBe(200);
    expect((await service(`/udp/sessions/${sessionId}/progress`, corrected)).status).toBe(200);
    expect((await service(`/v1/sessions/${sessionId}/complete`)).status).toBe(200);
    const completed = Date.now();
    expect(await watch.exited).toBe(0);
    // It closes on the final frame, as a client of one's own should
    // (docs/streams.md): before the server would close it, 1 s after that
    // frame (END_CLOSE_GRACE_MS), and not 1.5 s later as it did.
    expect(Date.now() - completed).toBeLessThan(1_000);
    expect(watch.output.trimEnd().split("\n")).toEqual([
      `watching ${sessionId} (Ctrl-C to stop)`,
      ...shown,
    ]);
  });

  it("lets a browser-style client authenticate with the bearer subprotocol", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const opened = await openWs(wsUrl(`/ws/crafting/${sessionId}`), {
      protocols: ["crafting.v1.json", `bearer.${await token(playerId)}`],
    });
    expect(opened.ok && opened.protocol).toBe("crafting.v1.json");
    if (opened.ok) opened.client.close();
  });
});

describe("refusals over wrangler dev", () => {
  const badTokens: [string, (player: string) => Promise<string> | string][] = [
    ["a forged alg:none token", unsignedToken],
    ["a token signed with another key", wrongKeyToken],
    ["an expired token", expiredToken],
  ];

  it("answers a stream without a token with 401", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("p"));
    const opened = await openWs(wsUrl(`/ws/crafting/${sessionId}`));
    expect(opened).toMatchObject({ ok: false, status: 401 });
  });

  for (const [what, make] of badTokens) {
    it(`answers a stream with ${what} with 401`, async () => {
      const sessionId = freshId("s");
      const playerId = freshId("p");
      await createSession(sessionId, playerId);
      const opened = await openWs(wsUrl(`/ws/crafting/${sessionId}`), {
        headers: { Authorization: `Bearer ${await make(playerId)}` },
      });
      expect(opened).toMatchObject({ ok: false, status: 401 });
      expect(!opened.ok && JSON.parse(opened.body)).toMatchObject({
        error: { code: "unauthenticated" },
      });
    });
  }

  it("answers 403 to a player watching someone else's session", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("owner"));
    const opened = await openWs(wsUrl(`/ws/crafting/${sessionId}`), {
      headers: { Authorization: `Bearer ${await token(freshId("intruder"))}` },
    });
    expect(opened).toMatchObject({ ok: false, status: 403 });
  });

  it("refuses a token in the query string", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const opened = await openWs(wsUrl(`/ws/crafting/${sessionId}?token=${await token(playerId)}`));
    expect(opened).toMatchObject({ ok: false, status: 400 });
  });
});
