/**
 * One rule for every JSON body (src/http/valid.ts): a field is taken under
 * its snake_case name or its proto3 JSON name, the snake_case one winning;
 * a refusal names a field as the client wrote it.
 */
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { fields, parse } from "../../src/http/valid";

const body = fields(
  {
    player_id: v.string("must be a string"),
    steps: v.array(fields({ duration_ms: v.number("must be a number") }, "must be an object")),
  },
  "the body must be a JSON object",
);

const refusal = (input: unknown) => {
  try {
    parse(body, input);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
};

describe("fields", () => {
  it("takes a body under either name, nested objects too, the snake_case one winning", () => {
    const snake = { player_id: "p-1", steps: [{ duration_ms: 5 }] };
    expect(parse(body, snake)).toEqual(snake);
    expect(parse(body, { playerId: "p-1", steps: [{ durationMs: 5 }] })).toEqual(snake);
    expect(parse(body, { playerId: "p-2", player_id: "p-1", steps: [] })).toEqual({
      player_id: "p-1",
      steps: [],
    });
  });

  it("names a field as it was sent, and refuses what is not an object", () => {
    expect(refusal({ player_id: "p", steps: [], playerName: "x" })).toBe(
      "playerName is not a field here (the fields are player_id, steps)",
    );
    expect(refusal({ player_id: "p", steps: [], player_name_x: "x" })).toBe(
      "player_name_x is not a field here (the fields are player_id, steps)",
    );
    expect(refusal({ playerId: "p", steps: [{ durationMs: "5" }] })).toBe(
      "steps[0].durationMs must be a number",
    );
    expect(refusal({ playerId: 7, steps: [] })).toBe("playerId must be a string");
    expect(refusal({ player_id: 7, steps: [] })).toBe("player_id must be a string");
    // Both sent: the snake_case one is taken, and named.
    expect(refusal({ playerId: "p", player_id: 7, steps: [] })).toBe("player_id must be a string");
    expect(refusal({ player_id: "p", steps: [{ duration: 5 }] })).toBe(
      "steps[0].duration is not a field here (the fields are duration_ms)",
    );
    expect(refusal([])).toBe("the body must be a JSON object");
    // A key that is data, not the prototype.
    expect(refusal(JSON.parse('{"player_id":"p","steps":[],"__proto__":{}}'))).toBe(
      "__proto__ is not a field here (the fields are player_id, steps)",
    );
  });
});
