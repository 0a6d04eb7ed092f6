/**
 * The soak's clients (bench/soak.ts): one watcher per stream, of one kind —
 * a session's in JSON, binary, the sync channel or a Connect RPC, a
 * workflow's (JSON; `sessionId` is then the workflow's id) or a player's
 * queue (JSON or RPC; `sessionId` is then the player's id) — that reconnects whenever
 * its stream drops, resuming from the last (epoch, seq) it saw, and counts
 * every change: a gap or a duplicate is a `seq` that does not continue the
 * last one (`superseded` accounted for).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import WebSocket from "ws";
import { ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb.ts";
import { CraftingStreamingService } from "../../src/gen/crafting/v1/streaming_service_pb.ts";
import { SyncRequestSchema } from "../../src/gen/crafting/v1/sync_pb.ts";
import { SyncReceiver } from "../../src/protocol/sync/sync-receiver.ts";

/** Where the watchers connect, and how they wait out a restart of the runtime. */
export interface SoakService {
  baseUrl: string;
  wsBase: string;
  ready(): Promise<void>;
}

/** The session a watcher follows, and its player's token. */
export interface WatchedSession {
  sessionId: string;
  bearer: string;
}

export type ClientKind = "json" | "binary" | "sync" | "rpc" | "workflow" | "queue" | "queue-rpc";

/** Every kind, in the order the soak reports them. */
const CLIENT_KINDS: readonly ClientKind[] = [
  "json",
  "binary",
  "sync",
  "rpc",
  "workflow",
  "queue",
  "queue-rpc",
];

/** One watcher: reconnects whenever its stream drops, resuming from the last (epoch, seq) it saw. */
export class Watcher {
  epoch = 0;
  seq = 0;
  gaps = 0;
  duplicates = 0;
  reconnects = 0;
  snapshots = 0;
  /** Frames that were not of the stream's protocol. */
  undecodable = 0;
  stopped = false;
  #close: (() => void) | null = null;
  readonly sync = new SyncReceiver();

  readonly kind: ClientKind;
  readonly session: WatchedSession;
  readonly #service: SoakService;
  constructor(kind: ClientKind, session: WatchedSession, service: SoakService) {
    this.kind = kind;
    this.session = session;
    this.#service = service;
  }

  /** A change numbered `seq` standing for `1 + superseded` changes. */
  update(seq: number, superseded: number): void {
    if (seq <= this.seq) this.duplicates++;
    else if (seq !== this.seq + 1 + superseded) this.gaps++;
    this.seq = Math.max(this.seq, seq);
  }

  snapshot(epoch: number, seq: number): void {
    this.snapshots++;
    // A resync (new epoch, or a gap too old to replay) is honest; it starts the count over.
    this.epoch = epoch;
    this.seq = seq;
  }

  drop(): void {
    this.#close?.();
  }

  stop(): void {
    this.stopped = true;
    this.#close?.();
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      await this.#service.ready();
      try {
        await (this.kind === "rpc" || this.kind === "queue-rpc" ? this.#rpc() : this.#socket());
      } catch {
        // Refused or dropped: try again shortly.
      }
      if (this.stopped) return;
      this.reconnects++;
      await sleep(100 + Math.random() * 400);
    }
  }

  async #socket(): Promise<void> {
    const { sessionId, bearer } = this.session;
    const watched = this.kind === "workflow" || this.kind === "queue" ? this.kind : "crafting";
    let url = `${this.#service.wsBase}/ws/${watched}/${sessionId}`;
    let protocol = this.kind === "binary" ? "crafting.v1.bin" : "crafting.v1.json";
    let auth = bearer;
    if (this.kind === "sync") {
      const response = await this.#post(bearer, `/udp/sessions/${sessionId}/connect`, {});
      if (response.status !== 200) throw new Error(`connect ${response.status}`);
      const channel = (await response.json()) as {
        token: string;
        url: string;
        subprotocol: string;
      };
      url = `${this.#service.wsBase}${channel.url}`;
      protocol = channel.subprotocol;
      auth = channel.token;
    } else if (this.epoch) {
      url += `?resume_epoch=${this.epoch}&resume_seq=${this.seq}`;
    }
    const ws = new WebSocket(url, [protocol], {
      headers: { Authorization: `Bearer ${auth}` },
      // Local workerd leaves TCP open after a server-initiated close; the close is final already.
      closeTimeout: 500,
    } as WebSocket.ClientOptions);
    this.#close = () => ws.close(1000);
    // Stopped while it was being opened (the sync channel's negotiation is a
    // call away): closed now, or nothing ever would (a CI soak hung so).
    if (this.stopped) this.#close();
    const keepalive = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN && this.kind !== "sync") ws.send("ping");
    }, 10_000);
    await new Promise<void>((resolve) => {
      ws.on("message", (data, isBinary) => {
        try {
          this.#frame(data as Buffer, isBinary, ws);
        } catch {
          this.undecodable++;
        }
      });
      ws.on("close", () => resolve());
      ws.on("error", () => resolve());
      ws.on("unexpected-response", () => resolve());
    });
    clearInterval(keepalive);
  }

  #frame(data: Buffer, isBinary: boolean, ws: WebSocket): void {
    if (this.kind === "sync") {
      const event = this.sync.receive(new Uint8Array(data));
      if (event.type === "need_full")
        ws.send(toBinary(SyncRequestSchema, create(SyncRequestSchema, { full: true })));
      if (this.sync.seq < this.seq) this.duplicates++;
      this.seq = Math.max(this.seq, this.sync.seq);
      return;
    }
    if (!isBinary) {
      const text = data.toString();
      if (text === "pong") return;
      const frame = JSON.parse(text) as {
        seq?: number;
        epoch?: number;
        snapshot?: unknown;
        update?: { superseded?: number };
        material?: unknown;
        workflow?: unknown;
        queue?: unknown;
      };
      if (frame.snapshot) this.snapshot(frame.epoch ?? 0, frame.seq ?? 0);
      else if (frame.update) this.update(frame.seq ?? 0, frame.update.superseded ?? 0);
      // A material change is a change of its own, with its seq.
      else if (frame.material) this.update(frame.seq ?? 0, 0);
      // A workflow's frames carry it whole, one per change.
      else if (frame.workflow) this.update(frame.seq ?? 0, 0);
      // So do a queue's.
      else if (frame.queue) this.update(frame.seq ?? 0, 0);
      return;
    }
    const frame = fromBinary(ServerFrameSchema, new Uint8Array(data));
    if (frame.kind.case === "snapshot") this.snapshot(frame.epoch, frame.seq);
    else if (frame.kind.case === "update") this.update(frame.seq, frame.kind.value.superseded);
    else if (frame.kind.case === "material") this.update(frame.seq, 0);
  }

  async #rpc(): Promise<void> {
    const abort = new AbortController();
    this.#close = () => abort.abort();
    if (this.stopped) abort.abort();
    const client = createClient(
      CraftingStreamingService,
      createConnectTransport({
        baseUrl: this.#service.baseUrl,
        httpVersion: "1.1",
        useBinaryFormat: true,
      }),
    );
    const options = {
      headers: { Authorization: `Bearer ${this.session.bearer}` },
      signal: abort.signal,
    };
    const resume = { resumeEpoch: this.epoch, resumeSeq: this.seq };
    const messages =
      this.kind === "queue-rpc"
        ? client.streamCraftingQueue({ playerId: this.session.sessionId, ...resume }, options)
        : client.streamCraftingProgress({ sessionId: this.session.sessionId, ...resume }, options);
    for await (const message of messages) {
      if (message.snapshot) this.snapshot(message.epoch, message.seq);
      // A heartbeat repeats the last message, and a queue's change is a message
      // per entry it moved, all with one seq (docs/rpc.md): not a change each.
      else if (message.seq !== this.seq)
        this.update(message.seq, "superseded" in message ? message.superseded : 0);
    }
  }

  #post(bearer: string, path: string, body: unknown): Promise<Response> {
    return fetch(`${this.#service.baseUrl}${path}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  }
}

/** What the watchers counted, in all and by kind; `lost` is what each had not reached of `finalSeq`. */
export function tally(watchers: readonly Watcher[], finalSeq: ReadonlyMap<string, number>) {
  const counts = (of: readonly Watcher[]) => ({
    gaps: of.reduce((sum, w) => sum + w.gaps, 0),
    duplicates: of.reduce((sum, w) => sum + w.duplicates, 0),
    undecodable: of.reduce((sum, w) => sum + w.undecodable, 0),
    lost: of.reduce(
      (sum, w) => sum + Math.max(0, (finalSeq.get(w.session.sessionId) ?? 0) - w.seq),
      0,
    ),
  });
  const byKind = CLIENT_KINDS.map((k) => [k, watchers.filter((w) => w.kind === k)] as const);
  return {
    ...counts(watchers),
    reconnects: watchers.reduce((sum, w) => sum + w.reconnects, 0),
    clients: Object.fromEntries(byKind.map(([k, of]) => [k, of.length])),
    byKind: Object.fromEntries(byKind.map(([k, of]) => [k, counts(of)])),
  };
}

/**
 * A fresh JSON stream's first frame (its snapshot), parsed; the stream is
 * closed after it. One that does not come within `withinMs` (or a stream
 * closed before it) is an error, never a wait without end.
 */
export async function firstFrame<T>(url: string, bearer: string, withinMs = 10_000): Promise<T> {
  const ws = new WebSocket(url, ["crafting.v1.json"], {
    headers: { Authorization: `Bearer ${bearer}` },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await new Promise<T>((resolve, reject) => {
      ws.once("message", (data) => resolve(JSON.parse(String(data)) as T));
      ws.once("unexpected-response", (_, response) => reject(new Error(`${response.statusCode}`)));
      ws.once("error", reject);
      ws.once("close", (code, reason) =>
        reject(new Error(`closed ${code} ${String(reason)} before its first frame`)),
      );
      timer = setTimeout(
        () => reject(new Error(`no first frame within ${withinMs} ms from ${url}`)),
        withinMs,
      );
    });
  } finally {
    clearTimeout(timer);
    if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    else ws.terminate();
  }
}
