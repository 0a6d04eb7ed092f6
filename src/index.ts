/** The Worker's entry point: the HTTP router, the Queue consumers, and the Durable Object classes. */
import { app } from "./app";
import { consumeDeadLetters, consumeEvents, DEAD_LETTER_QUEUE_NAME } from "./events/consumer";

export { CraftingSession } from "../durable-objects/crafting-session/crafting-session";
export { DeadLetters } from "../durable-objects/dead-letters/dead-letters";
export { Player } from "../durable-objects/player/player";

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    if (batch.queue === DEAD_LETTER_QUEUE_NAME) await consumeDeadLetters(batch, env);
    else await consumeEvents(batch, env);
  },
} satisfies ExportedHandler<Env>;
