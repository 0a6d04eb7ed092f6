/**
 * Sessions placed near their players, in workerd: the create call's location
 * hint is the `region` it names, else where the player's object last saw the
 * player connect from, else none. (Where the platform then places the object
 * cannot be observed locally; the hint chosen is in the answer's header.)
 */
import { describe, expect, it } from "vitest";
import { freshId, serviceToken, token } from "../support/tokens";
import { call } from "./helpers";

async function create(playerId: string, extra: Record<string, unknown> = {}) {
  return call("/v1/sessions", {
    method: "POST",
    headers: {
      Authorization: `Bearer ${await serviceToken()}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      player_id: playerId,
      recipe_id: "iron-sword",
      steps: [{ name: "forge", duration_ms: 60_000 }],
      ...extra,
    }),
  });
}

describe("placing a session", () => {
  it("uses the region the create call names", async () => {
    const response = await create(freshId("p"), { region: "weur" });
    expect(response.status).toBe(201);
    expect(response.headers.get("Crafting-Location-Hint")).toBe("weur; source=region");
  });

  it("else where the player last connected from, else nowhere in particular", async () => {
    const playerId = freshId("p");
    const first = await create(playerId);
    expect(first.headers.get("Crafting-Location-Hint")).toBe("none; source=none");
    const { session_id: sessionId } = (await first.json()) as { session_id?: string };
    const id =
      sessionId ?? ((await (await create(playerId)).json()) as { sessionId: string }).sessionId;
    // The player watches from Tokyo.
    const watched = await call(`/ws/crafting/${id}`, {
      headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(playerId)}` },
      cf: { continent: "AS", country: "JP", longitude: "139.7" },
    } as RequestInit);
    expect(watched.status).toBe(101);
    watched.webSocket?.accept();
    watched.webSocket?.close(1000);
    const next = await create(playerId);
    expect(next.headers.get("Crafting-Location-Hint")).toBe("apac; source=player");
    // A region named at create still wins.
    const named = await create(playerId, { region: "enam" });
    expect(named.headers.get("Crafting-Location-Hint")).toBe("enam; source=region");
  });

  it("refuses a region that is not a location hint, naming the field", async () => {
    const response = await create(freshId("p"), { region: "mars" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { code: "invalid_argument", message: expect.stringMatching(/region/) },
    });
  });
});
