/**
 * A refusal names fields as the client wrote them, also the rules checked
 * after parsing (against the session's state, the clock, each other): a
 * client that writes proto3 JSON names (`elapsedMs`) is never told about
 * `elapsed_ms`, on every path a correction or a material report takes.
 */
import { describe, expect, it } from "vitest";
import { serviceToken } from "../support/tokens";
import { call, RawSocket, serviceCall } from "./helpers";
import { activeSession } from "./stream-helpers";

/** The error message a call answered with. */
async function refusal(response: Response): Promise<string> {
  const { error } = (await response.json()) as { error: { message: string } };
  return error.message;
}

const FUTURE_MS = () => Date.now() + 10 * 60_000;

describe("refusals worded as sent", () => {
  it("POST /udp/sessions/{id}/progress: the session's own rules, in either spelling", async () => {
    const { sessionId } = await activeSession();
    const post = (body: object) => serviceCall(`/udp/sessions/${sessionId}/progress`, body);
    const cases: [object, RegExp][] = [
      [{ elapsedMs: 1e12 }, /^elapsedMs must be between 0 and \d+$/],
      [{ elapsed_ms: 1e12 }, /^elapsed_ms must be between 0 and \d+$/],
      [{ progressPercent: 101 }, /^progressPercent must be between 0 and 100$/],
      [{ currentStepIndex: 99 }, /^currentStepIndex must be between 0 and \d+$/],
      [{ currentStepIndex: 0, stepProgress: 101 }, /^stepProgress must be between 0 and 100$/],
      [
        { elapsedMs: 1, progressPercent: 2 },
        /^give at most one of elapsedMs, progressPercent or currentStepIndex$/,
      ],
      [{ stepProgress: 5 }, /^stepProgress needs currentStepIndex$/],
      [{ step_progress: 5 }, /^step_progress needs current_step_index$/],
      [{ asOfMs: FUTURE_MS(), elapsedMs: 1 }, /^asOfMs lies more than a minute in the future/],
      [{ rate: 0 }, /^rate must be greater than 0 and at most 100$/],
    ];
    for (const [body, message] of cases) {
      const response = await post(body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(await refusal(response), JSON.stringify(body)).toMatch(message);
    }
    // Nothing refused was applied: the session still takes a good one.
    expect((await post({ elapsedMs: 10 })).status).toBe(200);
  });

  it("POST /udp/sessions/{id}/progress takes a session_id that repeats the path's", async () => {
    const { sessionId } = await activeSession();
    const post = (body: object) => serviceCall(`/udp/sessions/${sessionId}/progress`, body);
    const percent = async () => {
      const view = await serviceCall(`/v1/sessions/${sessionId}`, undefined, "GET");
      return ((await view.json()) as { progress: { progressPercent: number } }).progress
        .progressPercent;
    };
    // One payload for either route: a /v1/progress update posted to its session's path.
    expect((await post({ session_id: sessionId, progress_percent: 10 })).status).toBe(200);
    expect(Math.floor(await percent())).toBe(10);
    expect((await post({ sessionId, progressPercent: 20 })).status).toBe(200);
    expect(Math.floor(await percent())).toBe(20);
    const other = await post({ sessionId: "s-other", progressPercent: 90 });
    expect(other.status).toBe(400);
    expect(await refusal(other)).toBe(
      `sessionId is s-other, another session than the path's ${sessionId}: post it to that session's path (or to /v1/progress)`,
    );
    expect(Math.floor(await percent())).toBe(20);
  });

  it("POST /v1/progress: a session's refusal and an update's, in the updates' spelling", async () => {
    const { sessionId } = await activeSession();
    const post = async (updates: object[]) =>
      (await (await serviceCall("/v1/progress", { updates })).json()) as {
        sessions?: { error?: { message: string } }[];
        error?: { message: string };
      };
    const camel = await post([{ sessionId, elapsedMs: 1e12 }]);
    expect(camel.sessions?.[0]?.error?.message).toMatch(
      /^update 1 of 1 for this session: elapsedMs must be between 0 and \d+; none of them/,
    );
    const snake = await post([{ session_id: sessionId, elapsed_ms: 1e12 }]);
    expect(snake.sessions?.[0]?.error?.message).toMatch(/: elapsed_ms must be between 0 and \d+;/);
    const pathless = await post([
      { sessionId, elapsedMs: 1 },
      { sessionId, stepProgress: 5 },
    ]);
    expect(pathless.error?.message).toBe("updates[1]: stepProgress needs currentStepIndex");
  });

  it("the ingest stream: a session's refusal and an update's, each in its own spelling", async () => {
    const { sessionId } = await activeSession();
    const response = await call("/v1/progress/stream", {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await serviceToken()}` },
    });
    expect(response.status).toBe(101);
    const socket = new RawSocket(response.webSocket as WebSocket);
    const messages = () =>
      socket.messages
        .flatMap((m) => JSON.parse(String(m)) as { ref: number; error?: { message: string } }[])
        .sort((a, b) => a.ref - b.ref)
        .map((answer) => answer.error?.message);
    socket.ws.send(JSON.stringify({ ref: 1, sessionId, currentStepIndex: 99 }));
    await socket.until(() => messages().length === 1, "the first answer");
    socket.ws.send(JSON.stringify({ ref: 2, session_id: sessionId, current_step_index: 99 }));
    await socket.until(() => messages().length === 2, "the second answer");
    socket.ws.send(JSON.stringify({ ref: 3, sessionId, stepProgress: 5 }));
    await socket.until(() => messages().length === 3, "the third answer");
    const [first, second, third] = messages();
    expect(first).toMatch(/^currentStepIndex must be between 0 and \d+$/);
    expect(second).toMatch(/^current_step_index must be between 0 and \d+$/);
    expect(third).toBe("stepProgress needs currentStepIndex");
    socket.ws.close(1000);
  });

  it("a material report, a session's or a player's: a repeated material and a reading from the future", async () => {
    const { sessionId, playerId } = await activeSession();
    const post = (body: object) => serviceCall(`/udp/sessions/${sessionId}/materials`, body);
    const twice = [
      { materialId: "iron_ore", quantity: 1 },
      { materialId: "iron_ore", quantity: 2 },
    ];
    expect(await refusal(await post({ changes: twice }))).toBe(
      "changes[1].materialId iron_ore appears twice",
    );
    const future = { changes: [{ materialId: "iron_ore", quantity: 1 }], asOfMs: FUTURE_MS() };
    expect(await refusal(await post(future))).toMatch(/^asOfMs lies more than a minute/);
    const snake = { changes: [{ material_id: "iron_ore", quantity: 1 }], as_of_ms: FUTURE_MS() };
    expect(await refusal(await post(snake))).toMatch(/^as_of_ms lies more than a minute/);
    // The player's report takes the same body, and is answered the same way.
    const player = (body: object) => serviceCall(`/v1/players/${playerId}/materials`, body);
    expect(await refusal(await player({ changes: twice }))).toBe(
      "changes[1].materialId iron_ore appears twice",
    );
    expect(await refusal(await player(future))).toMatch(/^asOfMs lies more than a minute/);
    expect(await refusal(await player(snake))).toMatch(/^as_of_ms lies more than a minute/);
    // A new session's requirements, and a workflow step's, the same way.
    const materials = [
      { materialId: "iron_ore", required: 1 },
      { materialId: "iron_ore", required: 2 },
    ];
    const steps = [{ name: "a", durationMs: 1000 }];
    const create = { playerId: "p", recipeId: "r", steps, materials };
    expect(await refusal(await serviceCall("/v1/sessions", create))).toBe(
      "materials[1].materialId iron_ore appears twice",
    );
    const workflow = { playerId: "p", steps: [{ name: "w", recipeId: "r", steps, materials }] };
    expect(await refusal(await serviceCall("/v1/workflows", workflow))).toBe(
      "steps[0].materials[1].materialId iron_ore appears twice",
    );
  });
});
