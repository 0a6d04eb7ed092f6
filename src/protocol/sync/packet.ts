/**
 * Packets of the sync channel: a compact header carrying UdpPacketHeader's
 * fields, then the payload. Self-contained, so the same bytes could ride a
 * datagram. Layout (varint = unsigned LEB128):
 *
 *   byte 0   version (high 4 bits, = 1) | flags (low 4 bits: 1 FULL, 2 DELTA, 4 LZ4, 8 PART)
 *   varint   seq
 *   varint   seq - base_seq                    (DELTA only)
 *   varint   server time, ms since the channel's time base
 *   varint   part index, varint part count     (PART only)
 *   varint   payload length (exactly the bytes that follow)
 *   bytes    payload
 *
 * A payload that does not fit the negotiated packet size is split into
 * parts of equal size (the last shorter), each a packet with the same seq,
 * flags and time plus PART; the client joins them in index order when all
 * have arrived, and drops the seq if a newer one starts first.
 */

/** The header's fields. */
export interface PacketHeader {
  version: number;
  flags: number;
  seq: number;
  /** Delta packets: the full sync's seq it applies to. */
  baseSeq: number;
  serverTimeMs: number;
  partIndex: number;
  partCount: number;
  length: number;
}

export const PACKET_VERSION = 1;
export const FLAG = { FULL: 1, DELTA: 2, LZ4: 4, PART: 8 } as const;
/** Negotiable packet sizes (seed 001). */
export const PACKET_SIZE = { min: 64, max: 64 * 1024 } as const;
/** Most parts one payload may be split into. */
export const MAX_PARTS = 16_383;

/** Writes `value` as an unsigned LEB128 varint. */
function writeVarint(out: number[], value: number): void {
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** The header's bytes. */
export function encodeHeader(header: Omit<PacketHeader, "version">): Uint8Array {
  const out: number[] = [(PACKET_VERSION << 4) | (header.flags & 0x0f)];
  writeVarint(out, header.seq);
  if (header.flags & FLAG.DELTA) writeVarint(out, header.seq - header.baseSeq);
  writeVarint(out, header.serverTimeMs);
  if (header.flags & FLAG.PART) {
    writeVarint(out, header.partIndex);
    writeVarint(out, header.partCount);
  }
  writeVarint(out, header.length);
  return Uint8Array.from(out);
}

/** One packet: header then payload. */
function packet(header: Omit<PacketHeader, "version" | "length">, payload: Uint8Array): Uint8Array {
  const head = encodeHeader({ ...header, length: payload.length });
  const bytes = new Uint8Array(head.length + payload.length);
  bytes.set(head);
  bytes.set(payload, head.length);
  return bytes;
}

/** What a packet of this channel says before its payload. */
export type PacketFields = Pick<PacketHeader, "flags" | "seq" | "baseSeq" | "serverTimeMs">;

/** The packets carrying `payload`, none larger than `packetSize`. */
export function packetize(
  fields: PacketFields,
  payload: Uint8Array,
  packetSize: number,
): Uint8Array[] {
  const whole = packet({ ...fields, partIndex: 0, partCount: 1 }, payload);
  if (whole.length <= packetSize) return [whole];
  const flags = fields.flags | FLAG.PART;
  const reserve = encodeHeader({
    ...fields,
    flags,
    partIndex: MAX_PARTS,
    partCount: MAX_PARTS,
    length: packetSize,
  }).length;
  const chunk = packetSize - reserve;
  const partCount = Math.ceil(payload.length / chunk);
  if (chunk < 1 || partCount > MAX_PARTS) {
    throw new RangeError(
      `a ${payload.length}-byte payload does not fit ${MAX_PARTS} packets of ${packetSize} bytes`,
    );
  }
  return Array.from({ length: partCount }, (_, partIndex) =>
    packet(
      { ...fields, flags, partIndex, partCount },
      payload.subarray(partIndex * chunk, (partIndex + 1) * chunk),
    ),
  );
}

/** A decoded packet, or why it is not one. */
export type DecodedPacket =
  | { ok: true; header: PacketHeader; payload: Uint8Array }
  | { ok: false; reason: string };

/** Reads a packet; anything malformed or truncated is a reason, never a throw. */
export function decodePacket(bytes: Uint8Array): DecodedPacket {
  let at = 0;
  const varint = (): number | null => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = bytes[at++];
      if (byte === undefined) return null;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 0x80;
    }
    return null;
  };
  const first = bytes[at++];
  if (first === undefined) return { ok: false, reason: "empty packet" };
  const version = first >> 4;
  const flags = first & 0x0f;
  if (version !== PACKET_VERSION)
    return { ok: false, reason: `unsupported packet version ${version}` };
  if (flags & FLAG.FULL && flags & FLAG.DELTA)
    return { ok: false, reason: "a packet cannot be both full and delta" };
  const seq = varint();
  const back = flags & FLAG.DELTA ? varint() : 0;
  const serverTimeMs = varint();
  const partIndex = flags & FLAG.PART ? varint() : 0;
  const partCount = flags & FLAG.PART ? varint() : 1;
  const length = varint();
  if (
    seq === null ||
    back === null ||
    serverTimeMs === null ||
    partIndex === null ||
    partCount === null ||
    length === null
  ) {
    return { ok: false, reason: "truncated header" };
  }
  if (back > seq) return { ok: false, reason: "base seq after seq" };
  if (partCount < 1 || partCount > MAX_PARTS || partIndex >= partCount)
    return { ok: false, reason: "bad part numbers" };
  if (length !== bytes.length - at) {
    return { ok: false, reason: `payload length ${length} but ${bytes.length - at} bytes follow` };
  }
  return {
    ok: true,
    header: {
      version,
      flags,
      seq,
      baseSeq: seq - back,
      serverTimeMs,
      partIndex,
      partCount,
      length,
    },
    payload: bytes.subarray(at),
  };
}

/** Joins the parts of split payloads; a newer seq abandons an incomplete older one. */
export class Reassembler {
  #seq = -1;
  #parts: (Uint8Array | undefined)[] = [];
  #received = 0;

  /** The whole payload once every part of its seq arrived (header without PART), else null. */
  add(
    header: PacketHeader,
    payload: Uint8Array,
  ): { header: PacketHeader; payload: Uint8Array } | null {
    if (!(header.flags & FLAG.PART)) return { header, payload };
    if (header.seq !== this.#seq || this.#parts.length !== header.partCount) {
      if (header.seq < this.#seq) return null;
      this.#seq = header.seq;
      this.#parts = new Array(header.partCount);
      this.#received = 0;
    }
    if (this.#parts[header.partIndex] === undefined) this.#received++;
    this.#parts[header.partIndex] = payload.slice();
    if (this.#received < header.partCount) return null;
    const total = this.#parts.reduce((sum, part) => sum + (part?.length ?? 0), 0);
    const joined = new Uint8Array(total);
    let offset = 0;
    for (const part of this.#parts) {
      joined.set(part as Uint8Array, offset);
      offset += (part as Uint8Array).length;
    }
    this.#seq = -1;
    this.#parts = [];
    return {
      header: {
        ...header,
        flags: header.flags & ~FLAG.PART,
        partIndex: 0,
        partCount: 1,
        length: total,
      },
      payload: joined,
    };
  }
}
