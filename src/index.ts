/** The Worker's entry point: the HTTP router, the Queue consumers, and the Durable Object classes. */
import { app } from "./app";
import { consumeDeadLetters, consumeEvents, isDeadLetterQueue } from "./events/consumer";
import { setLogLevel } from "./log";
import { pushMetricsSoon } from "./metrics/push";

export { CraftingSession } from "../durable-objects/crafting-session/crafting-session";
export { CraftingWorkflow } from "../durable-objects/crafting-workflow/crafting-workflow";
export { DeadLetters } from "../durable-objects/dead-letters/dead-letters";
export { Metrics } from "../durable-objects/metrics/metrics";
export { Player } from "../durable-objects/player/player";

export default {
  fetch: app.fetch,
  async queue(batch, env, ctx) {
    setLogLevel(env.LOG_LEVEL);
    if (isDeadLetterQueue(batch.queue)) await consumeDeadLetters(batch, env);
    else await consumeEvents(batch, env);
    pushMetricsSoon(env, (promise) => ctx.waitUntil(promise));
  },
} satisfies ExportedHandler<Env>;
