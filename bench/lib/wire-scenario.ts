/**
 * Bytes on the wire per progress update, for the same updates watched three
 * ways at once: JSON frames, binary protobuf frames, and the sync channel
 * (binary deltas, periodic full syncs included). Then, as a browser would
 * (browsers always offer permessage-deflate, RFC 7692), JSON and binary
 * watchers that offer compression: whether the runtime negotiates it, and
 * the bytes each update then takes on the TCP connection, beside the same
 * count for watchers that do not offer it.
 */
import WebSocket from "ws";
import { round } from "./stats.ts";
import type { SyncWork } from "./sync-work.ts";
import type { Target } from "./targets.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface WireResult {
  updates: number;
  updates_per_s: number;
  json_bytes_per_update: number;
  binary_bytes_per_update: number;
  sync_bytes_per_update: number;
  /** Largest sync packet that was a delta (the ≤ 32 B target). */
  sync_max_delta_bytes: number;
  bytes_per_s_per_session: { json: number; binary: number; sync: number };
  /** Watchers offering permessage-deflate, as browsers do. */
  compression: CompressionResult;
  /** The server's work per sync packet (seed 001: < 1 ms), timed in V8 (sync-work.ts). */
  sync_server?: SyncWork;
}

/** Bytes per update on the TCP connection (WebSocket framing included), offered compression or not. */
export interface CompressionResult {
  /** The extension the runtime agreed to ("" when it refused). */
  negotiated: string;
  json_wire_bytes_per_update: number;
  binary_wire_bytes_per_update: number;
  json_wire_bytes_per_update_uncompressed: number;
  binary_wire_bytes_per_update_uncompressed: number;
}

/**
 * Counts bytes of every message after the first (the snapshot or first full
 * sync); `wireBytes` reads the bytes the TCP connection has received.
 */
function listen(
  url: string,
  headers: Record<string, string>,
  protocol?: string,
  perMessageDeflate = false,
) {
  const socket = new WebSocket(url, protocol ? [protocol] : [], { headers, perMessageDeflate });
  const wireBytes = () =>
    (socket as unknown as { _socket?: { bytesRead: number } })._socket?.bytesRead ?? 0;
  const sizes: number[] = [];
  const opened = new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  socket.on("message", (data: Buffer) => sizes.push(data.length));
  return { socket, sizes, opened, wireBytes };
}

export async function wireSizes(
  target: Target,
  updates: number,
  ratePerS: number,
): Promise<WireResult> {
  const room = await target.room(`wire-${crypto.randomUUID().slice(0, 8)}`);
  const sessionId = room.wsUrl.split("/").at(-1) as string;
  const offer = (await (
    await fetch(`${target.baseUrl}/udp/sessions/${sessionId}/connect`, {
      method: "POST",
      headers: { ...room.wsHeaders, "Content-Type": "application/json" },
      body: JSON.stringify({
        packet_size: 1200,
        lz4: true,
        delta: true,
        full_sync_interval_ms: 10_000,
      }),
    })
  ).json()) as { token: string; url: string };
  const json = listen(room.wsUrl, room.wsHeaders);
  const binary = listen(room.wsUrl, room.wsHeaders, "crafting.v1.bin");
  const sync = listen(
    `${target.baseUrl.replace("http", "ws")}${offer.url}`,
    { Authorization: `Bearer ${offer.token}` },
    "crafting.sync.v1",
  );
  const offering = {
    json: listen(room.wsUrl, room.wsHeaders, undefined, true),
    binary: listen(room.wsUrl, room.wsHeaders, "crafting.v1.bin", true),
  };
  const watchers = [json, binary, sync, offering.json, offering.binary];
  await Promise.all(watchers.map((w) => w.opened));
  await sleep(300);
  const wireBefore = new Map(watchers.map((w) => [w, w.wireBytes()]));
  const onWire = (w: (typeof watchers)[number]) =>
    round((w.wireBytes() - (wireBefore.get(w) ?? 0)) / updates, 1);
  const interval = 1000 / ratePerS;
  const started = performance.now();
  for (let n = 1; n <= updates; n++) {
    const wait = started + (n - 1) * interval - performance.now();
    if (wait > 0) await sleep(wait);
    await room.post(1000 + n);
  }
  await sleep(500);
  // Read before the close frames arrive.
  const compression: CompressionResult = {
    // Checked, not assumed: both offering watchers must have been granted the same.
    negotiated:
      offering.json.socket.extensions === offering.binary.socket.extensions
        ? offering.json.socket.extensions
        : `json: ${offering.json.socket.extensions}; binary: ${offering.binary.socket.extensions}`,
    json_wire_bytes_per_update: onWire(offering.json),
    binary_wire_bytes_per_update: onWire(offering.binary),
    json_wire_bytes_per_update_uncompressed: onWire(json),
    binary_wire_bytes_per_update_uncompressed: onWire(binary),
  };
  for (const w of watchers) w.socket.close();
  const perUpdate = (sizes: number[]) =>
    round(sizes.slice(1).reduce((a, b) => a + b, 0) / updates, 1);
  // Full syncs carry the steps' names: the smallest packets are the deltas.
  const syncDeltas = sync.sizes.slice(1).filter((size) => size < 64);
  const result = {
    json: perUpdate(json.sizes),
    binary: perUpdate(binary.sizes),
    sync: perUpdate(sync.sizes),
  };
  return {
    updates,
    updates_per_s: ratePerS,
    json_bytes_per_update: result.json,
    binary_bytes_per_update: result.binary,
    sync_bytes_per_update: result.sync,
    sync_max_delta_bytes: syncDeltas.length ? Math.max(...syncDeltas) : 0,
    bytes_per_s_per_session: {
      json: Math.round(result.json * ratePerS),
      binary: Math.round(result.binary * ratePerS),
      sync: Math.round(result.sync * ratePerS),
    },
    compression,
  };
}
