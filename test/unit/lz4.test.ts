/**
 * LZ4 frames across block boundaries, stored blocks and the checksum, as
 * the lz4 CLI writes and reads them; and xxHash32's published vectors.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lz4Compress, lz4Decompress } from "../../src/protocol/sync/lz4";
import { xxh32 } from "../../src/protocol/sync/xxh32";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("xxHash32", () => {
  it("gives the reference implementation's values", () => {
    expect(xxh32(new Uint8Array(0))).toBe(0x02cc5d05);
    expect(xxh32(bytes("abc"))).toBe(0x32d153ff);
    expect(xxh32(bytes("Nobody inspects the spammish repetition"))).toBe(0xe2293b2f);
    expect(xxh32(bytes("abc"), 0, 3, 1)).not.toBe(0x32d153ff);
  });
});

describe("LZ4 frames of more than one block", () => {
  const dir = mkdtempSync(join(tmpdir(), "lz4-blocks-"));
  // 200 KB: four 64 KB blocks; the first half repeats, the second is noise (stored raw).
  const data = new Uint8Array(200_000);
  data.set(bytes("forge:iron-ingot;".repeat(6_000)).subarray(0, 100_000));
  let seed = 7;
  for (let i = 100_000; i < data.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    data[i] = seed >>> 24;
  }

  it("round-trip, compress what repeats and store what does not", () => {
    const frame = lz4Compress(data);
    expect(lz4Decompress(frame)).toEqual({ ok: true, data });
    expect(frame.length).toBeLessThan(100_000 + 10_000);
    expect(frame.length).toBeGreaterThan(100_000);
  });

  it("are read by the lz4 CLI, and read what it writes with linked blocks", () => {
    writeFileSync(join(dir, "ours.lz4"), lz4Compress(data));
    execFileSync("lz4", ["-d", "-f", "-q", join(dir, "ours.lz4"), join(dir, "ours.out")]);
    expect(new Uint8Array(readFileSync(join(dir, "ours.out")))).toEqual(data);
    writeFileSync(join(dir, "plain"), data);
    for (const flags of [["-B4", "-BD"], ["-B5"], ["-B4", "--no-frame-crc", "-9"]]) {
      execFileSync("lz4", ["-f", "-q", ...flags, join(dir, "plain"), join(dir, "cli.lz4")]);
      const decoded = lz4Decompress(new Uint8Array(readFileSync(join(dir, "cli.lz4"))));
      expect(decoded, flags.join(" ")).toEqual({ ok: true, data });
    }
  });

  it("refuse content over the limit before writing past it", () => {
    const frame = lz4Compress(data);
    expect(lz4Decompress(frame, 150_000)).toEqual({
      ok: false,
      reason: "LZ4 content is larger than 150000 bytes",
    });
    expect(lz4Decompress(frame, 200_000).ok).toBe(true);
  });
});
