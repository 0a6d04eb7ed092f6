/**
 * The server's work for one sync-channel packet (seed 001: compact sync
 * < 1 ms server-side), timed in this process's V8, the engine workerd
 * runs: `encodeSync` for a delta and for a full sync (LZ4 on, as
 * negotiated by default), over states a session really passes through.
 * Bundled by sync-cost.ts, since it imports the service's own code. The
 * runtime's send and the socket attachment write are not in it.
 */
import type { Session } from "../../src/domain/session/session.ts";
import { transition } from "../../src/domain/session/session-machine.ts";
import { encodeSync, openChannel } from "../../src/protocol/sync/sync-encoder.ts";
import { round } from "./stats.ts";

export interface SyncWork {
  rounds: number;
  delta_us: number;
  full_us: number;
  delta_bytes: number;
  full_bytes: number;
}

/** A running session with two steps and three materials, then `count` progress corrections. */
function statesOf(count: number): Session[] {
  const atMs = Date.now();
  const created = transition(null, {
    type: "create",
    params: {
      sessionId: "sync-cost",
      playerId: "p-1",
      recipeId: "iron-sword",
      workflowId: null,
      steps: [
        { name: "smelt", durationMs: 600_000 },
        { name: "forge", durationMs: 600_000 },
      ],
      materials: ["iron-ore", "coal", "oak-plank"].map((materialId) => ({
        materialId,
        required: 4,
      })),
    },
    epoch: 7,
    atMs,
  });
  if (!created.ok) throw new Error(created.error.message);
  const started = transition(created.state, { type: "lifecycle", action: "start", atMs });
  if (!started.ok) throw new Error(started.error.message);
  const states = [started.state as Session];
  for (let i = 1; i < count; i++) {
    const next = transition(states[i - 1] as Session, {
      type: "progress",
      correction: { elapsedMs: i * 997 },
      atMs: atMs + i,
    });
    if (!next.ok) throw new Error(next.error.message);
    states.push(next.state as Session);
  }
  return states;
}

/** µs per packet, each kind timed over `rounds` encodes after a warm-up. */
export function syncWork(rounds: number): SyncWork {
  const states = statesOf(1000);
  const options = { packetSize: 1200, delta: true, lz4: true, fullSyncIntervalMs: 10_000 };
  const at = Date.now();
  const { channel } = encodeSync(openChannel(options, at), states[0] as Session, at);
  const time = (forceFull: boolean) => {
    let bytes = 0;
    const encode = (i: number) => {
      const { packets } = encodeSync(channel, states[i % states.length] as Session, at, forceFull);
      bytes = packets.reduce((sum, p) => sum + p.length, 0);
    };
    for (let i = 0; i < 500; i++) encode(i);
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) encode(i);
    return { us: ((performance.now() - t0) / rounds) * 1000, bytes };
  };
  const delta = time(false);
  const full = time(true);
  return {
    rounds,
    delta_us: round(delta.us),
    full_us: round(full.us),
    delta_bytes: delta.bytes,
    full_bytes: full.bytes,
  };
}
