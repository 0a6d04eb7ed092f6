/**
 * The dashboard in a real browser (Debian's chromium through playwright-core)
 * against `wrangler dev` with `npm run demo` driving it: progress advances
 * and numbers update live, and the pages survive a server restart.
 * Screenshots go to test-artifacts/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHECK_NAMES, type CheckStatus, overall } from "../../src/health/checks";
import { launchChromium } from "../support/chromium";
import { DevServer } from "../support/dev-server";
import { TEST_JWT_SECRET } from "../support/secret";
import { serviceToken, token } from "../support/tokens";

/** What the page functions below touch in the browser (this file is not compiled with the DOM library). */
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  querySelector(selector: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): Iterable<{ children: { textContent: string | null }[] }>;
};

const ARTIFACTS = join(process.cwd(), "test-artifacts");

interface DemoLinks {
  operator: string;
  player: string;
  player_id: string;
  session_id: string;
}

/** Starts the demo against `baseUrl` and resolves with its links. */
function startDemo(baseUrl: string): { child: ChildProcess; links: Promise<DemoLinks> } {
  const child = spawn(
    process.execPath,
    ["scripts/demo.mjs", "--url", baseUrl, "--players", "2", "--speed", "3", "--quiet"],
    { env: { ...process.env, JWT_SECRET: TEST_JWT_SECRET }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const links = new Promise<DemoLinks>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const line = /^DEMO_LINKS (.*)$/m.exec(output);
      if (line) resolve(JSON.parse(line[1] as string) as DemoLinks);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("exit", (code) => reject(new Error(`demo exited ${code}:\n${output}`)));
  });
  return { child, links };
}

/** The progress the player page shows (%), as it records it on <body>. */
const progress = async (page: Page) =>
  Number(await page.locator("body").getAttribute("data-progress"));

describe("the dashboard in chromium", () => {
  const server = new DevServer();
  let browser: Browser;
  let demo: ReturnType<typeof startDemo>;
  let links: DemoLinks;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await server.start();
    demo = startDemo(server.baseUrl);
    links = await demo.links;
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    demo?.child.kill("SIGTERM");
    await browser?.close();
    await server.dispose();
  });

  it("shows a player's session progressing smoothly, their queue and workflow, and survives a restart", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("console", (message) => {
      // Anything the pages' Content-Security-Policy blocked (public/_headers).
      if (message.text().includes("Content Security Policy")) errors.push(message.text());
    });
    await page.goto(links.player);
    await page.waitForFunction(() => document.body.dataset.connection === "open", null, {
      timeout: 20_000,
    });
    await page.waitForFunction(() => Number(document.body.dataset.progress ?? 0) > 0, null, {
      timeout: 30_000,
    });
    const before = await progress(page);
    await page.waitForTimeout(1_500);
    const after = await progress(page);
    expect(after).toBeGreaterThan(before);
    await page.waitForFunction(() => Number(document.body.dataset.queueUpdates ?? 0) > 0);
    expect(await page.locator("#queue tr").count()).toBeGreaterThan(0);
    expect(await page.locator("#steps li").count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(ARTIFACTS, "player.png"), fullPage: true });

    await server.stop("SIGKILL");
    await page.waitForFunction(() => document.body.dataset.connection !== "open", null, {
      timeout: 20_000,
    });
    await server.start();
    await page.waitForFunction(() => document.body.dataset.connection === "open", null, {
      timeout: 40_000,
    });
    // Live again: queue changes the demo makes after the restart reach the page.
    const queueUpdates = Number(await page.locator("body").getAttribute("data-queue-updates"));
    await page.waitForFunction(
      (n) => Number(document.body.dataset.queueUpdates) > n,
      queueUpdates,
      {
        timeout: 30_000,
      },
    );
    const resumed = await progress(page);
    await page.waitForTimeout(1_500);
    expect(await progress(page)).toBeGreaterThanOrEqual(resumed);
    await page.screenshot({ path: join(ARTIFACTS, "player-after-restart.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it("shows operators live numbers, charts, health over /health/ws and any session by id", async () => {
    // A player watching, so frames flow.
    const player = await browser.newPage();
    await player.goto(links.player);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    page.on("console", (message) => {
      // Anything the pages' Content-Security-Policy blocked (public/_headers).
      if (message.text().includes("Content Security Policy")) errors.push(message.text());
    });
    await page.goto(links.operator);
    await page.waitForFunction(() => Number(document.body.dataset.polls ?? 0) >= 3, null, {
      timeout: 30_000,
    });
    const sessions = Number(await page.locator('[data-metric="sessions"]').textContent());
    expect(sessions).toBeGreaterThan(0);
    const outRate = async () =>
      Number(await page.locator('[data-metric="out-rate"]').textContent());
    await page.waitForFunction(
      () => Number(document.querySelector('[data-metric="out-rate"]')?.textContent) > 0,
      null,
      { timeout: 30_000 },
    );
    expect(await outRate()).toBeGreaterThan(0);
    const polls = Number(await page.locator("body").getAttribute("data-polls"));
    await page.waitForFunction((n) => Number(document.body.dataset.polls) > n + 1, polls, {
      timeout: 20_000,
    });
    // A record from a connector that is no event (no event fields, an id
    // that is HTML): refused and dead-lettered. The dead_letters check must
    // report it, so the health is not ok on any machine.
    const hostile = "<img src=x data-injected=1>";
    const refused = await fetch(`${server.baseUrl}/v1/events?on_invalid=dead_letter`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await serviceToken()}`,
        "Content-Type": "application/x-ndjson",
      },
      body: JSON.stringify({ eventId: hostile }),
    });
    expect(refused.status).toBe(202);
    // The health checks come over /health/ws, not a poll. Their status is the
    // service's honest one: under a loaded CI machine the SLO check (delivery
    // p99 over 50 ms) or a slow answer may make it worse still, so the page is
    // held to showing what the checks say.
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll("#checks tr")].some(
          (row) =>
            row.children[0]?.textContent === "dead_letters" &&
            row.children[1]?.textContent === "degraded",
        ),
      null,
      { timeout: 30_000 },
    );
    // Badge and table in one read: a later frame replaces both at once.
    const { badge, checks } = await page.evaluate(() => ({
      badge: document.querySelector("#health")?.textContent ?? "",
      checks: [...document.querySelectorAll("#checks tr")].map((row) => [
        row.children[0]?.textContent ?? "",
        row.children[1]?.textContent ?? "",
      ]),
    }));
    const statuses = Object.fromEntries(checks) as Record<string, CheckStatus>;
    expect(Object.keys(statuses).sort()).toEqual([...CHECK_NAMES].sort());
    // What needs no timing is ok: the keys are configured, the queues bound.
    expect(statuses.secret).toBe("ok");
    expect(statuses.queues).toBe("ok");
    const worst = overall(Object.values(statuses).map((status) => ({ status })));
    expect(worst).not.toBe("ok");
    expect(badge).toBe(`health ${worst}`);
    // The dead letter is listed, its HTML shown as text, never as markup.
    await page.waitForFunction(
      () => Number(document.querySelector('[data-metric="dlq"]')?.textContent) > 0,
      null,
      { timeout: 20_000 },
    );
    expect(await page.locator("#letters").textContent()).toContain(hostile);
    expect(await page.locator("#letters [data-injected]").count()).toBe(0);
    // Each row leads with the letter's id, which a redrive names.
    const newest = (await (
      await fetch(`${server.baseUrl}/v1/events/dead-letters?limit=1`, {
        headers: { Authorization: `Bearer ${await serviceToken()}` },
      })
    ).json()) as { letters: { id: number }[] };
    expect(await page.locator("#letters tr:first-child td:first-child").textContent()).toBe(
      String(newest.letters[0]?.id),
    );
    // The estimated cost, from two samples of the billed counters and public/pricing.json.
    await page.waitForFunction(() => Number(document.body.dataset.costSamples ?? 0) > 0, null, {
      timeout: 20_000,
    });
    expect(
      Number(await page.locator('[data-metric="cost-per-1000"]').textContent()),
    ).toBeGreaterThanOrEqual(0);
    expect(await page.locator("#cost-parts dt").count()).toBe(4);
    // Owed work, drawn from the same poll: counts (none owed here, unless a notice failed) and a row.
    expect(
      Number(await page.locator('[data-metric="owed-abandoned"]').textContent()),
    ).toBeGreaterThanOrEqual(0);
    expect(await page.locator("#owed tr").count()).toBeGreaterThan(0);
    // Any session, live, by id (the operator token watches what a player owns).
    await page.fill("#session-input", links.session_id);
    await page.click("#session-form button");
    await page.waitForFunction(() => Number(document.body.dataset.sessionFrames ?? 0) > 0, null, {
      timeout: 20_000,
    });
    expect(await page.locator("[data-session-status]").textContent()).toMatch(
      /^(active|paused|completed|pending|failed|cancelled)$/,
    );
    await page.screenshot({ path: join(ARTIFACTS, "operator.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
    await player.close();
  }, 90_000);

  it("shows an operator any session by id as its player's client holds it: progress between updates, materials, the failure (which the player's page says too)", async () => {
    const service = { Authorization: `Bearer ${await serviceToken()}` };
    const post = async (path: string, body?: unknown, method = "POST") => {
      const response = await fetch(`${server.baseUrl}${path}`, {
        method,
        headers: body === undefined ? service : { ...service, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect(response.status, await response.clone().text()).toBeLessThan(300);
    };
    const sessionId = `s-operator-${Date.now()}`;
    const playerId = `p-operator-${Date.now()}`;
    await post("/v1/sessions", {
      session_id: sessionId,
      player_id: playerId,
      recipe_id: "iron-sword",
      steps: [
        { name: "smelt", duration_ms: 10_000 },
        { name: "forge", duration_ms: 600_000 },
      ],
      materials: [{ material_id: "iron-ore", required: 3 }],
    });
    const page = await browser.newPage();
    await page.goto(links.operator);
    await page.fill("#session-input", sessionId);
    await page.click("#session-form button");
    const shown = async (what: string) =>
      (await page.locator(`[data-session-${what}]`).textContent()) ?? "";
    await page.waitForFunction(() => document.querySelector("[data-session-status]") !== null);
    expect(await shown("status")).toBe("queued");
    expect(await shown("materials")).toBe("iron-ore 3/3");
    // A correction moves the bar; updates carry only the clock, so the page
    // must follow it (before, it showed the snapshot's 0.0 % for ever).
    await post(`/v1/sessions/${sessionId}/start`);
    await post(`/udp/sessions/${sessionId}/progress`, { progress_percent: 50 });
    await page.waitForFunction(
      () =>
        Number.parseFloat(document.querySelector("[data-session-progress]")?.textContent ?? "") >=
        50,
      null,
      { timeout: 10_000 },
    );
    const at = Number.parseFloat(await shown("progress"));
    // And keeps moving with the clock between updates.
    await page.waitForFunction(
      (before) =>
        Number.parseFloat(document.querySelector("[data-session-progress]")?.textContent ?? "") >
        before,
      at,
      { timeout: 10_000 },
    );
    await post(`/udp/sessions/${sessionId}/materials`, {
      changes: [{ material_id: "iron-ore", quantity: 1 }],
    });
    await page.waitForFunction(() =>
      document.querySelector("[data-session-materials]")?.textContent?.includes("1/3"),
    );
    expect(await shown("materials")).toBe("iron-ore 1/3 (missing)");
    await post(`/v1/sessions/${sessionId}/fail`, { reason: "out of <ore>" });
    await page.waitForFunction(
      () => document.querySelector("[data-session-status]")?.textContent === "failed",
    );
    expect(await shown("reason")).toBe("out of <ore>");
    // The player's page says it too, and why a workflow failed.
    const workflowId = `w-operator-${Date.now()}`;
    await post("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: [{ name: "fire", recipe_id: "brick", steps: [{ name: "bake", duration_ms: 60_000 }] }],
    });
    await post(`/v1/workflows/${workflowId}/fail`, { reason: "kiln cracked" });
    const player = await browser.newPage();
    const url = new URL(links.player);
    url.searchParams.set("session", sessionId);
    url.searchParams.set("player", playerId);
    url.searchParams.set("workflow", workflowId);
    url.hash = `token=${await token(playerId)}`;
    await player.goto(url.toString());
    await player.waitForFunction(
      () => document.querySelector("#session-status")?.textContent?.startsWith("failed"),
      null,
      { timeout: 10_000 },
    );
    expect(await player.locator("#session-status").textContent()).toBe("failed: out of <ore>");
    await player.waitForFunction(() =>
      document.querySelector("#workflow-status")?.textContent?.startsWith("failed"),
    );
    expect(await player.locator("#workflow-status").textContent()).toBe("failed: kiln cracked");
    // A request that leaves the queue while the page watches says how it ended, and why.
    const leaving = `s-leaving-${Date.now()}`;
    await post("/v1/sessions", {
      session_id: leaving,
      player_id: playerId,
      recipe_id: "elixir",
      steps: [{ name: "brew", duration_ms: 60_000 }],
    });
    await player.waitForFunction(
      (id) => document.querySelector("#queue")?.textContent?.includes(id),
      leaving,
    );
    await post(`/v1/sessions/${leaving}/cancel`, { reason: "no <vials> left" });
    await player.waitForFunction(() => document.querySelector("#queue [data-ended]") !== null);
    expect(await player.locator("#queue [data-ended]").first().textContent()).toBe(
      `${leaving}elixircancelled: no <vials> left`,
    );
    // And how many requests the player crafts at once, as it changes.
    expect(await player.locator("#queue-slots").textContent()).toBe("1 slot");
    await post(`/v1/players/${playerId}/slots`, { slots: 3 }, "PUT");
    await player.waitForFunction(
      () => document.querySelector("#queue-slots")?.textContent === "3 slots",
    );
    await player.close();
    expect(Number(await shown("seq"))).toBe(5);
    await page.close();
  }, 60_000);

  it("shows an operator any player's queue by id: the slots, what holds them and waits, and what left and why", async () => {
    const service = { Authorization: `Bearer ${await serviceToken()}` };
    const call = async (path: string, body?: unknown, method = "POST") => {
      const response = await fetch(`${server.baseUrl}${path}`, {
        method,
        headers: { ...service, "Content-Type": "application/json" },
        body: JSON.stringify(body ?? {}),
      });
      expect(response.status, await response.clone().text()).toBeLessThan(300);
    };
    const playerId = `p-queue-${Date.now()}`;
    const [first, second] = ["a", "b"].map((x) => `s-queue-${x}-${Date.now()}`) as [string, string];
    for (const sessionId of [first, second])
      await call("/v1/sessions", {
        session_id: sessionId,
        player_id: playerId,
        recipe_id: "rope",
        steps: [{ name: "twist", duration_ms: 120_000 }],
      });
    await call(`/v1/sessions/${first}/start`);
    const page = await browser.newPage();
    await page.goto(links.operator);
    await page.fill("#queue-input", playerId);
    await page.click("#queue-form button");
    const rows = async () =>
      [...(await page.locator("#queue-view tbody tr").allTextContents())].map((r) => r.trim());
    await page.waitForFunction(() => document.querySelector("[data-queue-slots]") !== null);
    expect(await page.locator("[data-queue-slots]").textContent()).toBe("1 slot");
    // One processing, one waiting for its slot (about the first one's two minutes).
    expect(await rows()).toEqual([
      `${first}ropeprocessing00 s`,
      expect.stringMatching(new RegExp(`^${second}ropequeued1(119|120) s$`)),
    ]);
    await call(`/v1/sessions/${first}/cancel`, { reason: "player logged <out>" });
    await call(`/v1/players/${playerId}/slots`, { slots: 2 }, "PUT");
    await page.waitForFunction(
      () => document.querySelector("[data-queue-slots]")?.textContent === "2 slots",
    );
    await page.waitForFunction(() => document.querySelector("[data-queue-ended]") !== null);
    expect(await page.locator("[data-queue-ended]").textContent()).toBe(
      `${first}ropecancelled: player logged <out>`,
    );
    await page.close();
  }, 60_000);

  it("shows an operator any workflow by id: each step moving with its clock, and why it failed", async () => {
    const service = {
      Authorization: `Bearer ${await serviceToken()}`,
      "Content-Type": "application/json",
    };
    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${server.baseUrl}${path}`, {
        method: "POST",
        headers: service,
        body: JSON.stringify(body),
      });
      expect(response.status, await response.clone().text()).toBeLessThan(300);
    };
    const workflowId = `w-watch-${Date.now()}`;
    await post("/v1/workflows", {
      workflow_id: workflowId,
      player_id: `p-watch-${Date.now()}`,
      steps: [
        { name: "smelt", recipe_id: "ingot", steps: [{ name: "melt", duration_ms: 20_000 }] },
        { name: "forge", recipe_id: "blade", steps: [{ name: "hammer", duration_ms: 60_000 }] },
      ],
    });
    const page = await browser.newPage();
    await page.goto(links.operator);
    await page.fill("#workflow-input", workflowId);
    await page.click("#workflow-form button");
    const steps = async () =>
      (await page.locator("[data-workflow-step]").allTextContents()).map((r) => r.trim());
    await page.waitForFunction(() => document.querySelector("[data-workflow-status]") !== null);
    expect(await page.locator("[data-workflow-status]").textContent()).toBe("active");
    expect(await steps()).toEqual([
      expect.stringMatching(/^▶ smeltingotactive\d+\.\d %$/),
      "forgebladenot started0.0 %",
    ]);
    // The first step's progress moves with its clock between frames.
    const percentOf = async () =>
      Number.parseFloat((await steps())[0]?.replace(/^.*active/, "") ?? "");
    const before = await percentOf();
    await page.waitForFunction(
      (at) => {
        const row = document.querySelector("[data-workflow-step]")?.textContent ?? "";
        return Number.parseFloat(row.replace(/^.*active/, "")) > at;
      },
      before,
      { timeout: 10_000 },
    );
    await post(`/v1/sessions/${workflowId}.0/fail`, { reason: "furnace <cold>" });
    await page.waitForFunction(() =>
      document.querySelector("[data-workflow-status]")?.textContent?.startsWith("failed"),
    );
    expect(await page.locator("[data-workflow-status]").textContent()).toBe(
      "failed: furnace <cold>",
    );
    expect((await steps())[0]).toMatch(/^▶ smeltingotfailed: furnace <cold>/);
    await page.close();
  }, 60_000);

  // Last: the demo's session the other tests watch must still be crafting when they run.
  it("shows the names a session and a workflow carry as text, never as markup (the operator's dead letters: above)", async () => {
    // Step names are free text a producer chose.
    const hostile = (where: string) => `<img src=x onerror="window.injected='${where}'">`;
    const service = { Authorization: `Bearer ${await serviceToken()}` };
    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${server.baseUrl}${path}`, {
        method: "POST",
        headers: { ...service, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(response.status, await response.clone().text()).toBeLessThan(300);
    };
    const sessionId = `s-hostile-${Date.now()}`;
    const workflowId = `w-hostile-${Date.now()}`;
    await post("/v1/sessions", {
      session_id: sessionId,
      player_id: links.player_id,
      recipe_id: "iron-sword",
      steps: [{ name: hostile("session step"), duration_ms: 600_000 }],
      materials: [{ material_id: "iron-ore", required: 2 }],
    });
    await post("/v1/workflows", {
      workflow_id: workflowId,
      player_id: links.player_id,
      steps: [
        {
          name: hostile("workflow step"),
          recipe_id: "iron-ingot",
          steps: [{ name: "melt", duration_ms: 600_000 }],
        },
      ],
    });

    const page = await browser.newPage();
    const url = new URL(links.player);
    url.searchParams.set("session", sessionId);
    url.searchParams.set("workflow", workflowId);
    const served = await page.goto(url.toString());
    // The second defense: the page runs only the service's own script files.
    expect(served?.headers()["content-security-policy"]).toContain("script-src 'self';");
    await page.waitForFunction(
      () => document.querySelector("#workflow-steps")?.textContent?.includes("<img"),
      null,
      { timeout: 20_000 },
    );
    await page.waitForFunction(() =>
      document.querySelector("#steps")?.textContent?.includes("<img"),
    );
    expect(await page.locator("#steps li").first().textContent()).toContain(
      hostile("session step"),
    );
    expect(await page.locator("#workflow-steps li").first().textContent()).toContain(
      hostile("workflow step"),
    );
    expect(await page.locator("#steps img, #workflow-steps img").count()).toBe(0);
    // No image failed to load and ran its handler.
    expect(
      await page.evaluate(() => (globalThis as { injected?: string }).injected),
    ).toBeUndefined();
    await page.close();
  }, 90_000);

  it("tells the player why a stream was refused, and stops asking; a stream that ended is no error", async () => {
    const page = await browser.newPage();
    // Opened bare, the page asks what to watch and says it watches nothing.
    await page.goto(`${server.baseUrl}/player.html`);
    expect(await page.locator("#setup").isVisible()).toBe(true);
    expect(await page.locator("#connection").textContent()).toBe("not watching");
    // And the operator's page, that it needs a token, where the health would go.
    await page.goto(`${server.baseUrl}/operator.html`);
    await page.locator("#token-panel").waitFor();
    expect(await page.locator("#health").textContent()).toBe("needs an operator token");
    const unknown = new URL(links.player);
    unknown.searchParams.set("session", "no-such-session");
    const badToken = new URL(links.player);
    badToken.hash = "token=not-a-token";
    for (const [url, code, text] of [
      [unknown, "4004", "no crafting session with this id"],
      [badToken, "4001", "the bearer token is malformed"],
    ] as const) {
      await page.goto(url.toString());
      await page.waitForFunction(() => document.body.dataset.connection === "closed", null, {
        timeout: 20_000,
      });
      expect(await page.locator("body").getAttribute("data-close-code")).toBe(code);
      expect(await page.locator("#connection").textContent()).toContain(text);
      // Final: three seconds later it has not tried again.
      await page.waitForTimeout(3_000);
      expect(await page.locator("body").getAttribute("data-connection")).toBe("closed");
    }
    await page.screenshot({ path: join(ARTIFACTS, "player-refused.png") });
    // A session that ends (here: cancelled while queued) ends its stream normally: said as such, not as an error.
    const sessionId = `s-ends-${Date.now()}`;
    const service = { Authorization: `Bearer ${await serviceToken()}` };
    const created = await fetch(`${server.baseUrl}/v1/sessions`, {
      method: "POST",
      headers: { ...service, "Content-Type": "application/json" },
      body: JSON.stringify({
        session_id: sessionId,
        player_id: links.player_id,
        recipe_id: "iron-sword",
        steps: [{ name: "forge", duration_ms: 600_000 }],
      }),
    });
    expect(created.status).toBe(201);
    const ending = new URL(links.player);
    ending.searchParams.set("session", sessionId);
    ending.searchParams.delete("workflow");
    await page.goto(ending.toString());
    await page.waitForFunction(() => document.body.dataset.connection === "open", null, {
      timeout: 20_000,
    });
    const cancelled = await fetch(`${server.baseUrl}/v1/sessions/${sessionId}/cancel`, {
      method: "POST",
      headers: service,
    });
    expect(cancelled.status).toBe(200);
    await page.waitForFunction(() => document.body.dataset.connection === "closed", null, {
      timeout: 20_000,
    });
    expect(await page.locator("#connection").textContent()).toBe("ended: session cancelled");
    expect(await page.locator("#connection").getAttribute("class")).toBe("status ended");
    await page.close();
  });
});
