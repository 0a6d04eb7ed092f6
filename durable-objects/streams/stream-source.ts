/** What a hub's streams watch, as the owning object provides it. */
import type { ServerFrame } from "../../src/gen/crafting/v1/frames_pb";
import type { FramePosition } from "../../src/protocol/frames";
import type { SyncChannelState } from "../../src/protocol/sync/sync-encoder";

/** The watched state of one streaming object. */
export interface StreamSource {
  /** Where the watched state stands now; null while there is nothing to watch. */
  position(nowMs: number): FramePosition | null;
  /** The whole watched state; `recovered: false` answers a resume that could not be honoured. */
  snapshot(nowMs: number, recovered?: boolean): ServerFrame;
  /** The frames after `seq`, in order, as far as the replay log reaches. */
  replayAfter(seq: number): ServerFrame[];
  /** Ids for the audit lines (session_id, player_id …). */
  auditFields(): Record<string, string | undefined>;
  /**
   * The sync channel's packets for the current state (sessions only): a
   * full sync when `forceFull` or due, else a delta; null while there is nothing.
   */
  syncPackets?(
    channel: SyncChannelState,
    nowMs: number,
    forceFull: boolean,
  ): { packets: Uint8Array[]; channel: SyncChannelState } | null;
}
