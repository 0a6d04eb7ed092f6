/**
 * LZ4 frames (the standard format, what the `lz4` CLI reads and writes):
 * the frame and its block format, in plain code that allocates nothing
 * until it is called (the checksums are in xxh32.ts). lz4js, used before,
 * allocated 5.25 MB in every isolate that imported it, and read frames with
 * block checksums or a dictionary id wrongly, without an error.
 *
 * Frames we write: independent blocks of at most 64 KB, each stored raw when
 * LZ4 would not shrink it, and a content checksum. Frames we read: any the
 * CLI writes without block checksums or a dictionary (those are refused, as
 * are malformed, truncated or corrupt frames and content over a limit); the
 * content checksum is verified when present. Interop is tested both ways
 * against Debian's `lz4` CLI.
 */

import { P1, u32, xxh32 } from "./xxh32";

const MAGIC = 0x184d2204;
const FLG = {
  version: 0x40,
  versionMask: 0xc0,
  blockIndependence: 0x20,
  blockChecksum: 0x10,
  contentSize: 0x08,
  contentChecksum: 0x04,
  reserved: 0x02,
  dictId: 0x01,
};
/** Block maximum sizes by the BD byte's code. */
const BLOCK_MAX: Record<number, number> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };
/** The blocks we write: 64 KB (BD code 4), the size the hash table's offsets reach. */
const OUR_BLOCK = 64 << 10;
const OUR_BD = 4 << 4;
const UNCOMPRESSED = 0x80000000;

/** Payloads smaller than this are not worth compressing (see the bench: smaller ones grow). */
export const LZ4_MIN_BYTES = 128;
/** Most bytes a decompressed payload may have. */
export const LZ4_MAX_OUTPUT = 1 << 20;

function putU32(b: Uint8Array, at: number, value: number): void {
  b[at] = value & 0xff;
  b[at + 1] = (value >>> 8) & 0xff;
  b[at + 2] = (value >>> 16) & 0xff;
  b[at + 3] = (value >>> 24) & 0xff;
}

// --- Blocks ------------------------------------------------------------------

const MIN_MATCH = 4;
/** The last 5 bytes of a block are literals, and no match starts in its last 12. */
const LAST_LITERALS = 5;
const MATCH_START_LIMIT = 12;
const HASH_BITS = 12;
/** Positions (+1) of 4-byte sequences by hash: allocated at the first compression, 16 KB. */
let table: Int32Array | null = null;

/** Writes a length's continuation bytes (after the 15 in its token's nibble). */
function putLength(out: Uint8Array, at: number, rest: number): number {
  let left = rest;
  while (left >= 255) {
    out[at++] = 255;
    left -= 255;
  }
  out[at++] = left;
  return at;
}

/** One sequence: literals `src[from, from + literals)`, then (unless last) a match. */
function putSequence(
  out: Uint8Array,
  at: number,
  src: Uint8Array,
  from: number,
  literals: number,
  offset: number,
  matchLength: number,
): number {
  const tokenAt = at++;
  const m = matchLength - MIN_MATCH;
  out[tokenAt] = (Math.min(literals, 15) << 4) | (offset ? Math.min(m, 15) : 0);
  if (literals >= 15) at = putLength(out, at, literals - 15);
  out.set(src.subarray(from, from + literals), at);
  at += literals;
  if (!offset) return at;
  out[at++] = offset & 0xff;
  out[at++] = offset >>> 8;
  return m >= 15 ? putLength(out, at, m - 15) : at;
}

/**
 * Compresses `src[start, end)` (at most 64 KB) into `out` from `at`, greedily:
 * the first earlier 4-byte match the hash table remembers, extended forward.
 * Returns where the block ends in `out` (which must hold `end - start` +
 * `(end - start) / 255` + 16 bytes).
 */
function compressBlock(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
): number {
  table ??= new Int32Array(1 << HASH_BITS);
  // A small block hashes into a part of the table: less to clear.
  const bits = Math.min(HASH_BITS, Math.max(6, 32 - Math.clz32(end - start)));
  table.fill(0, 0, 1 << bits);
  let anchor = start;
  let i = start;
  const matchEnd = end - LAST_LITERALS;
  for (const last = end - MATCH_START_LIMIT; i <= last; ) {
    const sequence = u32(src, i);
    const slot = Math.imul(sequence, P1) >>> (32 - bits);
    const ref = (table[slot] as number) - 1;
    table[slot] = i + 1;
    if (ref < start || u32(src, ref) !== sequence) {
      i++;
      continue;
    }
    let length = MIN_MATCH;
    while (i + length < matchEnd && src[i + length] === src[ref + length]) length++;
    at = putSequence(out, at, src, anchor, i - anchor, i - ref, length);
    i += length;
    anchor = i;
  }
  return putSequence(out, at, src, anchor, end - anchor, 0, 0);
}

/**
 * Decodes the block `src[start, end)` into `out` from `at`, never writing
 * past `limit`. Matches may reach back into earlier blocks of the frame
 * (linked blocks). Returns where the output ends, `-1` for a corrupt block,
 * `-2` when the output would pass `limit`.
 */
function decompressBlock(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
  limit: number,
): number {
  let i = start;
  let o = at;
  while (i < end) {
    const token = src[i++] as number;
    let literals = token >>> 4;
    if (literals === 15) {
      for (let b = 255; b === 255; literals += b) {
        if (i >= end) return -1;
        b = src[i++] as number;
      }
    }
    if (i + literals > end) return -1;
    if (o + literals > limit) return -2;
    out.set(src.subarray(i, i + literals), o);
    i += literals;
    o += literals;
    if (i === end) return o; // The last sequence has literals only.
    if (i + 2 > end) return -1;
    const offset = (src[i] as number) | ((src[i + 1] as number) << 8);
    i += 2;
    if (offset === 0 || offset > o) return -1;
    let length = (token & 15) + MIN_MATCH;
    if ((token & 15) === 15) {
      for (let b = 255; b === 255; length += b) {
        if (i >= end) return -1;
        b = src[i++] as number;
      }
    }
    if (o + length > limit) return -2;
    // Byte by byte: a match may overlap the bytes it produces (a run).
    for (let from = o - offset, stop = o + length; o < stop; ) out[o++] = out[from++] as number;
  }
  return -1; // An empty block, or one ending in a match.
}

// --- Frames ------------------------------------------------------------------

/** An LZ4 frame of `data`: 64 KB independent blocks, a content checksum. */
export function lz4Compress(data: Uint8Array): Uint8Array {
  // The worst case: every block stored with its literal-length bytes, a word each, the header and the end.
  const blocks = Math.ceil(data.length / OUR_BLOCK);
  const out = new Uint8Array(15 + data.length + Math.ceil(data.length / 255) + blocks * 20);
  putU32(out, 0, MAGIC);
  out[4] = FLG.version | FLG.blockIndependence | FLG.contentChecksum;
  out[5] = OUR_BD;
  out[6] = (xxh32(out, 4, 2) >>> 8) & 0xff;
  let at = 7;
  for (let start = 0; start < data.length; start += OUR_BLOCK) {
    const end = Math.min(start + OUR_BLOCK, data.length);
    const size = compressBlock(data, start, end, out, at + 4) - (at + 4);
    if (size < end - start) {
      putU32(out, at, size);
      at += 4 + size;
    } else {
      // LZ4 would not shrink it: stored as it is.
      putU32(out, at, (end - start) | UNCOMPRESSED);
      out.set(data.subarray(start, end), at + 4);
      at += 4 + (end - start);
    }
  }
  putU32(out, at, 0);
  putU32(out, at + 4, xxh32(data));
  return out.slice(0, at + 8);
}

/** The data of an LZ4 frame, or why it is refused (never a throw). */
export function lz4Decompress(
  frame: Uint8Array,
  maxOutput = LZ4_MAX_OUTPUT,
): { ok: true; data: Uint8Array } | { ok: false; reason: string } {
  const refuse = (reason: string) => ({ ok: false as const, reason });
  if (frame.length < 7 || u32(frame, 0) !== MAGIC) return refuse("not an LZ4 frame (magic number)");
  const flg = frame[4] as number;
  const bd = frame[5] as number;
  if ((flg & FLG.versionMask) !== FLG.version) return refuse("unsupported LZ4 frame version");
  if (flg & FLG.reserved || bd & 0x8f) return refuse("reserved LZ4 frame bits are set");
  if (flg & FLG.blockChecksum) return refuse("LZ4 frames with block checksums are not supported");
  if (flg & FLG.dictId) return refuse("LZ4 frames with a dictionary are not supported");
  const blockMax = BLOCK_MAX[(bd >> 4) & 7];
  if (blockMax === undefined) return refuse("invalid LZ4 block size");
  let at = 6;
  if (flg & FLG.contentSize) at += 8;
  if (frame.length < at + 1) return refuse("truncated LZ4 frame");
  if (frame[at] !== ((xxh32(frame, 4, at - 4) >>> 8) & 0xff))
    return refuse("LZ4 frame header checksum mismatch");
  at += 1;
  const blocks: { start: number; size: number; raw: boolean }[] = [];
  for (;;) {
    if (frame.length < at + 4) return refuse("truncated LZ4 frame");
    const word = u32(frame, at);
    at += 4;
    if (word === 0) break;
    const raw = (word & UNCOMPRESSED) !== 0;
    const size = word & ~UNCOMPRESSED;
    if (size > blockMax || frame.length < at + size)
      return refuse("truncated or oversized LZ4 block");
    blocks.push({ start: at, size, raw });
    at += size;
  }
  const hasChecksum = (flg & FLG.contentChecksum) !== 0;
  if (frame.length !== at + (hasChecksum ? 4 : 0))
    return refuse("trailing or missing bytes after the LZ4 frame");
  const tooLarge = () => refuse(`LZ4 content is larger than ${maxOutput} bytes`);
  // The output starts at a guess and doubles as needed, up to the limit.
  let out = new Uint8Array(Math.min(maxOutput, Math.max(256, frame.length * 4)));
  const grow = (needed: number) => {
    const grown = new Uint8Array(Math.min(maxOutput, Math.max(needed, out.length * 2)));
    grown.set(out.subarray(0, written));
    out = grown;
  };
  let written = 0;
  for (const block of blocks) {
    if (block.raw) {
      if (written + block.size > maxOutput) return tooLarge();
      if (written + block.size > out.length) grow(written + block.size);
      out.set(frame.subarray(block.start, block.start + block.size), written);
      written += block.size;
      continue;
    }
    for (;;) {
      const limit = Math.min(out.length, written + blockMax);
      const end = decompressBlock(
        frame,
        block.start,
        block.start + block.size,
        out,
        written,
        limit,
      );
      if (end === -1) return refuse("corrupt LZ4 block");
      if (end >= 0) {
        written = end;
        break;
      }
      // Past the block's maximum is corrupt; past the output, grow it (the block is decoded again).
      if (limit === written + blockMax) return refuse("corrupt LZ4 block");
      if (out.length >= maxOutput) return tooLarge();
      grow(out.length + 1);
    }
  }
  const data = out.slice(0, written);
  if (hasChecksum && u32(frame, at) !== xxh32(data)) return refuse("LZ4 content checksum mismatch");
  return { ok: true, data };
}
