/** How the router answers a request no route takes: 404, or 405 with the methods a path takes. */
import { describe, expect, it } from "vitest";
import { freshId } from "../support/tokens";
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
    // trailing or doubled slash, whose 404 names the path meant.
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
    ] as const) {
      const response = await serviceCall(path, undefined, method);
      expect(response.headers.get("Allow"), `${method} ${path}`).toBeNull();
      expect(await errorOf(response)).toEqual({ status: 404, code: "not_found", message });
    }
  });
});
