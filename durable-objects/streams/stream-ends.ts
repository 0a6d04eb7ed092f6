/**
 * How streams end and what they leave: a server-side close (marked in the
 * attachment so its close event does not count it twice), the player's
 * slots given back, and one audit line per connect, close and throttle.
 */
import type { StreamKind } from "../../src/domain/streams/stream-leases";
import { type HeldLease, releaseStreamLeases } from "../../src/durable";
import { log } from "../../src/log";
import { metrics, pushMetricsSoon } from "../../src/metrics/push";
import type { StreamAttachment } from "./stream-attachment";
import type { StreamSource } from "./stream-source";

/** Closes, releases and audits the streams of one object. */
export class StreamEnds {
  constructor(
    private readonly env: Env,
    private readonly kind: StreamKind,
    private readonly source: StreamSource,
  ) {}

  /**
   * Closes a stream from the server side: marks it closed (so its close
   * event does not count it twice), closes, audits and counts it. Returns
   * what the caller must release.
   */
  close(
    ws: WebSocket,
    code: number,
    reason: string,
    fields: Record<string, string | number | undefined> = {},
  ): StreamAttachment {
    const attachment = { ...(ws.deserializeAttachment() as StreamAttachment), closedCode: code };
    try {
      ws.serializeAttachment(attachment);
      ws.close(code, reason);
    } catch {
      // Already closing.
    }
    this.audit("stream.close", attachment, { close_code: code, by: "server", ...fields });
    metrics.count("crafting_streams_closed_total", { kind: this.kind, code: String(code) });
    return attachment;
  }

  /** Gives back stream slots, and pushes the counts soon. */
  async release(streams: readonly HeldLease[]): Promise<void> {
    pushMetricsSoon(this.env);
    await releaseStreamLeases(this.env, streams);
  }

  /** One audit line per connect, close and throttle: ids, origin, code; never a token. */
  audit(
    event: string,
    stream: StreamAttachment,
    fields: Record<string, string | number | undefined> = {},
  ): void {
    log(event.endsWith("connect") ? "info" : "warn", event, {
      ...this.source.auditFields(),
      player_id: stream.playerId,
      origin: stream.origin,
      ...fields,
    });
  }
}
