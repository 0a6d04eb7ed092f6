/**
 * Bytes on the wire per progress update, for the same updates watched three
 * ways at once: JSON frames, binary protobuf frames, and the sync channel
 * (binary deltas, periodic full syncs included).
 */
import WebSocket from "ws";
import { round } from "./stats.ts";
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
}

/** Counts bytes of every message after the first (the snapshot or first full sync). */
function listen(url: string, headers: Record<string, string>, protocol?: string) {
  const socket = new WebSocket(url, protocol ? [protocol] : [], { headers });
  const sizes: number[] = [];
  const opened = new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  socket.on("message", (data: Buffer) => sizes.push(data.length));
  return { socket, sizes, opened };
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
  await Promise.all([json.opened, binary.opened, sync.opened]);
  await sleep(300);
  const interval = 1000 / ratePerS;
  const started = performance.now();
  for (let n = 1; n <= updates; n++) {
    const wait = started + (n - 1) * interval - performance.now();
    if (wait > 0) await sleep(wait);
    await room.post(1000 + n);
  }
  await sleep(500);
  for (const s of [json, binary, sync]) s.socket.close();
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
  };
}
