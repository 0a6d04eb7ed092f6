/**
 * LZ4 frames (the standard format, what the `lz4` CLI reads and writes),
 * with lz4js doing the block work. lz4js reads frames with block checksums
 * or a dictionary id wrongly, without an error; so every frame is walked and
 * checked here first, and refused when it carries what lz4js cannot decode,
 * is malformed or truncated, or would expand past a limit. Frames we write
 * carry a content checksum, which is verified on the way back.
 *
 * lz4js allocates a 5 MB buffer when it is imported, so it is not imported
 * here: the server hands it over at start (`useLz4`), a client loads it
 * only when a channel negotiates LZ4 (`loadLz4`).
 */
import { hash as xxh32 } from "lz4js/xxh32.js";

type Lz4js = typeof import("lz4js");
let lz4js: Lz4js | null = null;

/** Gives this module the lz4js block codec (the server, which imports it eagerly). */
export function useLz4(codec: Lz4js): void {
  lz4js = codec;
}

/** Loads the lz4js block codec, once: call it before compressing or decompressing. */
export async function loadLz4(): Promise<void> {
  lz4js ??= await import("lz4js");
}

/** The codec is loaded (`loadLz4` or `useLz4`). */
export function lz4Loaded(): boolean {
  return lz4js !== null;
}

const MAGIC = 0x184d2204;
const FLG = {
  version: 0x40,
  versionMask: 0xc0,
  blockChecksum: 0x10,
  contentSize: 0x08,
  contentChecksum: 0x04,
  reserved: 0x02,
  dictId: 0x01,
};
const BLOCK_MAX: Record<number, number> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };
const UNCOMPRESSED = 0x80000000;

/** Payloads smaller than this are not worth compressing (see the bench: smaller ones grow). */
export const LZ4_MIN_BYTES = 128;
/** Most bytes a decompressed payload may have. */
export const LZ4_MAX_OUTPUT = 1 << 20;

const u32 = (b: Uint8Array, at: number) =>
  ((b[at] as number) |
    ((b[at + 1] as number) << 8) |
    ((b[at + 2] as number) << 16) |
    ((b[at + 3] as number) << 24)) >>>
  0;

function putU32(b: Uint8Array, at: number, value: number): void {
  b[at] = value & 0xff;
  b[at + 1] = (value >>> 8) & 0xff;
  b[at + 2] = (value >>> 16) & 0xff;
  b[at + 3] = (value >>> 24) & 0xff;
}

/** An LZ4 frame of `data`, with a content checksum. */
export function lz4Compress(data: Uint8Array): Uint8Array {
  if (!lz4js) throw new Error("LZ4 is not loaded: await loadLz4() first");
  const frame = lz4js.compress(data);
  // lz4js writes no content checksum: set the flag, redo the header checksum, append xxh32(data).
  const out = new Uint8Array(frame.length + 4);
  out.set(frame);
  out[4] = (out[4] as number) | FLG.contentChecksum;
  out[6] = (xxh32(0, out, 4, 2) >>> 8) & 0xff;
  putU32(out, frame.length, xxh32(0, data, 0, data.length));
  return out;
}

/** The data of an LZ4 frame, or why it is refused (never a throw). */
export function lz4Decompress(
  frame: Uint8Array,
  maxOutput = LZ4_MAX_OUTPUT,
): { ok: true; data: Uint8Array } | { ok: false; reason: string } {
  const refuse = (reason: string) => ({ ok: false as const, reason });
  const codec = lz4js;
  if (!codec) return refuse("LZ4 is not loaded: await loadLz4() first");
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
  if (frame[at] !== ((xxh32(0, frame, 4, at - 4) >>> 8) & 0xff))
    return refuse("LZ4 frame header checksum mismatch");
  at += 1;
  const blocks: { start: number; size: number; raw: boolean }[] = [];
  let bound = 0;
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
    bound += raw ? size : blockMax;
  }
  const hasChecksum = (flg & FLG.contentChecksum) !== 0;
  if (frame.length !== at + (hasChecksum ? 4 : 0))
    return refuse("trailing or missing bytes after the LZ4 frame");
  const out = new Uint8Array(Math.min(bound, maxOutput + 1));
  let written = 0;
  for (const block of blocks) {
    if (block.raw) {
      if (written + block.size > maxOutput)
        return refuse(`LZ4 content is larger than ${maxOutput} bytes`);
      out.set(frame.subarray(block.start, block.start + block.size), written);
      written += block.size;
      continue;
    }
    const scratch = new Uint8Array(blockMax);
    let produced: number;
    try {
      produced = codec.decompressBlock(frame, scratch, block.start, block.size, 0);
    } catch {
      return refuse("corrupt LZ4 block");
    }
    if (produced > blockMax) return refuse("corrupt LZ4 block");
    if (written + produced > maxOutput)
      return refuse(`LZ4 content is larger than ${maxOutput} bytes`);
    out.set(scratch.subarray(0, produced), written);
    written += produced;
  }
  const data = out.slice(0, written);
  if (hasChecksum && u32(frame, at) !== xxh32(0, data, 0, data.length)) {
    return refuse("LZ4 content checksum mismatch");
  }
  return { ok: true, data };
}
