/**
 * Any JSON value, at the top level and in every field, against every route
 * that reads a JSON body: each gets a 4xx with the one error shape — never
 * a 5xx — and a refused body changes nothing.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type Ids,
  ROUTES,
  type Route,
  type RouteContext,
  routeContext,
  routeLabel,
  sendBody,
  sessionSeq,
} from "./body-routes";
import { call, serviceCall } from "./helpers";

/** Hostile JSON: any value, deep nesting, huge and negative numbers, strings for numbers. */
const hostileValue = fc.oneof(
  fc.jsonValue({ depthSize: "medium" }),
  fc.constantFrom(null, [], {}, "", "12", "NaN", -1, 0, 1e308, -1e308, 2 ** 53, 0.5, true),
  // Deep nesting: arrays and objects hundreds of levels down.
  fc.integer({ min: 1, max: 400 }).map((depth) => {
    let value: unknown = [];
    for (let level = 0; level < depth; level++) value = level % 2 ? [value] : { a: value };
    return value;
  }),
);

/** A body: a hostile value at the top level, or a plausible object with hostile fields. */
function hostileBody(route: Route) {
  return fc.oneof(
    hostileValue,
    fc.dictionary(fc.constantFrom(...route.fields), hostileValue, { minKeys: 1 }),
  );
}

let context: RouteContext;
let ids: Ids;

beforeAll(async () => {
  context = await routeContext();
  ids = context.ids;
});

describe("hostile JSON bodies", () => {
  for (const route of ROUTES) {
    it(`${routeLabel(route)} answers any JSON with a 4xx or a success, never a 5xx`, async () => {
      await fc.assert(
        fc.asyncProperty(hostileBody(route), async (body) => {
          const before = await sessionSeq(context);
          const response = await sendBody(context, route, JSON.stringify(body));
          const text = await response.text();
          expect(response.status, text).toBeLessThan(500);
          if (response.status >= 400) {
            const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } })
              .error;
            expect(typeof error?.code, text).toBe("string");
            expect(typeof error?.message, text).toBe("string");
            // A refusal changes nothing.
            expect(await sessionSeq(context)).toBe(before);
          }
        }),
        // The top-level shapes every route must refuse are always tried, then random ones.
        { numRuns: 40, examples: [[null], [[]], ["text"], [42], [true], [{}]] },
      );
    });
  }

  it("answers a body that is not JSON, or not UTF-8, or of the wrong type, with a 4xx", async () => {
    const bodies: [BodyInit, string][] = [
      ["{oops", "application/json"],
      [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "application/json"],
      ["null", "text/html"],
      ["", "application/json"],
    ];
    for (const route of ROUTES) {
      for (const [body, type] of bodies) {
        const response = await sendBody(context, route, body, { "Content-Type": type });
        expect(response.status, `${route.path(ids)} ${type}`).toBeLessThan(500);
      }
    }
  });

  it("reads an optional field sent as null as one left out, under either name", async () => {
    // proto3 JSON writes an unset field as null; so do many serializers.
    const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    const answer = async (route: Route, body: object) => {
      const response = await sendBody(context, route, JSON.stringify(body));
      const text = await response.text();
      const error = response.ok ? null : (JSON.parse(text) as { error: unknown }).error;
      return { status: response.status, error };
    };
    for (const route of ROUTES) {
      const absent = await answer(route, {});
      for (const field of route.optional ?? []) {
        for (const name of new Set([field, camel(field)])) {
          const label = `${routeLabel(route)} ${name}: null`;
          const said = await answer(route, { [name]: null });
          expect(said.status, label).toBeLessThan(500);
          // Answered as if it were not there: to a camelCase body in camelCase.
          const names = [...route.fields, ...(route.optional ?? [])];
          const snake = JSON.stringify(said).replace(
            /\b[a-z]+(?:[A-Z][a-z0-9]*)+\b/g,
            (word) => names.find((n) => camel(n) === word) ?? word,
          );
          expect(JSON.parse(snake), label).toEqual(absent);
          // Beside a body the route takes, it is taken too.
          const valid = route.valid?.();
          if (valid && !(field in valid)) {
            expect((await answer(route, { ...valid, [name]: null })).status, label).toBe(
              (await answer(route, valid)).status,
            );
          }
        }
      }
    }
  });

  it("answers a body of a type the route does not take with 415, naming every type it takes", async () => {
    for (const route of ROUTES) {
      const before = await sessionSeq(context);
      const response = await sendBody(context, route, "<p>hi</p>", { "Content-Type": "text/html" });
      expect(response.status, routeLabel(route)).toBe(415);
      expect(await response.json(), routeLabel(route)).toEqual({
        error: {
          code: "unsupported_media_type",
          message: `send the body as ${route.media ?? "application/json"}`,
        },
      });
      expect(await sessionSeq(context)).toBe(before);
    }
  });

  it("refuses a field the route does not take, naming it and the fields there are, with every other fault", async () => {
    // Bridged events are the exception: records carry their producers' own fields.
    for (const route of ROUTES.filter((r) => r.path(ids) !== "/v1/events")) {
      const before = await sessionSeq(context);
      // An object is wrong for every field: it is said in the same answer.
      const field = route.fields[0] ?? "x";
      const body = JSON.stringify({ bogus_field: 1, [field]: {}, other_bogus: 2 });
      const response = await sendBody(context, route, body);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect(response.status, route.path(ids)).toBe(400);
      const rule = "is not a field here \\(the fields are [a-z0-9_, ]+\\)";
      expect(error.message, route.path(ids)).toMatch(
        new RegExp(`^bogus_field ${rule}; other_bogus ${rule}; ${field} `),
      );
      expect(await sessionSeq(context)).toBe(before);
    }
    // Inside a list too, and a misspelt optional field is named rather than dropped.
    for (const [path, body, message] of [
      [
        "/v1/sessions",
        {
          sessionid: "s-typo",
          player_id: "p",
          recipe_id: "r",
          steps: [{ name: "a", duration_ms: 1 }],
        },
        "sessionid is not a field here (the fields are session_id, player_id, recipe_id, steps, workflow_id, materials, region)",
      ],
      [
        "/v1/sessions",
        { player_id: "p", recipe_id: "r", steps: [{ name: "a", duration_ms: 1, duration: 1 }] },
        "steps[0].duration is not a field here (the fields are name, duration_ms)",
      ],
      [
        "/v1/progress",
        { updates: [{ session_id: ids.sessionId, elapsed: 5 }] },
        "updates[0]: elapsed is not a field here (the fields are session_id, elapsed_ms, progress_percent, current_step_index, step_progress, rate, as_of_ms)",
      ],
      [
        "/v1/workflows",
        { player_id: "p", steps: [{ name: "a", recipe_id: "r", steps: [], recipe: "x" }] },
        "steps[0].recipe is not a field here (the fields are name, recipe_id, steps, materials); steps[0].steps must be an array of 1-64 steps",
      ],
    ] as const) {
      const response = await serviceCall(path, body);
      expect(await response.json(), path).toEqual({ error: { code: "invalid_argument", message } });
    }
    expect((await serviceCall("/v1/sessions/s-typo", undefined, "GET")).status).toBe(404);
  });

  it("refuses a query parameter a call's route does not take, on every route, and changes nothing", async () => {
    // A reason sent in the query instead of the body would otherwise vanish.
    // Probes (/health) are the exception: a monitor may add its own.
    for (const route of ROUTES.filter((r) => !r.path(ids).startsWith("/health"))) {
      const before = await sessionSeq(context);
      const path = (i: typeof ids) => `${route.path(i)}?reason=oops&x=1`;
      const response = await sendBody(context, { ...route, path }, "{}");
      const { error } = (await response.json()) as { error: { message: string } };
      expect(response.status, routeLabel(route)).toBe(400);
      expect(error.message, routeLabel(route)).toMatch(
        /^reason is not a query parameter here \([^;]+\); x is not a query parameter here /,
      );
      expect(await sessionSeq(context)).toBe(before);
    }
    for (const path of [
      `/v1/sessions/${ids.sessionId}`,
      `/v1/players/${ids.playerId}/queue`,
      `/v1/workflows/${ids.workflowId}`,
      "/v1/events/dead-letters",
    ]) {
      const response = await serviceCall(`${path}?fields=steps`, undefined, "GET");
      expect(response.status, path).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
        /^fields is not a query parameter here \(/,
      );
    }
    expect((await call("/health?monitor=1")).status).toBe(200);
    // A stream upgrade ignores what proxies and client libraries add (docs/streams.md).
    const upgrade = await call(`/ws/crafting/${ids.sessionId}?client=web&v=3`, {
      headers: { Authorization: `Bearer ${context.player}`, Upgrade: "websocket" },
    });
    expect(upgrade.status).toBe(101);
    upgrade.webSocket?.accept();
    upgrade.webSocket?.close(1000);
  });

  it("names two fields at fault together on every route that reads fields, never one per request", async () => {
    for (const route of ROUTES.filter((r) => r.fields.length >= 2)) {
      const [first, second] = route.fields as [string, string];
      // An object where each field takes a string, a number or a list: both are wrong.
      const response = await sendBody(
        context,
        route,
        JSON.stringify({ [first]: {}, [second]: {} }),
      );
      const answer = (await response.json()) as {
        error?: { message: string };
        rejected?: { error: { message: string } }[];
      };
      // A bridged event is refused in its own entry of `rejected`.
      const message = answer.rejected?.[0]?.error.message ?? answer.error?.message;
      expect(message, routeLabel(route)).toMatch(new RegExp(`^${first} .*; ${second} `));
    }
  });

  it("names every field at fault in one answer, in a batch with each update's index, and applies nothing", async () => {
    const ID_RULE = "must be 1-64 characters of letters, digits, '_', '-', '.' or ':'";
    const before = await sessionSeq(context);
    for (const [path, body, message] of [
      [
        "/v1/sessions",
        { player_id: "", recipe_id: 5, steps: [] },
        `player_id ${ID_RULE}; recipe_id ${ID_RULE}; steps must be an array of 1-64 steps`,
      ],
      [
        "/v1/sessions",
        { playerId: "p", steps: [{ name: "a", durationMs: 0 }, { durationMs: "x" }] },
        `recipeId ${ID_RULE}; steps[0].durationMs must be a positive whole number of milliseconds; steps[1].name must be a string of 1-64 characters; steps[1].durationMs must be a positive whole number of milliseconds`,
      ],
      [
        "/v1/progress",
        {
          updates: [
            { session_id: "", progress_percent: "abc" },
            { session_id: ids.sessionId, progress_percent: 10 },
            { sessionId: ids.sessionId, elapsedMs: "x" },
          ],
        },
        `updates[0]: session_id ${ID_RULE}; updates[0]: progress_percent must be a number; updates[2]: elapsedMs must be a number`,
      ],
      [
        // A workflow: its own fields and each step's, as a session's create names them.
        "/v1/workflows",
        {
          workflow_id: "w".repeat(61),
          player_id: "",
          steps: [
            { name: "", recipe_id: "r", steps: [{ name: "a", duration_ms: 7 * 86_400_000 + 1 }] },
            {
              name: "b",
              recipe_id: "r",
              steps: [{ name: "c", duration_ms: 1 }],
              materials: [
                { material_id: "ore", required: 1 },
                { material_id: "ore", required: 2 },
              ],
            },
          ],
        },
        `workflow_id must be at most 60 characters; player_id ${ID_RULE}; steps[0].name must be a string of 1-64 characters; steps[0].steps must not add up to more than 604800000 ms (7 days); steps[1].materials[1].material_id ore appears twice`,
      ],
      [
        // A repeated material beside an item's own fault, a report's and a create's.
        `/udp/sessions/${ids.sessionId}/materials`,
        {
          changes: [
            { material_id: "ore", quantity: -1 },
            { material_id: "ore", quantity: 2 },
          ],
        },
        "changes[0].quantity must be a whole number from 0 to 4294967295; changes[1].material_id ore appears twice",
      ],
      [
        "/v1/sessions",
        {
          playerId: "p",
          recipeId: "r",
          steps: [{ name: "a", durationMs: 1 }],
          materials: [{ materialId: "ore", required: "x" }, 7, { materialId: "ore", required: 1 }],
        },
        "materials[0].required must be a whole number from 0 to 4294967295; materials[1] must be a JSON object; materials[2].materialId ore appears twice",
      ],
      [
        `/udp/sessions/${ids.sessionId}/progress`,
        {
          elapsed_ms: "x",
          progress_percent: "y",
          current_step_index: "v",
          step_progress: "q",
          rate: "z",
          as_of_ms: "w",
        },
        // Five said, and the rest counted.
        /^(\w+ must be [^;]+; ){4}\w+ must be [^;]+; and 1 more$/,
      ],
      [
        // Out of range whatever the session, said with the field that is not a number.
        `/udp/sessions/${ids.sessionId}/progress`,
        { current_step_index: -1, step_progress: 150, rate: "fast" },
        "current_step_index must be a whole number, 0 or more (the step's index); step_progress must be between 0 and 100; rate must be a number",
      ],
      [
        // A reading from the future, said with the rest, on a correction and a material report.
        `/udp/sessions/${ids.sessionId}/progress`,
        { as_of_ms: Date.now() + 3_600_000, rate: 0 },
        "rate must be greater than 0 and at most 100; as_of_ms lies more than a minute in the future; check the sender's clock",
      ],
      [
        `/udp/sessions/${ids.sessionId}/materials`,
        { changes: [{ materialId: "", quantity: 1 }], asOfMs: String(Date.now() + 3_600_000) },
        `changes[0].materialId ${ID_RULE}; asOfMs lies more than a minute in the future; check the sender's clock`,
      ],
      [
        "/v1/progress",
        {
          updates: [
            { session_id: ids.sessionId, progress_percent: 10 },
            { sessionId: ids.sessionId, rate: 0 },
            { session_id: ids.sessionId, elapsed_ms: -5, as_of_ms: "now" },
          ],
        },
        "updates[1]: rate must be greater than 0 and at most 100; updates[2]: elapsed_ms must not be negative; updates[2]: as_of_ms must be a time in milliseconds since the Unix epoch",
      ],
    ] as const) {
      const response = await serviceCall(path, body);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect([response.status, error.code], path).toEqual([400, "invalid_argument"]);
      if (typeof message === "string") expect(error.message, path).toBe(message);
      else expect(error.message, path).toMatch(message);
    }
    // A batch sent as a bare array is told the body's shape.
    const bare = await serviceCall("/v1/progress", [{ session_id: ids.sessionId, rate: 2 }]);
    expect(await bare.json()).toEqual({
      error: {
        code: "invalid_argument",
        message: 'the body must be a JSON object: {"updates": [{"session_id": …, …}, …]}',
      },
    });
    // The batch's good update was not applied: a refused body changes nothing.
    expect(await sessionSeq(context)).toBe(before);
    // A bridged event's faults, all in its own entry of `rejected`: the two of its
    // left-out payload (recipe_id, steps) counted past the five said.
    const response = await serviceCall("/v1/events", [
      { event_type: "crafting.session.start" },
      // The payload's faults too, when the envelope is refused but its type can be read.
      {
        event_id: crypto.randomUUID(),
        event_type: "crafting.session.progress",
        occurred_at: new Date().toISOString(),
        session_id: ids.sessionId,
        player_id: ids.playerId,
        version: 0,
        payload: { progress_percent: 150 },
      },
    ]);
    const { rejected } = (await response.json()) as { rejected: { error: { message: string } }[] };
    expect(rejected[0]?.error.message).toMatch(
      /^event_id must be a UUID; occurred_at must be an RFC 3339 timestamp; session_id .*; player_id .*; version must be a positive whole number; and 2 more$/,
    );
    expect(rejected[1]?.error.message).toBe(
      "version must be a positive whole number; payload needs elapsed_seconds (≥ 0) or progress_percent (0-100)",
    );
  });

  it("takes every field under its proto3 JSON name too, and names it as it was sent", async () => {
    const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    for (const route of ROUTES) {
      for (const field of route.fields.filter((f) => f.includes("_"))) {
        const response = await sendBody(context, route, JSON.stringify({ [camel(field)]: {} }));
        const { error } = (await response.json()) as { error: { message: string } };
        expect(response.status, `${routeLabel(route)} ${camel(field)}`).toBe(400);
        // Taken (its rule refuses the value, or another field's does), never "not a field".
        expect(error.message, routeLabel(route)).not.toMatch(/is not a field here/);
        // Nor is any field named in snake_case to a camelCase body, a field left out included.
        for (const other of route.fields.filter((f) => f.includes("_"))) {
          expect(error.message, routeLabel(route)).not.toMatch(new RegExp(`\\b${other}\\b`));
        }
      }
    }
    for (const [path, body, message] of [
      [
        "/v1/sessions",
        { playerId: 7, recipeId: "r", steps: [{ name: "a", durationMs: 1 }] },
        "playerId must be 1-64 characters of letters, digits, '_', '-', '.' or ':'",
      ],
      [
        "/v1/sessions",
        { playerId: "p", recipeId: "r", steps: [{ name: "a", durationMs: -1 }] },
        "steps[0].durationMs must be a positive whole number of milliseconds",
      ],
      // Left out: named as the body writes the others.
      [
        "/v1/sessions",
        { playerId: "p", steps: [{ name: "a", durationMs: 1 }] },
        "recipeId must be 1-64 characters of letters, digits, '_', '-', '.' or ':'",
      ],
      [
        "/v1/sessions",
        { playerId: "p", recipeId: "r", steps: [{ name: "a", durationMs: 1 }, { name: "b" }] },
        "steps[1].durationMs must be a positive whole number of milliseconds",
      ],
      [
        "/v1/workflows",
        { playerId: 7, steps: [] },
        "playerId must be 1-64 characters of letters, digits, '_', '-', '.' or ':'; steps must be an array of 1-32 workflow steps",
      ],
      [
        "/v1/workflows",
        {
          playerId: "p",
          steps: [{ name: "a", recipeId: 7, steps: [{ name: "b", durationMs: 1 }] }],
        },
        "steps[0].recipeId must be 1-64 characters of letters, digits, '_', '-', '.' or ':'",
      ],
      [
        "/v1/workflows",
        {
          playerId: "p",
          steps: [
            { name: "a", recipeId: "r", steps: [{ name: "b", durationMs: 1 }] },
            { name: "c", recipeId: "r", steps: [{ name: "d", durationMs: 1 }, { name: "e" }] },
          ],
        },
        "steps[1].steps[1].durationMs must be a positive whole number of milliseconds",
      ],
      [
        "/v1/workflows",
        { playerId: "p", steps: [{ name: "a", recipeId: "r", steps: [], recipeName: "x" }] },
        "steps[0].recipeName is not a field here (the fields are name, recipeId, steps, materials); steps[0].steps must be an array of 1-64 steps",
      ],
      [
        "/v1/progress",
        { updates: [{ sessionId: ids.sessionId, elapsedMs: "x" }] },
        "updates[0]: elapsedMs must be a number",
      ],
    ] as const) {
      const response = await serviceCall(path, body);
      expect(await response.json(), path).toEqual({ error: { code: "invalid_argument", message } });
    }
    const connect = (body: unknown) =>
      sendBody(context, ROUTES.find((r) => r.as === "player") as Route, JSON.stringify(body));
    const clamped = (await (await connect({ packetSize: 10, fullSyncIntervalMs: 10 })).json()) as {
      packet_size: number;
      clamped: string[];
    };
    expect(clamped.packet_size).toBe(64);
    expect(clamped.clamped).toEqual(["packet_size", "full_sync_interval_ms"]);
    // Out of range either way is clamped, however far.
    const huge = (await (await connect({ packetSize: 1e300 })).json()) as typeof clamped;
    expect([huge.packet_size, huge.clamped]).toEqual([65_536, ["packet_size"]]);
    expect(await (await connect({ packetSize: "big" })).json()).toEqual({
      error: { code: "invalid_argument", message: "packetSize must be a positive whole number" },
    });
  });

  it("answers a body nested 20,000 deep, beside a refused field, with a 4xx on every route", async () => {
    // A refusal is worded by reading how the body was written: that walk must not recurse.
    const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
    for (const route of ROUTES) {
      for (const body of [`{"bogus_field":${deep}}`, `{"elapsedMs":1e15,"bogus_field":${deep}}`]) {
        const response = await sendBody(context, route, body);
        const text = await response.text();
        expect(
          response.status,
          `${routeLabel(route)}: ${text.slice(0, 200)}`,
        ).toBeGreaterThanOrEqual(400);
        expect(response.status, `${routeLabel(route)}: ${text.slice(0, 200)}`).toBeLessThan(500);
      }
    }
    const batch = `{"updates":[{"session_id":"${ids.sessionId}","elapsed_ms":1e15,"x":${deep}}]}`;
    const response = await sendBody(
      context,
      ROUTES.find((r) => r.path(ids) === "/v1/progress") as Route,
      batch,
    );
    expect(response.status).toBe(400);
  });

  it("answers hostile paths (encoded slashes, NUL, very long ids) with a 4xx", async () => {
    const ids = ["%2F..%2Fhealth", "a%00b", "a".repeat(5_000), "%F0%28%8C%28", "..", "%20"];
    for (const id of ids) {
      for (const [method, path] of [
        ["GET", `/v1/sessions/${id}`],
        ["POST", `/v1/sessions/${id}/start`],
        ["POST", `/udp/sessions/${id}/progress`],
        ["PUT", `/v1/players/${id}/slots`],
        ["GET", `/ws/crafting/${id}`],
      ] as const) {
        const response = await call(path, {
          method,
          headers: {
            Authorization: `Bearer ${path.startsWith("/ws/") ? context.player : context.service}`,
            "Content-Type": "application/json",
            ...(path.startsWith("/ws/") ? { Upgrade: "websocket" } : {}),
          },
          ...(method === "GET" ? {} : { body: "{}" }),
        });
        expect(response.status, `${method} ${path.slice(0, 80)}`).toBeGreaterThanOrEqual(400);
        expect(response.status, `${method} ${path.slice(0, 80)}`).toBeLessThan(500);
      }
    }
  });

  it("leaves the session working after all of it", async () => {
    const response = await serviceCall(`/udp/sessions/${ids.sessionId}/progress`, {
      progress_percent: 10,
    });
    expect(response.status).toBe(200);
  });
});
