/**
 * The server end of the sync channel, as pure code: `encodeSync` (per
 * socket) turns the session's current state into packets — a full sync when
 * the client has no base, asked for one, or the full-sync interval passed;
 * otherwise a delta against the last full sync it was sent (so a lost delta
 * costs nothing, and a lost full sync is repaired by the client's request or
 * the next interval). The client end is sync-receiver.ts.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Session } from "../../domain/session/session";
import { PlannedStepSchema } from "../../gen/crafting/v1/events_pb";
import { type ServerFrame, ServerFrameSchema } from "../../gen/crafting/v1/frames_pb";
import { MaterialRequirementSchema } from "../../gen/crafting/v1/session_pb";
import {
  SyncDeltaSchema,
  type SyncFull,
  SyncFullSchema,
  type SyncState,
  SyncStateSchema,
} from "../../gen/crafting/v1/sync_pb";
import { sessionStatusMessage } from "../session-wire";
import { LZ4_MIN_BYTES, lz4Compress } from "./lz4";
import { FLAG, packetize } from "./packet";
import { availableBits, diffState, stateChecksum } from "./sync-state";

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
  session: Session,
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

function fullSync(session: Session, state: SyncState, timeBaseMs: number): SyncFull {
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

/** The dynamic part of a session, as the sync channel carries it. */
export function syncStateOf(state: Session): SyncState {
  return create(SyncStateSchema, {
    status: sessionStatusMessage(state.status),
    anchorAtMs: BigInt(Math.floor(state.clock.anchorAtMs)),
    anchorElapsedMs: Math.round(state.clock.anchorElapsedMs),
    rate: state.clock.rate,
    running: state.clock.running,
    materialQuantities: state.materials.map((m) => m.available),
    failureReason: state.failureReason ?? "",
  });
}
