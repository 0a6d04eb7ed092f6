/**
 * The sync channel's state and its deltas, as pure functions: what changes
 * in a session (`SyncState`), the difference between two states
 * (`diffState`), and its application (`applyDelta`), so that
 * `applyDelta(a, diffState(a, b))` equals `b`. Material quantities travel
 * as a bitset of changed materials (recipe order) plus zigzag varints of the
 * changes; availability as a bitset.
 */
import { create, equals, toBinary } from "@bufbuild/protobuf";
import {
  type SyncDelta,
  SyncDeltaSchema,
  type SyncState,
  SyncStateSchema,
} from "../../gen/crafting/v1/sync_pb";
import { crc32 } from "./crc32";

/** CRC-32 of a state's binary encoding (deterministic: fields in number order). */
export function stateChecksum(state: SyncState): number {
  return crc32(toBinary(SyncStateSchema, state));
}

/** Bit i set when `test(i)`, LSB first; no trailing zero bytes. */
export function packBits(count: number, test: (i: number) => boolean): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(count / 8));
  for (let i = 0; i < count; i++)
    if (test(i)) bytes[i >> 3] = (bytes[i >> 3] as number) | (1 << (i & 7));
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.subarray(0, end);
}

/** Whether bit i of a packed bitset is set. */
export function bitAt(bits: Uint8Array, i: number): boolean {
  return (((bits[i >> 3] ?? 0) >> (i & 7)) & 1) === 1;
}

/** Availability bitset: material i has at least what it requires. */
export function availableBits(
  quantities: readonly number[],
  required: readonly number[],
): Uint8Array {
  return packBits(quantities.length, (i) => (quantities[i] ?? 0) >= (required[i] ?? 0));
}

/**
 * What changed from `base` to `target` (same materials, same order),
 * with `target`'s checksum. `required` gives the availability bitset.
 */
export function diffState(
  base: SyncState,
  target: SyncState,
  required: readonly number[],
): SyncDelta {
  const delta = create(SyncDeltaSchema, { checksum: stateChecksum(target) });
  if (target.status !== base.status) delta.status = target.status;
  if (target.anchorAtMs !== base.anchorAtMs)
    delta.anchorAtDeltaMs = target.anchorAtMs - base.anchorAtMs;
  if (target.anchorElapsedMs !== base.anchorElapsedMs)
    delta.anchorElapsedDeltaMs = target.anchorElapsedMs - base.anchorElapsedMs;
  if (target.rate !== base.rate) delta.rate = target.rate;
  if (target.running !== base.running) delta.running = target.running;
  if (target.failureReason !== base.failureReason) delta.failureReason = target.failureReason;
  const count = target.materialQuantities.length;
  const changed = (i: number) => target.materialQuantities[i] !== base.materialQuantities[i];
  const mask = packBits(count, changed);
  if (mask.length > 0) {
    delta.changedMaterials = mask;
    for (let i = 0; i < count; i++) {
      if (changed(i))
        delta.quantityChanges.push(
          (target.materialQuantities[i] ?? 0) - (base.materialQuantities[i] ?? 0),
        );
    }
    delta.availableBits = availableBits(target.materialQuantities, required);
  }
  return delta;
}

const UINT32_MAX = 0xffff_ffff;
const inUint32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= UINT32_MAX;

/**
 * `base` with `delta` applied; null when the result cannot be a state (the
 * delta was made for another base: drift, the client needs a full sync).
 */
export function applyDelta(base: SyncState, delta: SyncDelta): SyncState | null {
  const quantities = [...base.materialQuantities];
  let k = 0;
  for (let i = 0; i < quantities.length; i++) {
    if (bitAt(delta.changedMaterials, i))
      quantities[i] = (quantities[i] ?? 0) + (delta.quantityChanges[k++] ?? 0);
  }
  const anchorAtMs = base.anchorAtMs + (delta.anchorAtDeltaMs ?? 0n);
  const anchorElapsedMs = base.anchorElapsedMs + (delta.anchorElapsedDeltaMs ?? 0);
  if (anchorAtMs < 0n || !inUint32(anchorElapsedMs) || !quantities.every(inUint32)) return null;
  return create(SyncStateSchema, {
    status: delta.status ?? base.status,
    anchorAtMs,
    anchorElapsedMs,
    rate: delta.rate ?? base.rate,
    running: delta.running ?? base.running,
    materialQuantities: quantities,
    failureReason: delta.failureReason ?? base.failureReason,
  });
}

/** Whether two states are the same. */
export function sameState(a: SyncState, b: SyncState): boolean {
  return equals(SyncStateSchema, a, b);
}
