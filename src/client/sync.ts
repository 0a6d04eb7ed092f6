/**
 * The compact sync channel from the client side: negotiates
 * (`POST /udp/sessions/{id}/connect`) on every (re)connect, so each
 * connection gets a fresh sync token, then applies packets with
 * `SyncReceiver` and asks for a full sync whenever it must.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { CloseCode, type ErrorCode, REFUSAL_CLOSE_CODES } from "../errors";
import { SessionStatus } from "../gen/crafting/v1/session_pb";
import { SyncRequestSchema, type SyncState } from "../gen/crafting/v1/sync_pb";
import { sessionEndedOnWire } from "../protocol/session-wire";
import { SyncReceiver } from "../protocol/sync/sync-receiver";
import { serviceBases } from "./base-url";
import { ClockSync } from "./clock";
import {
  Connection,
  type ConnectionState,
  RefusedError,
  type StateChange,
  tuningOf,
} from "./connection";
import { Emitter } from "./emitter";
import { endedReason } from "./ended";
import { ProgressPredictor } from "./predict";
import { idSegment, type ViewStreamOptions } from "./view-stream";

/**
 * The sync channel's settings: the service, the player's token (the sync
 * token is negotiated with it) and the connection's settings, as every
 * view's.
 */
export interface SyncViewOptions extends ViewStreamOptions {
  packetSize?: number;
  delta?: boolean;
  lz4?: boolean;
  fullSyncIntervalMs?: number;
  fetch?: typeof fetch;
  /** The connection's state; `code` and `reason` say why it closed or is reconnecting (or listen to `state`). */
  onState?: (state: ConnectionState, detail: Omit<StateChange, "state">) => void;
  /** Called with every state applied, full or delta (or listen to `change`). */
  onChange?: (state: SyncState, seq: number) => void;
}

/** Events of the sync channel's view, as every view names them. */
export interface SyncViewEvents {
  /** Every state applied (full or delta). */
  change: SyncState;
  /** The connection's state. */
  state: StateChange;
}

/** A session over the sync channel. */
export class SyncView extends Emitter<SyncViewEvents> {
  readonly receiver = new SyncReceiver();
  readonly #connection: Connection;
  readonly #predictor = new ProgressPredictor();
  /** The server's clock, from the packets' server times (one-way: a hint). */
  readonly clock = new ClockSync();
  #url = "";
  /** The service's base URLs (http for negotiating, ws for the stream). */
  readonly #bases: { http: string; ws: string };
  /** The session's id in the negotiation's path. */
  readonly #segment: string;
  /** Bytes received (for measuring). */
  bytes = 0;

  constructor(
    readonly sessionId: string,
    private readonly options: SyncViewOptions,
  ) {
    super();
    this.#bases = serviceBases(options.baseUrl);
    this.#segment = idSegment("sessionId", sessionId);
    this.#connection = new Connection({
      // Negotiating yields the URL and the token: one call per connect.
      url: () => this.#url,
      token: async () => {
        const offer = await this.#negotiate();
        this.#url = `${this.#bases.ws}${offer.url}`;
        return offer.token;
      },
      protocols: ["crafting.sync.v1"],
      ...tuningOf(options),
      onMessage: (data) => this.#receive(data),
      endedReason: () =>
        this.ended && this.state ? endedReason("session", SessionStatus[this.state.status]) : null,
      onState: (state, detail) => {
        options.onState?.(state, detail);
        this.emit("state", { state, ...detail });
      },
    });
    // The URL is known only after negotiating: negotiate first, then connect.
    this.#connection.start();
  }

  /** The connection's state (`state` is the session's). */
  get connection(): ConnectionState {
    return this.#connection.state;
  }

  /** The session's dynamic state as last synced. */
  get state(): SyncState | null {
    return this.receiver.state;
  }

  /** True once the session ended (the stream then closes normally). */
  get ended(): boolean {
    return this.state !== null && sessionEndedOnWire(this.state.status);
  }

  close(): void {
    this.#connection.close();
  }

  /** Progress (%) to show at `now` (client clock), from the synced clock; never moves back. */
  predictPercent(now: number = Date.now()): number {
    const total = this.#totalMs();
    return total > 0 ? (this.#predictor.elapsedAt(now + this.clock.offsetMs) / total) * 100 : 0;
  }

  #totalMs(): number {
    return this.receiver.session?.steps.reduce((sum, s) => sum + s.durationMs, 0) ?? 0;
  }

  async #negotiate(): Promise<{ url: string; token: string }> {
    const fetcher = this.options.fetch ?? globalThis.fetch;
    const response = await fetcher(`${this.#bases.http}/udp/sessions/${this.#segment}/connect`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await this.options.token()}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({
        packet_size: this.options.packetSize,
        delta: this.options.delta,
        lz4: this.options.lz4,
        full_sync_interval_ms: this.options.fullSyncIntervalMs,
      }),
    });
    if (!response.ok) {
      // Told as the stream's own refusal would be: final (a wrong token, not
      // yours, no such session) or retried (rate limits, an unreachable object).
      const body = (await response.json().catch(() => null)) as {
        error?: { code?: ErrorCode; message?: string };
      } | null;
      const code = body?.error?.code;
      throw new RefusedError(
        (code && REFUSAL_CLOSE_CODES[code]) ?? CloseCode.INTERNAL_ERROR,
        body?.error?.message ?? `sync negotiation refused: ${response.status}`,
      );
    }
    return (await response.json()) as { url: string; token: string };
  }

  #receive(data: string | ArrayBuffer): void {
    if (typeof data === "string") {
      if (data === "pong") this.#connection.answered();
      return;
    }
    this.#connection.answered();
    this.bytes += data.byteLength;
    const event = this.receiver.receive(new Uint8Array(data));
    if (event.type === "need_full") {
      this.#connection.send(
        toBinary(
          SyncRequestSchema,
          create(SyncRequestSchema, { full: true, baseSeq: this.receiver.baseSeq }),
        ),
      );
    } else if (event.type === "state") {
      const timeBase = Number(this.receiver.session?.timeBaseMs ?? 0);
      this.clock.hint(timeBase + event.serverTimeMs);
      const { anchorAtMs, anchorElapsedMs, rate, running } = event.state;
      this.#predictor.update({
        anchorAtMs: Number(anchorAtMs),
        anchorElapsedMs,
        rate,
        running,
        totalDurationMs: this.#totalMs(),
      });
      this.options.onChange?.(event.state, event.seq);
      this.emit("change", event.state);
    }
  }
}
