/** The Worker's entry point: the HTTP router, and the Durable Object classes it binds. */
import { app } from "./app";

export { CraftingSession } from "../durable-objects/crafting-session/crafting-session";

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
export { Player } from "../durable-objects/player/player";
