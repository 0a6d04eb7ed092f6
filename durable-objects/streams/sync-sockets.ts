/**
 * The sync channel's sockets (`crafting.sync.v1`): each carries the state
 * itself — a delta against the last full sync it was sent, or a full sync —
 * rather than frames, and keeps its channel state in its attachment. The
 * packets come from the server's encoder (src/protocol/sync/sync-encoder.ts)
 * through the watched object's `StreamSource.syncPackets`.
 */
import { fromBinary } from "@bufbuild/protobuf";
import type { ServerFrame } from "../../src/gen/crafting/v1/frames_pb";
import { SyncRequestSchema } from "../../src/gen/crafting/v1/sync_pb";
import { errorFrame, type FramePosition } from "../../src/protocol/frames";
import { controlPackets } from "../../src/protocol/sync/sync-encoder";
import { trySend } from "./socket-send";
import type { StreamAttachment } from "./stream-attachment";
import type { StreamSource } from "./stream-source";

/** Packets and bytes sent. */
export interface Sent {
  sent: number;
  bytes: number;
}

/** The sync channel's end of the stream hub. */
export class SyncSockets {
  constructor(private readonly source: StreamSource) {}

  /** Sends the packets for the current state; keeps the channel's new base. */
  sync(ws: WebSocket, now: number, forceFull: boolean, known?: StreamAttachment | null): Sent {
    const attachment = known ?? (ws.deserializeAttachment() as StreamAttachment);
    if (!attachment.sync || !this.source.syncPackets) return { sent: 0, bytes: 0 };
    const out = this.source.syncPackets(attachment.sync, now, forceFull);
    if (!out) return { sent: 0, bytes: 0 };
    let sent = 0;
    let bytes = 0;
    for (const packet of out.packets) {
      if (trySend(ws, packet)) {
        sent++;
        bytes += packet.length;
      }
    }
    if (out.channel !== attachment.sync) {
      try {
        ws.serializeAttachment({ ...attachment, sync: out.channel });
      } catch {
        // Closed meanwhile.
      }
    }
    return { sent, bytes };
  }

  /** A frame on the sync channel: a heartbeat is a sync, anything else a control packet. */
  send(ws: WebSocket, frame: ServerFrame, attachment: StreamAttachment, now: number): void {
    if (frame.kind.case === "heartbeat") {
      this.sync(ws, now, false, attachment);
      return;
    }
    if (attachment.sync)
      for (const packet of controlPackets(attachment.sync, frame, now)) trySend(ws, packet);
  }

  /** A client's SyncRequest: a full sync when it asks or holds another base; garbage gets an error. */
  request(
    ws: WebSocket,
    attachment: StreamAttachment,
    message: string | ArrayBuffer,
    position: FramePosition,
    now: number,
  ): void {
    const refuse = (text: string) =>
      this.send(
        ws,
        errorFrame(position, { code: "invalid_argument", message: text }),
        attachment,
        now,
      );
    if (typeof message === "string") {
      refuse("this stream speaks crafting.sync.v1: send binary SyncRequest frames");
      return;
    }
    let request: ReturnType<typeof fromBinary<typeof SyncRequestSchema>>;
    try {
      request = fromBinary(SyncRequestSchema, new Uint8Array(message));
    } catch (e: unknown) {
      refuse(`malformed SyncRequest: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const held = attachment.sync?.baseSeq ?? 0;
    this.sync(ws, now, request.full || request.baseSeq !== held, attachment);
  }
}
