/**
 * CORS for a game page's calls (src/middleware/cors.ts): the sync channel's
 * negotiation and the streaming RPCs answer the origins ALLOWED_ORIGINS
 * lists, errors included; other origins are refused readably (403);
 * crafting-service's API gets no CORS.
 */
import { env, exports } from "cloudflare:workers";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { describe, expect, it } from "vitest";
import { CraftingStreamingService } from "../../src/gen/crafting/v1/streaming_service_pb";
import { freshId, serviceToken, token } from "../support/tokens";
import { call } from "./helpers";
import { activeSession } from "./stream-helpers";

const PAGE = env.ALLOWED_ORIGINS.split(",")[0]?.trim() ?? "";
const FOREIGN = "https://elsewhere.example";

const preflight = (path: string, origin: string) =>
  call(path, {
    method: "OPTIONS",
    headers: {
      Origin: origin,
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "authorization, content-type",
    },
  });

const negotiate = (sessionId: string, origin: string, bearer?: string) =>
  call(`/udp/sessions/${sessionId}/connect`, {
    method: "POST",
    headers: {
      Origin: origin,
      "Content-Type": "application/json",
      ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}),
    },
    body: "{}",
  });

const RPC_PATH = `/${CraftingStreamingService.typeName}/StreamCraftingProgress`;

describe("a game page on an allowed origin", () => {
  it("passes the preflight of the sync channel's negotiation and of the streaming RPCs", async () => {
    for (const path of ["/udp/sessions/s-1/connect", RPC_PATH]) {
      const answer = await preflight(path, PAGE);
      expect(answer.status, path).toBe(204);
      expect(answer.headers.get("Access-Control-Allow-Origin"), path).toBe(PAGE);
      expect(answer.headers.get("Access-Control-Allow-Methods"), path).toBe("POST");
      const allowed = answer.headers.get("Access-Control-Allow-Headers")?.toLowerCase() ?? "";
      for (const header of [
        "authorization",
        "content-type",
        "connect-protocol-version",
        "x-grpc-web",
      ])
        expect(allowed.split(","), path).toContain(header);
      expect(answer.headers.get("Access-Control-Max-Age"), path).toBe("600");
      expect(answer.headers.get("Vary"), path).toContain("Origin");
    }
  });

  it("reads the negotiation's answer, and its refusals (401, 403, 404) with their reasons", async () => {
    const { sessionId, bearer } = await activeSession();
    const cases: [string, string | undefined, number][] = [
      [sessionId, bearer, 200],
      [sessionId, undefined, 401],
      [sessionId, await token(freshId("p")), 403],
      [freshId("s"), bearer, 404],
    ];
    for (const [id, credential, status] of cases) {
      const answer = await negotiate(id, PAGE, credential);
      expect(answer.status).toBe(status);
      expect(answer.headers.get("Access-Control-Allow-Origin"), String(status)).toBe(PAGE);
      expect(answer.headers.get("Vary"), String(status)).toContain("Origin");
      const exposed = answer.headers.get("Access-Control-Expose-Headers")?.toLowerCase() ?? "";
      expect(exposed.split(","), String(status)).toEqual(
        expect.arrayContaining(["retry-after", "www-authenticate", "grpc-status"]),
      );
    }
  });

  it("streams a session over Connect, the answer readable by the page", async () => {
    const { sessionId, bearer } = await activeSession();
    const seen: Headers[] = [];
    const transport = createConnectTransport({
      baseUrl: "https://crafting.test",
      // As a page's fetch sends it: with its Origin.
      fetch: async (input, init) => {
        const request = new Request(input as RequestInfo, { ...init, redirect: "manual" });
        request.headers.set("Origin", PAGE);
        const response = await exports.default.fetch(request);
        seen.push(response.headers);
        return response;
      },
    });
    const stream = createClient(CraftingStreamingService, transport).streamCraftingProgress(
      { sessionId },
      { headers: { Authorization: `Bearer ${bearer}` } },
    );
    for await (const update of stream) {
      expect(update.update?.sessionId).toBe(sessionId);
      break;
    }
    expect(seen[0]?.get("Access-Control-Allow-Origin")).toBe(PAGE);
  });
});

describe("a page on an origin that is not allowed", () => {
  it("passes the preflight, and is refused with a reason it can read, before anything is done", async () => {
    const { sessionId, bearer } = await activeSession();
    for (const path of [`/udp/sessions/${sessionId}/connect`, RPC_PATH]) {
      const answer = await preflight(path, FOREIGN);
      expect(answer.status, path).toBe(204);
      expect(answer.headers.get("Access-Control-Allow-Origin"), path).toBe(FOREIGN);
    }
    // With a good token: the origin decides, and no sync token is issued.
    const refused = await negotiate(sessionId, FOREIGN, bearer);
    expect(refused.status).toBe(403);
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBe(FOREIGN);
    expect(await refused.json()).toEqual({
      error: {
        code: "permission_denied",
        message: `origin ${FOREIGN} may not open streams here`,
      },
    });
  });

  it("gets permission_denied from the streaming RPC", async () => {
    const { sessionId, bearer } = await activeSession();
    const transport = createConnectTransport({
      baseUrl: "https://crafting.test",
      fetch: async (input, init) => {
        // Without the call's signal: connect-web aborts it on the refusal, which
        // workerd reports as an uncaught rejection of the request in flight.
        const request = new Request(input as RequestInfo, {
          ...init,
          signal: null,
          redirect: "manual",
        });
        request.headers.set("Origin", FOREIGN);
        return exports.default.fetch(request);
      },
    });
    const stream = createClient(CraftingStreamingService, transport).streamCraftingProgress(
      { sessionId },
      { headers: { Authorization: `Bearer ${bearer}` } },
    );
    let failure: ConnectError | null = null;
    try {
      for await (const _ of stream) {
        // Nothing comes.
      }
    } catch (error) {
      failure = ConnectError.from(error);
    }
    expect(failure?.code).toBe(Code.PermissionDenied);
    expect(failure?.rawMessage).toMatch(/HTTP 403/);
  });
});

describe("no CORS where it is not meant", () => {
  it("keeps crafting-service's API server to server, even for an allowed origin", async () => {
    for (const path of ["/v1/sessions", "/udp/sessions/s-1/progress", "/v1/events"]) {
      const answer = await preflight(path, PAGE);
      expect(answer.headers.get("Access-Control-Allow-Origin"), path).toBeNull();
    }
    const created = await call("/v1/sessions", {
      method: "POST",
      headers: { Origin: PAGE, Authorization: `Bearer ${await serviceToken()}` },
      body: "{}",
    });
    expect(created.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});
