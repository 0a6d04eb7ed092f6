/** How the router answers a request no route takes: 404, or 405 with the methods a path takes. */
import { describe, expect, it } from "vitest";
import { freshId, token } from "../support/tokens";
import { call, createSession, errorOf, serviceCall } from "./helpers";

describe("routes not taken", () => {
  it("answers unknown actions and routes with 404", async () => {
    expect((await serviceCall(`/v1/sessions/${freshId("s")}/explode`)).status).toBe(404);
    expect(await errorOf(await call("/nowhere"))).toMatchObject({ status: 404, code: "not_found" });
  });

  it("answers a route's wrong method with 405 and the methods it takes", async () => {
    const sessionId = freshId("s");
    expect((await createSession(sessionId, freshId("p"))).status).toBe(201);
    const cases = [
      // [path, method sent, Allow]
      [`/v1/sessions/${sessionId}`, "DELETE", "GET, HEAD"],
      [`/v1/sessions/${sessionId}/start`, "GET", "POST"],
      [`/udp/sessions/${sessionId}/progress`, "PUT", "POST"],
      ["/v1/sessions", "GET", "POST"],
    ] as const;
    for (const [path, method, allow] of cases) {
      const response = await serviceCall(path, undefined, method);
      expect(response.headers.get("Allow"), `${method} ${path}`).toBe(allow);
      expect(await errorOf(response)).toMatchObject({
        status: 405,
        code: "method_not_allowed",
        message: `${method} is not allowed here: use ${allow.replace(", ", " or ")}`,
      });
    }
    // Nothing changed: the session was not started by the GET.
    const view = await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET");
    expect(await view.json()).toMatchObject({ status: "SESSION_STATUS_QUEUED" });
    // A path no route takes is still 404, whatever the method; so is a
    // trailing or doubled slash, or a route word in capitals, whose 404 names the path meant.
    for (const [path, method, message] of [
      ["/v1/nowhere", "DELETE", "no such route"],
      [
        `/v1/sessions/${sessionId}/`,
        "GET",
        `no such route: did you mean /v1/sessions/${sessionId}?`,
      ],
      ["/v1/sessions/", "POST", "no such route: did you mean /v1/sessions?"],
      [
        `//v1/sessions/${sessionId}/start/`,
        "GET",
        `no such route: did you mean /v1/sessions/${sessionId}/start?`,
      ],
      // The routes' own words in another case; the id as it was sent.
      [
        `/V1/Sessions/${sessionId.toUpperCase()}`,
        "GET",
        `no such route: did you mean /v1/sessions/${sessionId.toUpperCase()}?`,
      ],
    ] as const) {
      const response = await serviceCall(path, undefined, method);
      expect(response.headers.get("Allow"), `${method} ${path}`).toBeNull();
      expect(await errorOf(response)).toEqual({ status: 404, code: "not_found", message });
    }
  });

  it("answers 404 and 405 before any route group judges the caller's token or upgrade", async () => {
    const bearers = {
      none: null,
      service: await token("crafting-service", "service"),
      player: await token(freshId("p"), "player"),
      operator: await token("you", "operator"),
    };
    // Under every group whose routes check a role (or an upgrade) first.
    const cases = [
      ["/ws/crafting", "GET", 404],
      ["/ws/craft/s-1", "GET", 404],
      ["/ws/crafting/s-1/extra", "GET", 404],
      [`/v1/players/${freshId("p")}/nothing`, "GET", 404],
      ["/v1/events/nothing", "GET", 404],
      ["/metrics/nothing", "GET", 404],
      ["/v1/workflows/w-1/nothing", "GET", 405],
      ["/v1/sessions/s-1/start", "GET", 405],
      ["/metrics", "POST", 405],
      // No page calls these: an OPTIONS is told the methods, not judged for a token.
      ["/v1/sessions", "OPTIONS", 405],
      ["/metrics", "OPTIONS", 405],
    ] as const;
    for (const [path, method, status] of cases)
      for (const [who, bearer] of Object.entries(bearers)) {
        // (An upgrade is always a GET to the runtime: only the streams' paths ask for one.)
        const headers: Record<string, string> = path.startsWith("/ws/")
          ? { Upgrade: "websocket" }
          : {};
        if (bearer) headers.Authorization = `Bearer ${bearer}`;
        const response = await call(path, { method, headers });
        expect(response.status, `${method} ${path} as ${who}`).toBe(status);
        await response.body?.cancel();
      }
  });
});
