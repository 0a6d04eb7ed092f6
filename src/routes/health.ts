/** Liveness for load balancers and operators: no Durable Object is touched. */
import { Hono } from "hono";
import { MIN_SECRET_LENGTH } from "../middleware/auth";
import { clientIp, rateLimit } from "../middleware/limits";

type Check = "ok" | "missing" | "misconfigured";

/** Routes under /health. */
export const healthRoutes = new Hono<{ Bindings: Env }>()
  .use(rateLimit("HEALTH_RATE_LIMITER", clientIp))
  .get("/", (c) => {
    const secret = c.env.JWT_SECRET;
    const bindings: Record<string, Check> = {
      CRAFTING_SESSION: typeof c.env.CRAFTING_SESSION?.getByName === "function" ? "ok" : "missing",
      PLAYER: typeof c.env.PLAYER?.getByName === "function" ? "ok" : "missing",
      JWT_SECRET: !secret ? "missing" : secret.length < MIN_SECRET_LENGTH ? "misconfigured" : "ok",
    };
    const healthy = Object.values(bindings).every((check) => check === "ok");
    return c.json(
      {
        status: healthy ? "ok" : "failing",
        version: c.env.SERVICE_VERSION,
        time: new Date().toISOString(),
        bindings,
      },
      healthy ? 200 : 503,
    );
  });
