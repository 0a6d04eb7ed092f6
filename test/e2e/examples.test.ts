/**
 * The SDK's short clients against the real service: the web page
 * (public/examples/progress.html) in Chromium and the Node client
 * (docs/examples/node-client.mjs, bundled as an application would bundle
 * it) each follow a session to its end.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { describe, expect, inject, it } from "vitest";
import { launchChromium } from "../support/chromium";
import { servicePost, startedSession } from "../support/http";
import { runScript as runExample } from "../support/run-script";
import { serviceToken, token } from "../support/tokens";

/** What the page function below touches in the browser (this file is not compiled with the DOM library). */
declare const document: { querySelector(selector: string): { value?: number } | null };

const baseUrl = inject("baseUrl");
const service = (path: string, body?: unknown) => servicePost(baseUrl, path, body);

/** Runs an example script against the service. */
const runScript = (file: string, env: Record<string, string>) =>
  runExample(file, { BASE_URL: baseUrl, ...env });

/** A started session, and its player's token. */
async function watchable(): Promise<{ sessionId: string; bearer: string }> {
  const { sessionId, playerId } = await startedSession(baseUrl, [
    { name: "forge", duration_ms: 600_000 },
  ]);
  return { sessionId, bearer: await token(playerId) };
}

describe("a game client in twenty lines", () => {
  /** The example as its header says to run it (`node node-client.mjs`), or bundled as an application would bundle it. */
  const ways = {
    "as written": async () => "docs/examples/node-client.mjs",
    bundled: async (dir: string) => {
      const outfile = join(dir, "node-client.mjs");
      await build({
        entryPoints: ["docs/examples/node-client.mjs"],
        outfile,
        bundle: true,
        platform: "node",
        format: "esm",
        logLevel: "error",
      });
      return outfile;
    },
  };

  it.each(Object.entries(ways))(
    "in Node, %s: follows a session's progress to its completion, then exits",
    async (_, script) => {
      const dir = mkdtempSync(join(tmpdir(), "crafting-example-"));
      try {
        const { sessionId, bearer } = await watchable();
        const run = runScript(await script(dir), { TOKEN: bearer, SESSION: sessionId });
        const { exited } = run;
        const until = async (text: string) => {
          const deadline = Date.now() + 15_000;
          while (!run.output.includes(text)) {
            if (Date.now() > deadline) throw new Error(`no "${text}" in:\n${run.output}`);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        };
        await until("SESSION_STATUS_ACTIVE");
        expect(
          (await service(`/udp/sessions/${sessionId}/progress`, { progress_percent: 50 })).status,
        ).toBe(200);
        await until("ACTIVE 50.");
        expect((await service(`/v1/sessions/${sessionId}/complete`)).status).toBe(200);
        await until("SESSION_STATUS_COMPLETED");
        // It exits once it has closed, not when the server lets the
        // connection go (a close the server started held it ~10 s).
        const completed = Date.now();
        expect(await exited).toBe(0);
        expect(Date.now() - completed).toBeLessThan(5_000);
        // The view closed itself on the final frame, with the server's reason.
        expect(run.output).toContain("closed 1000 session completed");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it("crafting-service in Node: sends a hundred corrections on the ingest stream, each answered", async () => {
    const { sessionId } = await startedSession(baseUrl);
    const run = runScript("docs/examples/ingest-client.mjs", {
      TOKEN: await serviceToken(),
      SESSION: sessionId,
      COUNT: "100",
    });
    const code = await run.exited;
    const { output } = run;
    expect({ code, output }).toMatchObject({ code: 0 });
    const seq = Number(/session at seq (\d+)/.exec(output)?.[1]);
    expect(output).toContain("100 applied, 0 refused");
    const state = (await (
      await fetch(`${baseUrl}/v1/sessions/${sessionId}`, {
        headers: { Authorization: `Bearer ${await serviceToken()}` },
      })
    ).json()) as { seq: number; clock: { anchorElapsedMs: number | string } };
    expect(state.seq).toBe(seq);
    // The last correction placed it at 100 % of its one hour.
    expect(String(state.clock.anchorElapsedMs)).toBe("3600000");
  }, 30_000);

  it("crafting-service in Node: says why its stream was refused or could not connect, and exits 1", async () => {
    const { sessionId, bearer } = await watchable();
    // A player's token where a service token belongs: refused with 4003 and its reason.
    const refused = runScript("docs/examples/ingest-client.mjs", {
      TOKEN: bearer,
      SESSION: sessionId,
    });
    expect(await refused.exited).toBe(1);
    expect(refused.output).toMatch(/closed 4003 .*service/);
    // Nothing listening there.
    const nowhere = runScript("docs/examples/ingest-client.mjs", {
      BASE_URL: "http://127.0.0.1:9",
      TOKEN: bearer,
      SESSION: sessionId,
    });
    expect(await nowhere.exited).toBe(1);
    expect(nowhere.output).toContain(
      "the connection to ws://127.0.0.1:9/v1/progress/stream failed",
    );
  }, 30_000);

  it("crafting-service in Node: says why each correction of an ended session was refused, and claims no seq", async () => {
    const { sessionId } = await startedSession(baseUrl);
    expect((await service(`/v1/sessions/${sessionId}/complete`)).status).toBe(200);
    const run = runScript("docs/examples/ingest-client.mjs", {
      TOKEN: await serviceToken(),
      SESSION: sessionId,
      COUNT: "3",
    });
    expect(await run.exited).toBe(1);
    expect(run.output).toContain("update 3: failed_precondition: cannot correct progress");
    expect(run.output).toContain("0 applied, 3 refused\n");
    expect(run.output).not.toContain("session at seq");
  }, 30_000);

  it.each([
    ["docs/examples/node-client.mjs", {}],
    ["docs/examples/node-client.mjs", { TOKEN: "t" }],
    ["docs/examples/ingest-client.mjs", { TOKEN: "t" }],
    ["docs/examples/ingest-client.mjs", { BASE_URL: "", TOKEN: "t", SESSION: "s" }],
  ])("%s run without what it needs (%j): says its usage in one line, exit 2", async (file, env) => {
    const run = runScript(file, { BASE_URL: "", TOKEN: "", SESSION: "", ...env });
    expect(await run.exited).toBe(2);
    expect(run.output).toMatch(/^usage: BASE_URL=\S+ TOKEN=<\w+ token> SESSION=<id> .*\n$/);
  });

  it("crafting-service in Node: a COUNT that is not a number of updates is said, exit 2", async () => {
    const run = runScript("docs/examples/ingest-client.mjs", {
      TOKEN: "t",
      SESSION: "s",
      COUNT: "abc",
    });
    expect(await run.exited).toBe(2);
    expect(run.output).toBe('COUNT must be a whole number of updates, at least 1 (got "abc")\n');
  });

  it("in a web page opened without what it needs, or refused: says why where the status goes", async () => {
    const browser = await launchChromium();
    try {
      const { sessionId, bearer } = await watchable();
      const page = await browser.newPage();
      const says = async (query: string, text: string) => {
        await page.goto(`${baseUrl}/examples/progress.html${query}`);
        await page.locator("#status", { hasText: text }).waitFor({ timeout: 10_000 });
      };
      await says(
        `#token=${bearer}`,
        'sessionId must be a non-empty string, such as "s-1001" (got null)',
      );
      await says(`?session=${sessionId}`, "the token provider returned null, not a token");
      await says(`?session=no-such-session#token=${bearer}`, "no crafting session with this id");
    } finally {
      await browser.close();
    }
  }, 60_000);

  it("in a web page: shows the status and a moving bar until the session completes", async () => {
    const browser = await launchChromium();
    try {
      const { sessionId, bearer } = await watchable();
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      page.on("console", (message) => {
        // Anything the page's Content-Security-Policy blocked (public/_headers).
        if (message.text().includes("Content Security Policy")) errors.push(message.text());
      });
      const opened = await page.goto(
        `${baseUrl}/examples/progress.html?session=${sessionId}#token=${bearer}`,
      );
      expect(opened?.headers()["content-security-policy"]).toContain("script-src 'self' 'sha256-");
      await page.locator("#status", { hasText: "SESSION_STATUS_ACTIVE" }).waitFor();
      expect(
        (await service(`/udp/sessions/${sessionId}/progress`, { progress_percent: 40 })).status,
      ).toBe(200);
      await page.waitForFunction(() => (document.querySelector("#bar")?.value ?? 0) >= 40);
      expect((await service(`/v1/sessions/${sessionId}/complete`)).status).toBe(200);
      await page.locator("#status", { hasText: "SESSION_STATUS_COMPLETED" }).waitFor();
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
