/**
 * The server's clock as a client sees it, NTP-style: each ping/pong gives
 * offset = server time − midpoint of (sent, received), trustworthy within
 * half the round trip; the sample with the shortest round trip among the
 * recent ones wins.
 */

interface Sample {
  offsetMs: number;
  rttMs: number;
  atMs: number;
}

/**
 * Ping frames (which the server answers with its clock) a view sends after
 * each connect; later keepalives are the text `ping`, which the runtime
 * answers without waking the server's object (docs/streams.md: idle costs
 * almost nothing). Frames' `serverTimeMs` keep the clock current meanwhile.
 */
export const CLOCK_PINGS_PER_CONNECT = 3;

/** Keeps the best recent clock samples. */
export class ClockSync {
  #samples: Sample[] = [];
  #hint: number | null = null;

  constructor(
    private readonly keep = 8,
    private readonly now: () => number = Date.now,
  ) {}

  /** A ping sent at `sentAtMs` (client clock) answered with `serverTimeMs`, received at `receivedAtMs`. */
  sample(sentAtMs: number, serverTimeMs: number, receivedAtMs: number = this.now()): void {
    const rttMs = Math.max(0, receivedAtMs - sentAtMs);
    const offsetMs = serverTimeMs - (sentAtMs + receivedAtMs) / 2;
    this.#samples = [...this.#samples, { offsetMs, rttMs, atMs: receivedAtMs }].slice(-this.keep);
  }

  /** A server time seen without a round trip (a frame's `serverTimeMs`): used only until a ping answers. */
  hint(serverTimeMs: number, receivedAtMs: number = this.now()): void {
    this.#hint ??= serverTimeMs - receivedAtMs;
  }

  /** Server clock minus client clock (ms); 0 before any sample. */
  get offsetMs(): number {
    const best = this.#best();
    return best ? best.offsetMs : (this.#hint ?? 0);
  }

  /** How far the offset may be off: half the best round trip (Infinity before any sample). */
  get uncertaintyMs(): number {
    const best = this.#best();
    return best ? best.rttMs / 2 : Number.POSITIVE_INFINITY;
  }

  /** The server's time now, by the client's clock and the offset. */
  serverNow(): number {
    return this.now() + this.offsetMs;
  }

  #best(): Sample | undefined {
    let best: Sample | undefined;
    for (const s of this.#samples) if (!best || s.rttMs < best.rttMs) best = s;
    return best;
  }
}
