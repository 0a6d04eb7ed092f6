/**
 * The soak's crafting-service on the ingest stream (src/client/ingest.ts,
 * the package's `client/ingest`): progress for a share of the HTTP
 * sessions over one stream, which every kill of the runtime drops. Every
 * correction must be answered and none refused: the client sends again
 * what a drop left unanswered, so a correction lost to a kill shows here.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { IngestClient, type IngestError } from "../../src/client/ingest.ts";
import type { SoakSession } from "./soak-sessions.ts";
import { token } from "./targets.ts";

/** How often each of its sessions is sent a correction. */
const EVERY_MS = 200;

export class SoakIngest {
  sent = 0;
  applied = 0;
  refused = 0;
  /** The first few refusals, as `session: code message`. */
  readonly notes: string[] = [];
  readonly #client: IngestClient;
  readonly #answers: Promise<void>[] = [];

  /** `elapsedMs`: where the sessions stand now (each correction says it). */
  constructor(
    baseUrl: string,
    private readonly sessions: readonly SoakSession[],
    private readonly elapsedMs: () => number,
  ) {
    this.#client = new IngestClient({
      baseUrl,
      token: () => token("crafting-service", "service"),
      // Back within a second or two of a restart, as the soak's other clients are.
      backoff: { baseMs: 100, capMs: 2_000 },
    });
  }

  /** Sends each session a correction every 200 ms until `stopped`. */
  async run(stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      for (const s of this.sessions) this.#send(s);
      await sleep(EVERY_MS);
    }
  }

  /** Waits up to `ms` for every answer, then closes: how many were refused, and never answered. */
  async settle(ms: number): Promise<{ refused: number; unanswered: number }> {
    await Promise.race([Promise.allSettled(this.#answers), sleep(ms)]);
    const settled = { refused: this.refused, unanswered: this.sent - this.applied - this.refused };
    this.#client.close();
    return settled;
  }

  #send(s: SoakSession): void {
    this.sent++;
    const answer = this.#client.send({ session_id: s.sessionId, elapsed_ms: this.elapsedMs() });
    this.#answers.push(
      answer.then(
        () => {
          this.applied++;
        },
        (error: IngestError) => {
          this.refused++;
          if (this.notes.length < 10)
            this.notes.push(`${error.sessionId}: ${error.code} ${error.message}`);
        },
      ),
    );
  }
}
