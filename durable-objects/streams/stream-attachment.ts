/**
 * What a stream carries through hibernation: small, serialisable, no token.
 * https://developers.cloudflare.com/durable-objects/api/websockets/#serializeattachment
 */

import { type FrameBucket, newBucket } from "../../src/domain/streams/stream-liveness";
import type { StreamCodec } from "../../src/protocol/stream-codec";
import { STREAM_HEADERS } from "../../src/protocol/stream-headers";
import {
  openChannel,
  type SyncChannelState,
  type SyncOptions,
} from "../../src/protocol/sync/sync-encoder";

/** Per-socket state that must survive hibernation. */
export interface StreamAttachment {
  playerId: string;
  /** The player's stream slot (see durable-objects/player). */
  leaseId: string;
  /** Token expiry (seconds since the epoch): the stream must not outlive it. */
  tokenExp: number;
  connectedAtMs: number;
  /** Last frame received (keepalive pings are read from the runtime instead). */
  lastSeenMs: number;
  origin: string | null;
  /** The seq this stream was brought up to by its snapshot or replay; held frames at or below it are skipped. */
  syncedSeq: number;
  /** Set when the server closed the stream (its close was counted and its slot released then). */
  closedCode?: number;
  bucket: FrameBucket;
  /** How frames travel (json when absent: streams accepted before codecs existed). */
  codec?: StreamCodec;
  /** The sync channel's state (codec "sync"). */
  sync?: SyncChannelState;
}

/** A new stream's attachment, from what the Worker verified and put in the upgrade's headers. */
export function attachmentFor(
  headers: Headers,
  playerId: string,
  codec: StreamCodec,
  syncedSeq: number,
  nowMs: number,
): StreamAttachment {
  const attachment: StreamAttachment = {
    playerId,
    leaseId: headers.get(STREAM_HEADERS.leaseId) ?? "",
    tokenExp: Number(headers.get(STREAM_HEADERS.tokenExp)),
    connectedAtMs: nowMs,
    lastSeenMs: nowMs,
    origin: headers.get(STREAM_HEADERS.origin),
    syncedSeq,
    bucket: newBucket(nowMs),
    codec,
  };
  if (codec === "sync") {
    const options = JSON.parse(headers.get(STREAM_HEADERS.sync) ?? "null") as SyncOptions | null;
    if (!options) throw new Error("a sync stream needs its negotiated options");
    attachment.sync = openChannel(options, nowMs);
  }
  return attachment;
}
