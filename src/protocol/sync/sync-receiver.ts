/**
 * The client end of the sync channel: `SyncReceiver` joins parts,
 * decompresses, applies, checks the checksum and says when it needs a full
 * sync. Imports nothing of the server (the encoder is sync-encoder.ts).
 */
import { create, fromBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "../../gen/crafting/v1/frames_pb";
import {
  type SyncDelta,
  SyncDeltaSchema,
  type SyncFull,
  SyncFullSchema,
  type SyncState,
  SyncStateSchema,
} from "../../gen/crafting/v1/sync_pb";
import { lz4Decompress } from "./lz4";
import { decodePacket, FLAG, Reassembler } from "./packet";
import { applyDelta, stateChecksum } from "./sync-state";

/** What a client makes of one packet. */
export type SyncEvent =
  | { type: "state"; seq: number; state: SyncState; full: boolean; serverTimeMs: number }
  | { type: "partial" }
  | { type: "control"; frame: ServerFrame }
  /** The client must ask for a full sync (no base, wrong base, drift). */
  | { type: "need_full"; reason: string }
  | { type: "invalid"; reason: string };

/** The client end: joins, decompresses, applies and checks packets. */
export class SyncReceiver {
  readonly #parts = new Reassembler();
  #base: { seq: number; state: SyncState; full: SyncFull } | null = null;
  /** The last state applied, and its seq. */
  state: SyncState | null = null;
  seq = 0;
  /** The static part of the session, from the last full sync. */
  get session(): SyncFull | null {
    return this.#base?.full ?? null;
  }

  /** The full sync's seq this client holds (to report in a SyncRequest). */
  get baseSeq(): number {
    return this.#base?.seq ?? 0;
  }

  receive(bytes: Uint8Array): SyncEvent {
    const decoded = decodePacket(bytes);
    if (!decoded.ok) return { type: "invalid", reason: decoded.reason };
    const joined = this.#parts.add(decoded.header, decoded.payload);
    if (!joined) return { type: "partial" };
    const { header } = joined;
    let payload = joined.payload;
    if (header.flags & FLAG.LZ4) {
      const inflated = lz4Decompress(payload);
      if (!inflated.ok) return { type: "invalid", reason: inflated.reason };
      payload = inflated.data;
    }
    try {
      if (header.flags & FLAG.FULL) {
        const full = fromBinary(SyncFullSchema, payload);
        const state = full.state ?? create(SyncStateSchema);
        if (stateChecksum(state) !== full.checksum)
          return { type: "need_full", reason: "full sync checksum mismatch" };
        this.#base = { seq: header.seq, state, full };
        return this.#applied(header.seq, state, true, header.serverTimeMs);
      }
      if (header.flags & FLAG.DELTA) {
        if (!this.#base || this.#base.seq !== header.baseSeq) {
          return {
            type: "need_full",
            reason: `no full sync ${header.baseSeq} to apply a delta to`,
          };
        }
        if (header.seq < this.seq) return { type: "partial" }; // older than what is shown: skip
        const delta: SyncDelta = fromBinary(SyncDeltaSchema, payload);
        const state = applyDelta(this.#base.state, delta);
        if (!state || stateChecksum(state) !== delta.checksum)
          return { type: "need_full", reason: "checksum mismatch (drift)" };
        return this.#applied(header.seq, state, false, header.serverTimeMs);
      }
      return { type: "control", frame: fromBinary(ServerFrameSchema, payload) };
    } catch (e) {
      return { type: "invalid", reason: e instanceof Error ? e.message : String(e) };
    }
  }

  #applied(seq: number, state: SyncState, full: boolean, serverTimeMs: number): SyncEvent {
    this.state = state;
    this.seq = seq;
    return { type: "state", seq, state, full, serverTimeMs };
  }
}
