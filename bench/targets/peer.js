// The peer: the same scenario as a team would build it today with
// PartyServer (github.com/cloudflare/partykit): a Server with hibernation
// that broadcasts each POST to the room's connections.
import { routePartykitRequest, Server } from "partyserver";

export class CraftingRoom extends Server {
  static options = { hibernate: true };

  async onRequest(request) {
    this.broadcast(await request.text());
    return new Response("ok");
  }
}

export default {
  async fetch(request, env) {
    return (await routePartykitRequest(request, env)) ?? new Response("not found", { status: 404 });
  },
};
