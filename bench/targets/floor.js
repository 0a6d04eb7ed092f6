// The floor: the least a Durable Object can do for this scenario on this
// runtime. It accepts hibernatable WebSockets and broadcasts each POST body.
// No auth, no storage, no framing: the physical limit to measure us against.
import { DurableObject } from "cloudflare:workers";

export class Room extends DurableObject {
  async fetch(request) {
    if (request.headers.get("Upgrade") === "websocket") {
      const [client, server] = Object.values(new WebSocketPair());
      this.ctx.acceptWebSocket(server);
      return new Response(null, { status: 101, webSocket: client });
    }
    const body = await request.text();
    for (const ws of this.ctx.getWebSockets()) ws.send(body);
    return new Response("ok");
  }

  webSocketMessage() {}

  webSocketClose(ws, code, reason) {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {}
  }
}

export default {
  fetch(request, env) {
    const room = new URL(request.url).pathname.split("/")[2] ?? "room";
    return env.ROOM.getByName(room).fetch(request);
  },
};
