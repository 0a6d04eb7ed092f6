/**
 * The sync channel's two ends as pure code. `encodeSync` (server, per
 * socket) turns the session's current state into packets: a full sync when
 * the client has no base, asked for one, or the full-sync interval passed;
 * otherwise a delta against the last full sync it was sent (so a lost delta
 * costs nothing, and a lost full sync is repaired by the client's request or
 * the next interval). `SyncReceiver` (client) joins parts, decompresses,
 * applies, checks the checksum and says when it needs a full sync.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { SessionState } from "../../../durable-objects/crafting-session/crafting-session-state";
import { PlannedStepSchema } from "../../gen/crafting/v1/events_pb";
import { type ServerFrame, ServerFrameSchema } from "../../gen/crafting/v1/frames_pb";
import { MaterialRequirementSchema } from "../../gen/crafting/v1/session_pb";
import {
  type SyncDelta,
  SyncDeltaSchema,
  type SyncFull,
  SyncFullSchema,
  type SyncState,
  SyncStateSchema,
} from "../../gen/crafting/v1/sync_pb";
import { LZ4_MIN_BYTES, lz4Compress, lz4Decompress } from "./lz4";
import { decodePacket, FLAG, packetize, Reassembler } from "./packet";
import { applyDelta, availableBits, diffState, stateChecksum, syncStateOf } from "./sync-state";

/** What a client negotiated (`POST /udp/sessions/{id}/connect`). */
export interface SyncOptions {
  packetSize: number;
  delta: boolean;
  lz4: boolean;
  fullSyncIntervalMs: number;
}

/** Per-socket state of the server end; small enough for a WebSocket attachment. */
export interface SyncChannelState extends SyncOptions {
  /** Absolute server time header times count from (the channel's opening). */
  timeBaseMs: number;
  /** The last full sync sent: its seq and state (binary, base64), or none. */
  baseSeq: number;
  base: string | null;
  lastFullAtMs: number;
}

/** A new channel's state. */
export function openChannel(options: SyncOptions, nowMs: number): SyncChannelState {
  return { ...options, timeBaseMs: nowMs, baseSeq: 0, base: null, lastFullAtMs: 0 };
}

const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const fromBase64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** Packets for `session` now, and the channel's next state. */
export function encodeSync(
  channel: SyncChannelState,
  session: SessionState,
  nowMs: number,
  forceFull = false,
): { packets: Uint8Array[]; channel: SyncChannelState; full: boolean } {
  const target = syncStateOf(session);
  const required = session.materials.map((m) => m.required);
  const base = channel.base === null ? null : fromBinary(SyncStateSchema, fromBase64(channel.base));
  const full =
    forceFull ||
    !channel.delta ||
    base === null ||
    base.materialQuantities.length !== target.materialQuantities.length ||
    nowMs - channel.lastFullAtMs >= channel.fullSyncIntervalMs;
  const message = full
    ? toBinary(SyncFullSchema, fullSync(session, target, channel.timeBaseMs))
    : toBinary(SyncDeltaSchema, diffState(base as SyncState, target, required));
  let payload: Uint8Array = message;
  let flags: number = full ? FLAG.FULL : FLAG.DELTA;
  if (channel.lz4 && message.length >= LZ4_MIN_BYTES) {
    const compressed = lz4Compress(message);
    if (compressed.length < message.length) {
      payload = compressed;
      flags |= FLAG.LZ4;
    }
  }
  const next: SyncChannelState = full
    ? {
        ...channel,
        baseSeq: session.seq,
        base: toBase64(toBinary(SyncStateSchema, target)),
        lastFullAtMs: nowMs,
      }
    : channel;
  const fields = {
    flags,
    seq: session.seq,
    baseSeq: full ? session.seq : channel.baseSeq,
    serverTimeMs: Math.max(0, Math.floor(nowMs - channel.timeBaseMs)),
  };
  return { packets: packetize(fields, payload, channel.packetSize), channel: next, full };
}

function fullSync(session: SessionState, state: SyncState, timeBaseMs: number): SyncFull {
  return create(SyncFullSchema, {
    state,
    checksum: stateChecksum(state),
    sessionId: session.sessionId,
    epoch: session.epoch,
    timeBaseMs: BigInt(Math.floor(timeBaseMs)),
    steps: session.steps.map((s) =>
      create(PlannedStepSchema, { name: s.name, durationMs: s.durationMs }),
    ),
    materials: session.materials.map((m) =>
      create(MaterialRequirementSchema, { materialId: m.materialId, required: m.required }),
    ),
    availableBits: availableBits(
      state.materialQuantities,
      session.materials.map((m) => m.required),
    ),
  });
}

/** A control packet (neither full nor delta): a ServerFrame such as an error, in binary. */
export function controlPackets(
  channel: SyncChannelState,
  frame: ServerFrame,
  nowMs: number,
): Uint8Array[] {
  const fields = {
    flags: 0,
    seq: frame.seq,
    baseSeq: frame.seq,
    serverTimeMs: Math.max(0, Math.floor(nowMs - channel.timeBaseMs)),
  };
  return packetize(fields, toBinary(ServerFrameSchema, frame), channel.packetSize);
}

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
