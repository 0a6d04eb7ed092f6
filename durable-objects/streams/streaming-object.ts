/**
 * A Durable Object whose WebSockets are run by a StreamHub: the runtime's
 * socket events go to the hub; `upgrade` checks what every stream request
 * must carry (the Worker authenticated it).
 */
import { DurableObject } from "cloudflare:workers";
import { httpStatus, type ServiceError } from "../../src/errors";
import { metrics } from "../../src/metrics/push";
import { STREAM_HEADERS } from "../../src/protocol/stream-headers";
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

  /**
   * Accepts a stream of what this object holds, for its owner (or an
   * operator) only: `not_found` while there is nothing (`watched` is null),
   * `permission_denied` for another player; `endReason` closes it normally
   * after the first frame.
   */
  protected acceptOwned(
    request: Request,
    what: string,
    watched: { owner: string; endReason: string | null } | null,
  ): Promise<Response> | Response {
    const upgrade = this.upgrade(request);
    if (upgrade instanceof Response) return upgrade;
    if (!watched) return errorResponse({ code: "not_found", message: `no ${what} with this id` });
    const operator = request.headers.get(STREAM_HEADERS.operator) === "1";
    if (watched.owner !== upgrade.playerId && !operator) {
      return errorResponse({
        code: "permission_denied",
        message: `this ${what} belongs to another player`,
      });
    }
    return this.hub.accept(request.headers, upgrade.playerId, watched.endReason);
  }

  /**
   * Which of these stream slots still have a live stream here (the player's
   * object asks before refusing a stream: slots of streams lost in a crash,
   * or of dead clients, are freed then).
   */
  async openLeases(leaseIds: string[]): Promise<string[]> {
    metrics.count("crafting_object_wakes_total", { object: this.hub.kind, event: "slot_check" });
    return this.hub.openLeases(leaseIds);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    metrics.count("crafting_object_wakes_total", { object: this.hub.kind, event: "message" });
    await this.hub.message(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    await this.hub.closed(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.hub.errored(ws, error);
  }

  /**
   * The object's alarm: sweeps its streams (idle and token-expiry closes,
   * heartbeats), as an earlier version scheduled it to. No stream schedules
   * one now; sessions and workflows set it for work they owe another
   * object (owed-retry.ts) and do that work after this.
   */
  override async alarm(): Promise<void> {
    metrics.count("crafting_object_wakes_total", { object: this.hub.kind, event: "alarm" });
    await this.hub.sweep();
  }
}
