/** crafting-service's calls about a player: their crafting slots, their materials, their queue. */
import { Hono } from "hono";
import { playerStub } from "../durable";
import { retryable } from "../errors";
import { readJsonBody } from "../http/body";
import { jsonText } from "../http/json-text";
import { fields, parse, wholeNumber } from "../http/valid";
import { type AuthVariables, requireServiceOrOperatorReads } from "../middleware/auth";
import { rateLimit, subject } from "../middleware/limits";
import type { TraceVariables } from "../middleware/trace";
import { materialResults, parseId, parseMaterialReport } from "./session-input";

/** Most sessions one player may craft at once. */
export const MAX_CRAFTING_SLOTS = 16;

const SLOTS_RULE = `must be a whole number from 1 to ${MAX_CRAFTING_SLOTS}`;
/** `PUT /v1/players/{id}/slots` body: `{ "slots": n }`. */
const slotsBody = fields(
  { slots: wholeNumber(1, MAX_CRAFTING_SLOTS, SLOTS_RULE) },
  "the body must be a JSON object",
);

/** Routes under /v1/players. */
export const playerRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables & TraceVariables }>()
  .use(requireServiceOrOperatorReads, rateLimit("INGEST_RATE_LIMITER", subject))
  // The queue as the player's stream shows it (service, operators): `crafting.v1.QueueSnapshot`.
  .get("/:id/queue", async (c) => {
    const playerId = parseId(c.req.param("id"), "player_id");
    const queue = await playerStub(c.env, playerId).queueJson(playerId);
    return jsonText(queue);
  })
  .put("/:id/slots", async (c) => {
    const playerId = parseId(c.req.param("id"), "player_id");
    const { slots } = parse(slotsBody, await readJsonBody(c.req.raw));
    await playerStub(c.env, playerId).setSlots(playerId, slots);
    return c.json({ player_id: playerId, slots });
  })
  .post("/:id/materials", async (c) => {
    const playerId = parseId(c.req.param("id"), "player_id");
    const { changes, asOfMs } = parseMaterialReport(await readJsonBody(c.req.raw), Date.now());
    const results = await playerStub(c.env, playerId).materialsChanged(
      changes,
      asOfMs,
      c.get("trace"),
    );
    const sessions = results.map((result) =>
      "error" in result
        ? { session_id: result.sessionId, error: result.error }
        : {
            session_id: result.sessionId,
            results: materialResults(result.materialIds, result.outcomes),
          },
    );
    // A session that could not be reached makes the whole report worth retrying (it is idempotent).
    const retry = results.some((result) => "error" in result && retryable(result.error.code));
    if (retry) c.header("Retry-After", "1");
    return c.json({ player_id: playerId, sessions }, retry ? 503 : 200);
  });
