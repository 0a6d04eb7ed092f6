/**
 * A game page on its own origin, in a real browser (Debian's chromium): it
 * bundles the SDK, as a game does, and calls the service on another origin.
 * The calls a player's token makes over HTTP (the sync channel's
 * negotiation, the streaming RPCs) must be readable there when the page's
 * origin is allowed; when it is not, the page is told so (4003, 403), as
 * its streams are, instead of retrying a network failure forever.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../support/chromium";
import { DevServer, freePort } from "../support/dev-server";
import { servicePost, startedSession } from "../support/http";
import { token } from "../support/tokens";

/** What the page functions below touch in the browser (this file is not compiled with the DOM library). */
declare const document: { body: { dataset: Record<string, string | undefined> } };

const PAGE = `<!doctype html><title>game</title><script type="module">
import { CraftingClient } from "/sdk.js";
window.CraftingClient = CraftingClient;
document.body.dataset.ready = "yes";
</script><body></body>`;

/** A page that imports both SDK bundles straight from the service at `serviceUrl` (`/imports?from=`). */
function importingPage(serviceUrl: string): string {
  return `<!doctype html><title>game</title><script type="module">
import { CraftingClient } from "${serviceUrl}/js/sdk.js";
import { LiteClient } from "${serviceUrl}/js/sdk-lite.js";
document.body.dataset.imported = typeof CraftingClient + " " + typeof LiteClient;
</script><body></body>`;
}

/** Serves the game's page and its bundled SDK (the build's public/js/sdk.js). */
function gameServer(port: number): Promise<Server> {
  const sdk = readFileSync("public/js/sdk.js");
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://game");
    if (url.pathname === "/sdk.js") {
      response.writeHead(200, { "Content-Type": "text/javascript" }).end(sdk);
    } else if (url.pathname === "/imports") {
      const page = importingPage(url.searchParams.get("from") ?? "");
      response.writeHead(200, { "Content-Type": "text/html" }).end(page);
    } else {
      response.writeHead(200, { "Content-Type": "text/html" }).end(PAGE);
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

/** What a page read: the sync channel's first state and the RPC's first message, or the error. */
interface Outcome {
  synced: string;
  rpc: string;
}

describe("a game page on another origin", () => {
  let pagePort = 0;
  let game: Server;
  let browser: Browser;
  let server: DevServer;

  beforeAll(async () => {
    pagePort = await freePort();
    game = await gameServer(pagePort);
    // The page's origin is allowed by its address, not by "localhost": the same page there is foreign.
    server = new DevServer({ vars: { ALLOWED_ORIGINS: `http://127.0.0.1:${pagePort}` } });
    await server.start();
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
    game?.close();
  });

  /** Opens the page at `origin`, then syncs `sessionId` and asks the progress RPC for it. */
  async function fromPage(origin: string, sessionId: string, playerToken: string) {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => document.body.dataset.ready === "yes");
    const outcome = await page.evaluate(
      async ({ baseUrl, playerToken, sessionId }): Promise<Outcome> => {
        const { CraftingClient } = globalThis as unknown as {
          CraftingClient: new (
            options: object,
          ) => {
            syncSession(id: string): {
              on(event: string, fn: (...args: unknown[]) => void): () => void;
              state: { anchorElapsedMs: number } | null;
              close(): void;
            };
          };
        };
        const client = new CraftingClient({ baseUrl, token: () => playerToken });
        const view = client.syncSession(sessionId);
        const synced = await new Promise<string>((resolve) => {
          const timer = setTimeout(() => resolve("no state in 10 s"), 10_000);
          view.on("change", () => {
            clearTimeout(timer);
            resolve(`state at ${view.state?.anchorElapsedMs} ms`);
          });
          view.on("state", (detail) => {
            const { state, code, reason } = detail as {
              state: string;
              code?: number;
              reason?: string;
            };
            if (state !== "closed") return;
            clearTimeout(timer);
            resolve(`closed ${code}: ${reason}`);
          });
        });
        view.close();
        // A Connect server-streaming call, as connect-web makes it: one enveloped JSON request.
        const body = new TextEncoder().encode(JSON.stringify({ session_id: sessionId }));
        const envelope = new Uint8Array(5 + body.length);
        new DataView(envelope.buffer).setUint32(1, body.length);
        envelope.set(body, 5);
        const controller = new AbortController();
        let rpc: string;
        try {
          const response = await fetch(
            `${baseUrl}/crafting.v1.CraftingStreamingService/StreamCraftingProgress`,
            {
              method: "POST",
              headers: {
                Authorization: `Bearer ${playerToken}`,
                "Content-Type": "application/connect+json",
                "Connect-Protocol-Version": "1",
              },
              body: envelope,
              signal: controller.signal,
            },
          );
          if (!response.ok) {
            const refusal = (await response.json()) as { error: { code: string } };
            throw new Error(`${response.status} ${refusal.error.code}`);
          }
          const reader = response.body?.getReader();
          const first = await reader?.read();
          const bytes = first?.value ?? new Uint8Array(5);
          const message = JSON.parse(new TextDecoder().decode(bytes.subarray(5))) as {
            snapshot?: boolean;
          };
          rpc = `${response.status} snapshot ${message.snapshot}`;
        } catch (error) {
          rpc = `failed: ${(error as Error).message}`;
        }
        controller.abort();
        return { synced, rpc };
      },
      { baseUrl: server.baseUrl, playerToken, sessionId },
    );
    await page.close();
    return outcome;
  }

  /** A started session with progress reported, and its player's token. */
  async function sessionWithProgress() {
    const { sessionId, playerId } = await startedSession(server.baseUrl);
    await servicePost(server.baseUrl, `/udp/sessions/${sessionId}/progress`, {
      elapsed_ms: 1_500,
    });
    return { sessionId, playerToken: await token(playerId) };
  }

  it("syncs a session and streams it over Connect from an allowed origin", async () => {
    const { sessionId, playerToken } = await sessionWithProgress();
    const outcome = await fromPage(`http://127.0.0.1:${pagePort}`, sessionId, playerToken);
    expect(outcome).toEqual({ synced: "state at 1500 ms", rpc: "200 snapshot true" });
  }, 60_000);

  it("imports the SDK bundles straight from the service as ES modules, from any origin", async () => {
    // A module script is fetched in CORS mode: without the bundles' CORS header it never runs.
    for (const origin of [`http://127.0.0.1:${pagePort}`, `http://localhost:${pagePort}`]) {
      const page = await browser.newPage();
      await page.goto(`${origin}/imports?from=${encodeURIComponent(server.baseUrl)}`);
      const imported = await page
        .waitForFunction(() => document.body.dataset.imported, undefined, { timeout: 10_000 })
        .then((handle) => handle.jsonValue())
        .catch(() => "not imported in 10 s");
      expect(imported, origin).toBe("function function");
      await page.close();
    }
  }, 60_000);

  it("is told, not left retrying, on an origin that is not allowed", async () => {
    const { sessionId, playerToken } = await sessionWithProgress();
    const foreign = `http://localhost:${pagePort}`;
    const outcome = await fromPage(foreign, sessionId, playerToken);
    expect(outcome).toEqual({
      synced: `closed 4003: origin ${foreign} may not open streams here`,
      rpc: "failed: 403 permission_denied",
    });
  }, 60_000);
});
