/**
 * Every 401 carries a `WWW-Authenticate` challenge (RFC 9110 §11.6.1,
 * RFC 6750 §3): a Bearer token is what to present, and when one was
 * presented and failed, `error="invalid_token"` and why. A token of the
 * wrong scope is a 403 with `error="insufficient_scope"`.
 */
import { describe, expect, it } from "vitest";
import {
  expiredToken,
  freshId,
  serviceToken,
  token,
  unsignedToken,
  wrongKeyToken,
} from "../support/tokens";
import { type Ids, ROUTES } from "./body-routes";
import { call, createSession } from "./helpers";

const ids: Ids = {
  sessionId: freshId("s"),
  playerId: freshId("p"),
  workflowId: freshId("w"),
  endedId: freshId("s"),
};

/**
 * Every kind of route that needs a token: each one that reads a body (but
 * the public health batch), the reads, stream upgrades, the operator's.
 */
const REQUESTS: [method: string, path: string, headers?: Record<string, string>][] = [
  ...ROUTES.map((route) => [route.method, route.path(ids)] as [string, string]).filter(
    ([, path]) => path !== "/health/batch",
  ),
  ["GET", `/v1/sessions/${ids.sessionId}`],
  ["GET", `/v1/workflows/${ids.workflowId}`],
  ["GET", `/ws/crafting/${ids.sessionId}`, { Upgrade: "websocket" }],
  ["GET", `/ws/queue/${ids.playerId}`, { Upgrade: "websocket" }],
  ["GET", "/metrics"],
];

async function refusal(response: Response) {
  const body = (await response.json()) as { error?: { code: string; message: string } };
  return {
    status: response.status,
    code: body.error?.code,
    message: body.error?.message,
    challenge: response.headers.get("WWW-Authenticate"),
  };
}

function send(method: string, path: string, bearer: string | null, headers = {}) {
  return call(path, {
    method,
    headers: {
      ...headers,
      ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}),
      ...(method === "GET" ? {} : { "Content-Type": "application/json" }),
    },
    ...(method === "GET" ? {} : { body: "{}" }),
  });
}

describe("401 challenges", () => {
  it("every route asked without a token answers 401 with a Bearer challenge and no error", async () => {
    for (const [method, path, headers] of REQUESTS) {
      expect(await refusal(await send(method, path, null, headers)), `${method} ${path}`).toEqual({
        status: 401,
        code: "unauthenticated",
        message: "a bearer token is required",
        challenge: 'Bearer realm="crafting"',
      });
    }
  });

  it("every route given a token without its scheme (or under another) says how to send it", async () => {
    const bare = await token("p");
    for (const authorization of [bare, `Basic ${btoa("u:p")}`, `Token ${bare}`, "Bearer"]) {
      for (const [method, path, headers] of REQUESTS) {
        const answer = await refusal(
          await send(method, path, null, { ...headers, Authorization: authorization }),
        );
        expect(answer, `${method} ${path} ${authorization.slice(0, 8)}`).toEqual({
          status: 401,
          code: "unauthenticated",
          message: "the Authorization header must be Bearer <token>",
          challenge: 'Bearer realm="crafting"',
        });
      }
    }
  });

  const badTokens: [string, () => Promise<string> | string, string][] = [
    ["a malformed token", () => "not-a-jwt", "the bearer token is malformed"],
    ["an alg:none token", () => unsignedToken("p"), expect.stringContaining("algorithm")],
    [
      "a token signed with another key",
      () => wrongKeyToken("p"),
      "the bearer token's signature is invalid",
    ],
    ["an expired token", () => expiredToken("p"), "the bearer token has expired"],
    // Said as what it is, not later as "another player's session" on every stream it tries.
    [
      "a player token for a player no id can name",
      () => token("player one"),
      "the bearer token names no player id (one must be 1-64 characters of letters, digits, '_', '-', '.' or ':')",
    ],
  ];
  for (const [what, make, message] of badTokens) {
    it(`every route given ${what} says invalid_token, and why, in the challenge`, async () => {
      const bearer = await make();
      for (const [method, path, headers] of REQUESTS) {
        const answer = await refusal(await send(method, path, bearer, headers));
        expect(answer, `${method} ${path}`).toEqual({
          status: 401,
          code: "unauthenticated",
          message,
          challenge: `Bearer realm="crafting", error="invalid_token", error_description="${answer.message}"`,
        });
      }
    });
  }
});

describe("403 for a token of the wrong scope", () => {
  it("says insufficient_scope, with the scope the route needs", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    await createSession(sessionId, playerId);
    const cases: [string, string, string][] = [
      [
        await token(playerId),
        `/udp/sessions/${sessionId}/progress`,
        "this route needs a crafting-service token",
      ],
      [
        await token("ops", "operator"),
        `/v1/sessions/${sessionId}/start`,
        "an operator token may watch and read, not change anything",
      ],
    ];
    for (const [bearer, path, message] of cases) {
      expect(await refusal(await send("POST", path, bearer))).toEqual({
        status: 403,
        code: "permission_denied",
        message,
        challenge: `Bearer realm="crafting", error="insufficient_scope", error_description="${message}"`,
      });
    }
    // A valid token of the right scope is not challenged.
    const ok = await send("GET", `/v1/sessions/${sessionId}`, await serviceToken());
    expect(ok.status).toBe(200);
    expect(ok.headers.get("WWW-Authenticate")).toBeNull();
  });
});
