/**
 * `npm run watch` against a real `wrangler dev`, as docs/development.md and
 * docs/queue-and-workflows.md tell a user to run it: every frame a stream
 * sends is one readable line (a material notice too), and a workflow or a
 * player's queue is watched as a session is. The README's session walkthrough
 * is walkthrough.test.ts's.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { DevServer } from "../support/dev-server";
import { servicePost } from "../support/http";
import { runScript, type ScriptRun } from "../support/run-script";
import { TEST_JWT_SECRET } from "../support/secret";
import { freshId } from "../support/tokens";

let baseUrl = inject("baseUrl");
/** Every watch a test started: stopped after it, whatever it asserted. */
const started: ScriptRun[] = [];
afterEach(() => {
  for (const run of started.splice(0)) run.stop();
});

async function posted(path: string, body?: unknown): Promise<void> {
  const response = await servicePost(baseUrl, path, body);
  expect(response.status, `${path}: ${await response.clone().text()}`).toBeLessThan(300);
}

/** `scripts/watch.mjs` with these arguments, once it has printed its first frame. */
async function watching(...args: string[]): Promise<ScriptRun> {
  const run = runScript("scripts/watch.mjs", { JWT_SECRET: TEST_JWT_SECRET }, [
    ...args,
    "--url",
    baseUrl,
  ]);
  started.push(run);
  await printed(run, /^seq=\d+ /m);
  return run;
}

/** Waits until `run` has printed a line matching `pattern`. */
async function printed(run: ScriptRun, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!pattern.test(run.output)) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${run.output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The lines after `watching …`, without their seq (which depends on what the object did before). */
const framesOf = (run: ScriptRun) =>
  run.output
    .trimEnd()
    .split("\n")
    .slice(1)
    .map((line) => line.replace(/^seq=\d+ /, ""));

/** A fresh player's new session of one 20 s step named `step`: its ids. */
async function created(step: string, more: Record<string, unknown> = {}) {
  const sessionId = freshId("s");
  const playerId = freshId("p");
  await posted("/v1/sessions", {
    session_id: sessionId,
    player_id: playerId,
    recipe_id: "iron-sword",
    steps: [{ name: step, duration_ms: 20_000 }],
    ...more,
  });
  return { sessionId, playerId };
}

describe("npm run watch", () => {
  it("prints a session's material notice as a line of its own, and what the session lacks", async () => {
    const { sessionId, playerId } = await created("smelt", {
      materials: [
        { material_id: "iron-ore", required: 3, available: 1 },
        { material_id: "coal", required: 2 },
      ],
    });
    const watch = await watching(sessionId, "--player", playerId);
    await posted(`/udp/sessions/${sessionId}/materials`, {
      changes: [{ material_id: "iron-ore", quantity: 3 }],
    });
    await printed(watch, /material: /);
    await posted(`/v1/sessions/${sessionId}/start`);
    await posted(`/v1/sessions/${sessionId}/complete`);
    expect(await watch.exited).toBe(0);
    expect(framesOf(watch)).toEqual([
      "snapshot: SESSION_STATUS_QUEUED 0.0% step=smelt missing iron-ore 1/3",
      "material: iron-ore 3; all available",
      "update: SESSION_STATUS_ACTIVE 0.0% step=smelt start",
      "update: SESSION_STATUS_COMPLETED 100.0% step=smelt complete",
      "closed 1000 session completed",
    ]);
  });

  it("prints a name's control characters as escapes, so a name cannot drive the terminal", async () => {
    const { sessionId, playerId } = await created("smelt\u001b[2J\u0007\u009b");
    const watch = await watching(sessionId, "--player", playerId);
    expect(framesOf(watch)).toEqual([
      "snapshot: SESSION_STATUS_QUEUED 0.0% step=smelt\\u001b[2J\\u0007\\u009b",
    ]);
  });

  it("watches a workflow step by step, and stops when it completes", async () => {
    const workflowId = freshId("w");
    const playerId = freshId("p");
    const step = (name: string, recipe_id: string, duration_ms: number) => ({
      name,
      recipe_id,
      steps: [{ name, duration_ms }],
    });
    await posted("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: [step("smelt", "iron-ingot", 20_000), step("forge", "iron-sword", 30_000)],
    });
    const watch = await watching("--workflow", workflowId, "--player", playerId);
    await posted(`/v1/sessions/${workflowId}.0/complete`);
    await printed(watch, /step 2\/2 forge/);
    await posted(`/v1/sessions/${workflowId}.1/complete`);
    expect(await watch.exited).toBe(0);
    const lines = framesOf(watch);
    expect(lines[0]).toMatch(/^snapshot: WORKFLOW_STATUS_ACTIVE \d+\.\d% step 1\/2 smelt$/);
    expect(lines).toContain("workflow: WORKFLOW_STATUS_ACTIVE 40.0% step 2/2 forge");
    expect(lines.slice(-2)).toEqual([
      "workflow: WORKFLOW_STATUS_COMPLETED 100.0% step 2/2 forge",
      "closed 1000 workflow completed",
    ]);
  });

  it("watches a player's queue: each request's status, position and wait, and those that ended", async () => {
    const playerId = freshId("p");
    const [first, second] = [freshId("s"), freshId("s")];
    const create = (sessionId: string, recipe_id: string) =>
      posted("/v1/sessions", {
        session_id: sessionId,
        player_id: playerId,
        recipe_id,
        steps: [{ name: "brew", duration_ms: 20_000 }],
      });
    await create(first, "potion");
    const watch = await watching("--queue", "--player", playerId);
    await create(second, "elixir");
    await printed(watch, /elixir/);
    await posted(`/v1/sessions/${first}/start`);
    await printed(watch, /processing/);
    await posted(`/v1/sessions/${first}/cancel`, { reason: "the player changed their mind" });
    await printed(watch, /ended/);
    // A wait is rounded to the second, and the second request's counts down from 20 s.
    expect(framesOf(watch).map((line) => line.replace(/wait 19s/g, "wait 20s"))).toEqual([
      `snapshot: 1 slot: ${first} queued potion #1 wait 0s`,
      `queue: 1 slot: ${first} queued potion #1 wait 0s; ${second} queued elixir #2 wait 20s`,
      `queue: 1 slot: ${first} processing potion; ${second} queued elixir #1 wait 20s`,
      `queue: 1 slot: ${second} queued elixir #1 wait 0s; ended ${first} cancelled (the player changed their mind)`,
    ]);
  });

  it("watches as an operator, without knowing the player, and stops when the session ends", async () => {
    const { sessionId } = await created("smelt");
    const watch = await watching(sessionId, "--operator");
    await posted(`/v1/sessions/${sessionId}/cancel`);
    expect(await watch.exited).toBe(0);
    expect(framesOf(watch)).toEqual([
      "snapshot: SESSION_STATUS_QUEUED 0.0% step=smelt",
      "update: SESSION_STATUS_CANCELLED 0.0% step=smelt cancel",
      "closed 1000 session cancelled",
    ]);
  });

  it("says why a session failed, on the change and on a later snapshot", async () => {
    const { sessionId } = await created("smelt");
    const watch = await watching(sessionId, "--operator");
    await posted(`/v1/sessions/${sessionId}/fail`, { reason: "out of coal" });
    expect(await watch.exited).toBe(0);
    expect(framesOf(watch)).toEqual([
      "snapshot: SESSION_STATUS_QUEUED 0.0% step=smelt",
      "update: SESSION_STATUS_FAILED 0.0% step=smelt fail reason: out of coal",
      "closed 1000 session failed",
    ]);
    const late = runScript("scripts/watch.mjs", { JWT_SECRET: TEST_JWT_SECRET }, [
      sessionId,
      "--operator",
      "--url",
      baseUrl,
    ]);
    started.push(late);
    await late.exited;
    expect(framesOf(late)[0]).toBe(
      "snapshot: SESSION_STATUS_FAILED 0.0% step=smelt reason: out of coal",
    );
  });

  it("says why a workflow failed", async () => {
    const workflowId = freshId("w");
    const playerId = freshId("p");
    await posted("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: [{ name: "fire", recipe_id: "brick", steps: [{ name: "bake", duration_ms: 60_000 }] }],
    });
    const watch = await watching("--workflow", workflowId, "--operator");
    await posted(`/v1/workflows/${workflowId}/fail`, { reason: "kiln cracked" });
    expect(await watch.exited).toBe(0);
    const [failed, closed] = framesOf(watch).slice(-2);
    // The step ran for as long as the call took: its progress is the clock's.
    expect(failed).toMatch(
      /^workflow: WORKFLOW_STATUS_FAILED [\d.]+% step 1\/1 fire reason: kiln cracked$/,
    );
    expect(closed).toBe("closed 1000 workflow failed");
  });

  it("says why the service refused the stream, in a line, and stops", async () => {
    const { sessionId } = await created("smelt");
    for (const [args, said] of [
      [[freshId("s"), "--player", "p"], "HTTP 404 not_found: no crafting session with this id"],
      [
        [sessionId, "--player", freshId("p")],
        "HTTP 403 permission_denied: this crafting session belongs to another player",
      ],
    ] as const) {
      const run = runScript("scripts/watch.mjs", { JWT_SECRET: TEST_JWT_SECRET }, [
        ...args,
        "--url",
        baseUrl,
      ]);
      expect(await run.exited).toBe(1);
      expect(run.output).toBe(`refused: ${said}\n`);
    }
  });

  it("refuses to watch two things at once, or nothing, with its usage", async () => {
    for (const args of [
      ["s-1", "--workflow", "w-1", "--player", "p"],
      ["--queue"],
      ["--queue", "--operator"],
      ["s-1"],
      ["--workflow", "", "--player", "p"],
    ]) {
      const run = runScript("scripts/watch.mjs", {}, args);
      expect(await run.exited).toBe(2);
      expect(run.output).toMatch(/\nusage: npm run watch -- \(<session_id> \| --workflow/);
    }
  });

  it("keeps its stream alive while nothing happens, and resumes it across a restart, missing nothing", async () => {
    // Its own service, to restart; the other tests' is shared.
    const shared = baseUrl;
    const server = new DevServer();
    try {
      await server.start();
      baseUrl = server.baseUrl;
      const { sessionId, playerId } = await created("smelt");
      const watch = await watching(sessionId, "--player", playerId);
      // Past the 30 s after which a silent stream is closed as dead (4008):
      // the README's walkthrough leaves it that long while a user types.
      await new Promise((resolve) => setTimeout(resolve, 32_000));
      await posted(`/v1/sessions/${sessionId}/start`);
      await printed(watch, /start$/m);
      await server.stop("SIGKILL");
      await printed(watch, /reconnecting$/m);
      await server.start();
      await posted(`/udp/sessions/${sessionId}/progress`, { progress_percent: 50 });
      await posted(`/v1/sessions/${sessionId}/complete`);
      expect(await watch.exited).toBe(0);
      const lines = framesOf(watch);
      // Reconnected and resumed (from seq 2) before or after the progress: every change once.
      expect(lines.filter((line) => !/^resumed: /.test(line))).toEqual([
        "snapshot: SESSION_STATUS_QUEUED 0.0% step=smelt",
        "update: SESSION_STATUS_ACTIVE 0.0% step=smelt start",
        "closed 1006; reconnecting",
        "update: SESSION_STATUS_ACTIVE 50.0% step=smelt progress",
        "update: SESSION_STATUS_COMPLETED 100.0% step=smelt complete",
        "closed 1000 session completed",
      ]);
      expect(lines.filter((line) => /^resumed: /.test(line))).toHaveLength(1);
    } finally {
      baseUrl = shared;
      await server.dispose();
    }
  }, 180_000);
});
