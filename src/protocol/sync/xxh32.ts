/** xxHash32: the checksum of LZ4 frames (their header byte and their content). */

/** Also the multiplier LZ4 hashes 4-byte sequences with. */
export const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;

/** The little-endian unsigned 32-bit word at `at`. */
export const u32 = (b: Uint8Array, at: number) =>
  ((b[at] as number) |
    ((b[at + 1] as number) << 8) |
    ((b[at + 2] as number) << 16) |
    ((b[at + 3] as number) << 24)) >>>
  0;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
const round = (acc: number, input: number) =>
  Math.imul(rotl((acc + Math.imul(input, P2)) | 0, 13), P1);

/** xxHash32 of `length` bytes of `data` from `start` (the checksum of LZ4 frames). */
export function xxh32(data: Uint8Array, start = 0, length = data.length - start, seed = 0): number {
  const end = start + length;
  let at = start;
  let h: number;
  if (length >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    for (const limit = end - 16; at <= limit; at += 16) {
      v1 = round(v1, u32(data, at));
      v2 = round(v2, u32(data, at + 4));
      v3 = round(v3, u32(data, at + 8));
      v4 = round(v4, u32(data, at + 12));
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + P5) | 0;
  }
  h = (h + length) | 0;
  for (; at + 4 <= end; at += 4)
    h = Math.imul(rotl((h + Math.imul(u32(data, at), P3)) | 0, 17), P4);
  for (; at < end; at++) h = Math.imul(rotl((h + Math.imul(data[at] as number, P5)) | 0, 11), P1);
  h = Math.imul(h ^ (h >>> 15), P2);
  h = Math.imul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}
