/**
 * What a stream carries through hibernation: small, serialisable, no token.
 * https://developers.cloudflare.com/durable-objects/api/websockets/#serializeattachment
 */

import type { FrameBucket } from "../../src/domain/streams/stream-liveness";
import type { StreamCodec } from "../../src/protocol/stream-codec";
import type { SyncChannelState } from "../../src/protocol/sync/sync-encoder";

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
