/** The sync channel's codecs: state deltas, bit-packing, packets, LZ4 (with the Debian `lz4` CLI). */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SessionStatus } from "../../src/gen/crafting/v1/session_pb";
import { SyncDeltaSchema, SyncStateSchema } from "../../src/gen/crafting/v1/sync_pb";
import { crc32 } from "../../src/protocol/sync/crc32";
import { lz4Compress, lz4Decompress } from "../../src/protocol/sync/lz4";
import {
  decodePacket,
  encodeHeader,
  FLAG,
  PACKET_SIZE,
  packetize,
  Reassembler,
} from "../../src/protocol/sync/packet";
import {
  applyDelta,
  availableBits,
  bitAt,
  diffState,
  packBits,
  sameState,
  stateChecksum,
} from "../../src/protocol/sync/sync-state";

const state = (materials: number) =>
  fc
    .record({
      status: fc.integer({ min: 1, max: 6 }),
      anchorAtMs: fc.bigInt({ min: 0n, max: 4_000_000_000_000n }),
      anchorElapsedMs: fc.integer({ min: 0, max: 604_800_000 }),
      rate: fc.double({ min: 0.01, max: 100, noNaN: true }),
      running: fc.boolean(),
      materialQuantities: fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), {
        minLength: materials,
        maxLength: materials,
      }),
      failureReason: fc.string({ maxLength: 40 }),
    })
    .map((fields) => create(SyncStateSchema, fields));

const pair = fc
  .integer({ min: 0, max: 70 })
  .chain((n) => fc.tuple(state(n), state(n), fc.array(fc.nat(20), { minLength: n, maxLength: n })));

describe("state deltas", () => {
  it("apply(diff(a, b), a) equals b, for any two states", () => {
    fc.assert(
      fc.property(pair, ([a, b, required]) => {
        const delta = diffState(a, b, required);
        const applied = applyDelta(a, delta);
        if (!applied) throw new Error("a delta did not apply to its own base");
        expect(sameState(applied, b)).toBe(true);
        expect(stateChecksum(applied)).toBe(delta.checksum);
      }),
      { numRuns: 500 },
    );
  });

  it("carries only what changed: a steady-state progress delta is a few bytes", () => {
    const base = create(SyncStateSchema, {
      status: SessionStatus.ACTIVE,
      anchorAtMs: 1_795_000_000_000n,
      anchorElapsedMs: 12_000,
      rate: 1,
      running: true,
      materialQuantities: [3, 1, 4],
    });
    const next = create(SyncStateSchema, {
      ...base,
      anchorAtMs: base.anchorAtMs + 1_500n,
      anchorElapsedMs: 13_500,
    });
    const delta = diffState(base, next, [3, 1, 4]);
    expect(delta).toMatchObject({
      anchorAtDeltaMs: 1_500n,
      anchorElapsedDeltaMs: 1_500,
      changedMaterials: new Uint8Array(),
    });
    expect(delta.status).toBeUndefined();
    expect(toBinary(SyncDeltaSchema, delta).length).toBeLessThanOrEqual(12);
    expect(diffState(base, base, [3, 1, 4]).quantityChanges).toEqual([]);
  });

  it("detects drift by checksum", () => {
    fc.assert(
      fc.property(pair, ([a, b, required]) => {
        fc.pre(!sameState(a, b));
        const delta = diffState(a, b, required);
        // Applied to the wrong base, the result is impossible or its checksum gives it away.
        const wrong = applyDelta(b, delta);
        if (wrong) expect(stateChecksum(wrong) === delta.checksum).toBe(sameState(wrong, b));
      }),
      { numRuns: 200 },
    );
  });
});

describe("bit-packing", () => {
  it("round-trips any bitset, LSB first, without trailing zero bytes", () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 200 }), (bits) => {
        const packed = packBits(bits.length, (i) => bits[i] as boolean);
        expect(bits.map((_, i) => bitAt(packed, i))).toEqual(bits);
        expect(packed.length === 0 || packed[packed.length - 1] !== 0).toBe(true);
        expect(packed.length).toBeLessThanOrEqual(Math.ceil(bits.length / 8));
      }),
    );
    expect([...packBits(10, (i) => i === 0 || i === 9)]).toEqual([0b1, 0b10]);
    expect([...availableBits([3, 0, 5], [3, 1, 6])]).toEqual([0b001]);
  });

  it("computes the standard CRC-32", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });
});

describe("packets", () => {
  const fields = fc.record({
    flags: fc.constantFrom(FLAG.FULL, FLAG.DELTA, FLAG.FULL | FLAG.LZ4, FLAG.DELTA | FLAG.LZ4, 0),
    seq: fc.integer({ min: 1, max: 0xffff_ffff }),
    back: fc.integer({ min: 0, max: 1000 }),
    serverTimeMs: fc.integer({ min: 0, max: 2 ** 40 }),
  });

  it("never exceed the packet size, and reassemble to the payload in any part order", () => {
    fc.assert(
      fc.property(
        fields,
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: PACKET_SIZE.min, max: 1500 }),
        fc.nat(),
        ({ flags, seq, back, serverTimeMs }, payload, size, seed) => {
          const baseSeq = flags & FLAG.DELTA ? Math.max(0, seq - back) : seq;
          const packets = packetize({ flags, seq, baseSeq, serverTimeMs }, payload, size);
          for (const p of packets) expect(p.length).toBeLessThanOrEqual(size);
          const shuffled = packets
            .map((p, i) => ({ p, k: (i * 7919 + seed) % 104_729 }))
            .sort((x, y) => x.k - y.k);
          const joiner = new Reassembler();
          const done = shuffled
            .map(({ p }) => {
              const decoded = decodePacket(p);
              if (!decoded.ok) throw new Error(decoded.reason);
              return joiner.add(decoded.header, decoded.payload);
            })
            .filter((r) => r !== null);
          expect(done).toHaveLength(1);
          expect(done[0]?.payload).toEqual(payload);
          expect(done[0]?.header).toMatchObject({
            seq,
            flags,
            serverTimeMs,
            ...(flags & FLAG.DELTA ? { baseSeq } : {}),
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("keeps a delta's header small", () => {
    const header = encodeHeader({
      flags: FLAG.DELTA,
      seq: 40_000,
      baseSeq: 39_990,
      serverTimeMs: 3_600_000,
      partIndex: 0,
      partCount: 1,
      length: 12,
    });
    expect(header.length).toBeLessThanOrEqual(10);
  });

  it("decode random and truncated bytes to a reason, never an exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const decoded = decodePacket(bytes);
        if (decoded.ok) expect(decoded.payload.length).toBe(decoded.header.length);
      }),
      { numRuns: 2000 },
    );
    const good = packetize(
      { flags: FLAG.FULL, seq: 9, baseSeq: 9, serverTimeMs: 5 },
      new Uint8Array([1, 2, 3]),
      64,
    )[0] as Uint8Array;
    for (let cut = 0; cut < good.length; cut++)
      expect(decodePacket(good.subarray(0, cut)).ok).toBe(false);
    expect(decodePacket(Uint8Array.of(0x23, 1, 1, 0))).toEqual({
      ok: false,
      reason: "unsupported packet version 2",
    });
  });

  it("drops an incomplete payload when a newer seq starts", () => {
    const joiner = new Reassembler();
    const old = packetize(
      { flags: FLAG.FULL, seq: 5, baseSeq: 5, serverTimeMs: 0 },
      new Uint8Array(200),
      64,
    );
    const next = packetize(
      { flags: FLAG.FULL, seq: 6, baseSeq: 6, serverTimeMs: 0 },
      new Uint8Array(10),
      64,
    );
    const decode = (p: Uint8Array) => {
      const d = decodePacket(p);
      if (!d.ok) throw new Error(d.reason);
      return d;
    };
    const first = decode(old[0] as Uint8Array);
    expect(joiner.add(first.header, first.payload)).toBeNull();
    const whole = decode(next[0] as Uint8Array);
    expect(joiner.add(whole.header, whole.payload)?.header.seq).toBe(6);
    const late = decode(old[1] as Uint8Array);
    expect(joiner.add(late.header, late.payload)).toBeNull();
  });
});

describe("LZ4 frames", () => {
  const dir = mkdtempSync(join(tmpdir(), "lz4-interop-"));
  const text = new TextEncoder().encode(`${"iron-ore ".repeat(500)}the end`);

  it("round-trip, and shrink what repeats", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (data) => {
        const back = lz4Decompress(lz4Compress(data));
        expect(back).toEqual({ ok: true, data });
      }),
      { numRuns: 200 },
    );
    expect(lz4Compress(text).length).toBeLessThan(text.length / 10);
  });

  it("are read by the lz4 CLI, and read what it writes", () => {
    writeFileSync(join(dir, "ours.lz4"), lz4Compress(text));
    execFileSync("lz4", ["-d", "-f", "-q", join(dir, "ours.lz4"), join(dir, "ours.out")]);
    expect(new Uint8Array(readFileSync(join(dir, "ours.out")))).toEqual(text);

    writeFileSync(join(dir, "plain"), text);
    for (const flags of [[], ["--content-size"], ["--no-frame-crc"], ["-9"], ["-B4"]]) {
      execFileSync("lz4", ["-f", "-q", ...flags, join(dir, "plain"), join(dir, "cli.lz4")]);
      const decoded = lz4Decompress(new Uint8Array(readFileSync(join(dir, "cli.lz4"))));
      expect(decoded, flags.join(" ")).toEqual({ ok: true, data: text });
    }
  });

  it("refuse a frame with block checksums, and a corrupted one", () => {
    execFileSync("lz4", ["-f", "-q", "-BX", join(dir, "plain"), join(dir, "blocksum.lz4")]);
    expect(lz4Decompress(new Uint8Array(readFileSync(join(dir, "blocksum.lz4"))))).toEqual({
      ok: false,
      reason: "LZ4 frames with block checksums are not supported",
    });
    const frame = lz4Compress(text);
    const flipped = frame.slice();
    flipped[20] = (flipped[20] as number) ^ 0xff;
    expect(lz4Decompress(flipped).ok).toBe(false);
    expect(lz4Decompress(frame.subarray(0, frame.length - 5)).ok).toBe(false);
    expect(lz4Decompress(lz4Compress(new Uint8Array(5000)), 4000)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/larger than 4000/),
    });
  });

  it("decode random bytes to a reason, never an exception", () => {
    const valid = lz4Compress(text);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(valid.length - 1), (noise, at) => {
        lz4Decompress(noise);
        const damaged = valid.slice();
        damaged.set(noise.subarray(0, Math.min(noise.length, valid.length - at)), at);
        const result = lz4Decompress(damaged);
        if (result.ok) expect(result.data).toEqual(text);
      }),
      { numRuns: 500 },
    );
  });
});

describe("inbound binary client frames", () => {
  it("decode random and truncated bytes to an error value, never an exception", async () => {
    const { decodeClientFrame } = await import("../../src/protocol/stream-codec");
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const decoded = decodeClientFrame("binary", bytes.slice().buffer);
        if (!decoded.ok) expect(decoded.error.code).toBe("invalid_argument");
      }),
      { numRuns: 3000 },
    );
  });
});
