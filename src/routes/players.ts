/** crafting-service's settings of a player: their crafting slots. */
import { Hono } from "hono";
import { playerStub } from "../durable";
import { AppError } from "../errors";
import { readJsonBody } from "../http/body";
import { type AuthVariables, requireAuth } from "../middleware/auth";
import { rateLimit, subject } from "../middleware/limits";
import { parseId } from "./session-input";

/** Most sessions one player may craft at once. */
export const MAX_CRAFTING_SLOTS = 16;

/** Routes under /v1/players. */
export const playerRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables }>()
  .use(requireAuth("service"), rateLimit("INGEST_RATE_LIMITER", subject))
  .put("/:id/slots", async (c) => {
    const playerId = parseId(c.req.param("id"), "player_id");
    const { slots } = (await readJsonBody(c.req.raw)) as { slots?: unknown };
    if (
      typeof slots !== "number" ||
      !Number.isInteger(slots) ||
      slots < 1 ||
      slots > MAX_CRAFTING_SLOTS
    ) {
      throw new AppError(
        "invalid_argument",
        `slots must be a whole number from 1 to ${MAX_CRAFTING_SLOTS}`,
      );
    }
    await playerStub(c.env, playerId).setSlots(playerId, slots);
    return c.json({ player_id: playerId, slots });
  });
