/**
 * The soak's last check (bench/soak.ts): with every client gone, each
 * player can open their full quota of streams again — no slot leaked by a
 * drop, a resume or a runtime killed mid-stream.
 */
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket from "ws";

/** How many of `quota` streams a fresh batch on a player's session cannot get. */
async function slotsRefused(
  wsBase: string,
  s: { sessionId: string; bearer: string },
  quota: number,
): Promise<number> {
  const opened: WebSocket[] = [];
  let refused = 0;
  for (let i = 0; i < quota; i++) {
    const ws = new WebSocket(`${wsBase}/ws/crafting/${s.sessionId}`, ["crafting.v1.json"], {
      headers: { Authorization: `Bearer ${s.bearer}` },
    });
    // A handshake not answered within 10 s counts as refused (and is given up), never waited on for good.
    const ok = await new Promise<boolean>((resolve) => {
      const late = setTimeout(() => {
        ws.terminate();
        resolve(false);
      }, 10_000);
      const settle = (opened: boolean) => {
        clearTimeout(late);
        resolve(opened);
      };
      ws.once("open", () => settle(true));
      ws.once("unexpected-response", () => settle(false));
      ws.once("error", () => settle(false));
    });
    if (ok) opened.push(ws);
    else refused++;
  }
  await Promise.all(
    opened.map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.once("close", () => resolve());
          ws.close(1000);
          setTimeout(resolve, 1_000);
        }),
    ),
  );
  return refused;
}

/**
 * Slots still held once clients left, per session's player, waiting up to
 * `withinMs` for them to come back (an RPC stream whose caller vanished is
 * noticed at its next keepalive, 25 s without a message).
 */
export async function leakedSlots(
  wsBase: string,
  sessions: readonly { sessionId: string; bearer: string }[],
  quota: number,
  withinMs: number,
): Promise<{ leaked: number; notes: string[] }> {
  const by = Date.now() + withinMs;
  let leaked = 0;
  const notes: string[] = [];
  for (const s of sessions) {
    for (;;) {
      const refused = await slotsRefused(wsBase, s, quota);
      if (refused === 0) break;
      if (Date.now() > by) {
        leaked += refused;
        notes.push(`${s.sessionId}: ${refused} of ${quota} slots still held`);
        break;
      }
      await sleep(2_000);
    }
  }
  return { leaked, notes };
}
