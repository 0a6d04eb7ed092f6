/**
 * A Durable Object whose WebSockets are run by a StreamHub: the runtime's
 * socket events and the alarm go to the hub; `upgrade` checks what every
 * stream request must carry (the Worker authenticated it).
 */
import { DurableObject } from "cloudflare:workers";
import { httpStatus, type ServiceError } from "../../src/errors";
import { STREAM_HEADERS } from "./stream-attachment";
import type { StreamHub } from "./stream-hub";

/** An error answered to the Worker, which passes it on. */
export function errorResponse(error: ServiceError): Response {
  return Response.json({ error }, { status: httpStatus(error.code) });
}

/** Base class of the objects that serve streams. */
export abstract class StreamingObject extends DurableObject<Env> {
  protected abstract readonly hub: StreamHub;

  /** The authenticated player of a stream request, or the refusal to answer. */
  protected upgrade(request: Request): { playerId: string } | Response {
    const playerId = request.headers.get(STREAM_HEADERS.player);
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket" || !playerId) {
      return errorResponse({
        code: "invalid_argument",
        message: "expected an authenticated WebSocket upgrade",
      });
    }
    return { playerId };
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await this.hub.message(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    await this.hub.closed(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.hub.errored(ws, error);
  }

  /** The streams' sweep: idle and token-expiry closes, heartbeats, slot renewal. */
  override async alarm(): Promise<void> {
    await this.hub.sweep();
  }
}
