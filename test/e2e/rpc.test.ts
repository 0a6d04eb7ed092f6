/**
 * The streaming RPCs against a real `wrangler dev`, with third-party
 * clients: `buf curl` (Connect and gRPC-Web), connect-node, and the official
 * grpc-web client in chromium (its text mode).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { build } from "esbuild";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CraftingStreamingService } from "../../src/gen/crafting/v1/streaming_service_pb";
import { launchChromium } from "../support/chromium";
import type { Followed, follow as followInPage } from "../support/grpc-web-text-client";
import { servicePost, startedSession } from "../support/http";
import { freshId, token } from "../support/tokens";

const baseUrl = inject("baseUrl");
const service = (path: string, body?: unknown) => servicePost(baseUrl, path, body);
const BUF = join(process.cwd(), "node_modules", ".bin", "buf");
const METHOD = `${baseUrl}/crafting.v1.CraftingStreamingService/StreamCraftingProgress`;

/** A started session of a fresh player, with two short steps. */
const started = () =>
  startedSession(baseUrl, [
    { name: "smelt", duration_ms: 20_000 },
    { name: "forge", duration_ms: 20_000 },
  ]);

/** Drives a session through a correction to completion once `ready` resolves. */
async function drive(sessionId: string, ready: Promise<void>): Promise<void> {
  await ready;
  await service(`/udp/sessions/${sessionId}/progress`, { progress_percent: 60 });
  await service(`/v1/sessions/${sessionId}/complete`);
}

/** Runs `buf curl` and resolves with its exit code and output; `onOutput` sees stdout as it comes. */
function bufCurl(
  args: string[],
  onOutput: (stdout: string) => void = () => {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(BUF, ["curl", "--schema", "proto", ...args], { stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      onOutput(stdout);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The JSON messages `buf curl` printed (concatenated, pretty-printed documents). */
function documents(
  stdout: string,
): { seq: number; status?: string; update?: { progressPercent?: number } }[] {
  return stdout
    .split(/\n(?=\{)/)
    .filter((text) => text.trim().length > 0)
    .map((text) => JSON.parse(text));
}

describe("streaming RPCs over wrangler dev", () => {
  for (const protocol of ["connect", "grpcweb"]) {
    it(`buf curl --protocol ${protocol} receives a session's progress to completion`, async () => {
      const { sessionId, playerId } = await started();
      let firstMessage: () => void = () => {};
      const ready = new Promise<void>((resolve) => {
        firstMessage = resolve;
      });
      const driving = drive(sessionId, ready);
      const result = await bufCurl(
        [
          "--protocol",
          protocol,
          "-H",
          `Authorization: Bearer ${await token(playerId)}`,
          "-d",
          JSON.stringify({ session_id: sessionId }),
          METHOD,
        ],
        (stdout) => {
          if (stdout.includes("}\n")) firstMessage();
        },
      );
      await driving;
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const messages = documents(result.stdout);
      expect(messages.map((m) => m.seq)).toEqual([2, 3, 4]);
      expect(messages.at(-1)).toMatchObject({
        status: "SESSION_STATUS_COMPLETED",
        update: { progressPercent: 100 },
      });
    });

    it(`buf curl --protocol ${protocol} gets permission_denied for another player's session`, async () => {
      const { sessionId } = await started();
      const result = await bufCurl([
        "--protocol",
        protocol,
        "-H",
        `Authorization: Bearer ${await token(freshId("intruder"))}`,
        "-d",
        JSON.stringify({ session_id: sessionId }),
        METHOD,
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain("permission_denied");
    });
  }

  for (const [name, make] of [
    ["Connect", createConnectTransport],
    ["gRPC-Web", createGrpcWebTransport],
  ] as const) {
    it(`a connect-node client (${name}, binary) follows a session to completion`, async () => {
      const { sessionId, playerId } = await started();
      const client = createClient(
        CraftingStreamingService,
        make({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
      );
      let firstMessage: () => void = () => {};
      const driving = drive(
        sessionId,
        new Promise<void>((resolve) => {
          firstMessage = resolve;
        }),
      );
      const seqs: number[] = [];
      for await (const message of client.streamCraftingProgress(
        { sessionId },
        { headers: { Authorization: `Bearer ${await token(playerId)}` } },
      )) {
        seqs.push(message.seq);
        firstMessage();
      }
      await driving;
      expect(seqs).toEqual([2, 3, 4]);
    });
  }

  it("names a refused field as the client's encoding writes it: sessionId to JSON, session_id to binary", async () => {
    const { sessionId } = await started();
    const bearer = await token(freshId("intruder"));
    const refusal = async (
      useBinaryFormat: boolean,
      request: { sessionId: string; playerId?: string },
    ) => {
      const client = createClient(
        CraftingStreamingService,
        createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat }),
      );
      try {
        for await (const _ of client.streamCraftingProgress(request, {
          headers: { Authorization: `Bearer ${bearer}` },
        })) {
          // nothing arrives
        }
      } catch (err) {
        const error = ConnectError.from(err);
        return `${Code[error.code]}: ${error.rawMessage}`;
      }
      return "no refusal";
    };
    expect(await refusal(false, { sessionId: "" })).toMatch(/^InvalidArgument: sessionId must be/);
    expect(await refusal(true, { sessionId: "" })).toMatch(/^InvalidArgument: session_id must be/);
    const other = { sessionId, playerId: freshId("p") };
    expect(await refusal(false, other)).toBe(
      "PermissionDenied: playerId must be the token's player",
    );
    expect(await refusal(true, other)).toBe(
      "PermissionDenied: player_id must be the token's player",
    );
  });

  it("a connect-node client gets unauthenticated without a token", async () => {
    const client = createClient(
      CraftingStreamingService,
      createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    );
    let error: ConnectError | null = null;
    try {
      for await (const _ of client.streamCraftingProgress({ sessionId: freshId("s") })) {
        // nothing arrives
      }
    } catch (err) {
      error = ConnectError.from(err);
    }
    expect(error?.code).toBe(Code.Unauthenticated);
  });
});

describe("the official grpc-web client in chromium, text mode (application/grpc-web-text)", () => {
  let browser: Browser;
  let bundle = "";
  beforeAll(async () => {
    const built = await build({
      entryPoints: ["test/support/grpc-web-text-client.ts"],
      bundle: true,
      format: "iife",
      globalName: "grpcWebText",
      platform: "browser",
      write: false,
      logLevel: "error",
    });
    bundle = built.outputFiles[0]?.text ?? "";
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  /** A page of the service's origin running the client: `follow()` as the page calls it. */
  async function follow(sessionId: string, bearer: string, ready = async () => {}) {
    const page = await browser.newPage();
    try {
      await page.goto(`${baseUrl}/health`);
      await page.addScriptTag({ content: bundle });
      const call = page.evaluate(
        ({ baseUrl, bearer, sessionId }) => {
          const page = globalThis as unknown as {
            seen: Followed;
            grpcWebText: { follow: typeof followInPage };
          };
          page.seen = { messages: [], end: null };
          return page.grpcWebText.follow(baseUrl, bearer, sessionId, page.seen);
        },
        { baseUrl, bearer, sessionId },
      );
      await page.waitForFunction(
        () => {
          const seen = (globalThis as unknown as { seen?: Followed }).seen;
          return (seen?.messages.length ?? 0) > 0 || seen?.end;
        },
        null,
        { timeout: 15_000 },
      );
      await ready();
      return await call;
    } finally {
      await page.close();
    }
  }

  it("follows a session's progress to completion, each message as it comes, and ends OK", async () => {
    const { sessionId, playerId } = await started();
    const followed = await follow(sessionId, await token(playerId), () =>
      drive(sessionId, Promise.resolve()),
    );
    // The snapshot's progress is the clock's at that moment; the correction and the end are exact.
    expect(followed.messages.map(({ seq, status }) => [seq, status])).toEqual([
      [2, 2],
      [3, 2],
      [4, 4],
    ]);
    expect(followed.messages.slice(1).map((m) => m.percent)).toEqual([60, 100]);
    expect(followed.end).toEqual({ code: 0, message: "" });
  });

  it("is told permission_denied for another player's session, as a grpc-web status", async () => {
    const { sessionId } = await started();
    const followed = await follow(sessionId, await token(freshId("intruder")));
    expect(followed.messages).toEqual([]);
    expect(followed.end?.code).toBe(Code.PermissionDenied);
    expect(followed.end?.message).toMatch(/another player/);
  });
});
