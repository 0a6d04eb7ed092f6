/**
 * One rule for every JSON body (src/http/valid.ts): a field is taken under
 * its snake_case name or its proto3 JSON name, the snake_case one winning;
 * a refusal names a field as the client wrote it.
 */
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { fields, parse, saidFor } from "../../src/http/valid";

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
    // The fields there are, named as a client that writes proto3 JSON names writes them.
    expect(refusal({ player_id: "p", steps: [], playerName: "x" })).toBe(
      "playerName is not a field here (the fields are playerId, steps)",
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
    // A misspelt field is said first, then the field it meant, now missing.
    expect(refusal({ player_id: "p", steps: [{ duration: 5 }] })).toBe(
      "steps[0].duration is not a field here (the fields are duration_ms); " +
        "steps[0].duration_ms must be a number",
    );
    expect(refusal([])).toBe("the body must be a JSON object");
    // A key that is data, not the prototype.
    expect(refusal(JSON.parse('{"player_id":"p","steps":[],"__proto__":{}}'))).toBe(
      "__proto__ is not a field here (the fields are player_id, steps)",
    );
  });

  it("says every field it does not have, the outermost first, beside every other fault, in one answer", () => {
    expect(refusal({ player_id: 7, stepz: [], extra: 1, steps: [{ durationMs: "5", d: 1 }] })).toBe(
      "stepz is not a field here (the fields are player_id, steps); " +
        "extra is not a field here (the fields are player_id, steps); " +
        "steps[0].d is not a field here (the fields are durationMs); " +
        "player_id must be a string; steps[0].durationMs must be a number",
    );
  });
});

describe("saidFor", () => {
  const names = ["elapsed_ms", "progress_percent", "current_step_index", "material_id"];

  it("words a rule checked after parsing in the names the client wrote", () => {
    const rule = "give at most one of elapsed_ms, progress_percent or current_step_index";
    expect(saidFor({ elapsedMs: 1, progressPercent: 2 }, rule, names)).toBe(
      "give at most one of elapsedMs, progressPercent or currentStepIndex",
    );
    // Nested objects and arrays tell how the body was written too.
    expect(
      saidFor(
        [{ changes: [{ materialId: "iron_ore" }] }],
        "material_id iron_ore appears twice",
        names,
      ),
    ).toBe("materialId iron_ore appears twice");
  });

  it("leaves a snake_case body's refusal, values and other words as they are", () => {
    const rule = "elapsed_ms must be between 0 and 60000";
    expect(saidFor({ elapsed_ms: 1e9 }, rule, names)).toBe(rule);
    expect(saidFor("not an object", rule, names)).toBe(rule);
    // Only whole names: a value or a longer word that contains one is not a field.
    expect(saidFor({ elapsedMs: 1 }, "x_elapsed_ms and elapsed_ms_total stay", names)).toBe(
      "x_elapsed_ms and elapsed_ms_total stay",
    );
  });
});
