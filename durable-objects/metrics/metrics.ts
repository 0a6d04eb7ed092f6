/**
 * One shard of the metrics aggregator, and (the instance named "health")
 * the operators' health stream.
 *
 * Every isolate (Worker or Durable Object) counts locally and pushes its
 * deltas at most once a second to a shard chosen at random; `GET /metrics`
 * sums the shards. Totals are kept in storage, so a restart does not reset
 * the counters. One object serializes its calls; with N shards the push
 * rate each absorbs is divided by N, and adding shards scales it. In
 * production, Workers Analytics Engine can take this role (README).
 */
import { DurableObject } from "cloudflare:workers";
import { create, toJsonString } from "@bufbuild/protobuf";
import { ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import {
  DependencyHealthSchema,
  HealthSnapshotSchema,
  HealthStatus,
} from "../../src/gen/crafting/v1/health_pb";
import { type CheckStatus, overall, runHealthChecks } from "../../src/health/checks";
import { setLogLevel } from "../../src/log";
import { collectTotals } from "../../src/metrics/push";
import { emptyTotals, mergeTotals, summarizeTotals, type Totals } from "../../src/metrics/registry";

const TOTALS_KEY = "totals";
/** How often the health stream sends a snapshot. */
export const HEALTH_INTERVAL_MS = 5000;

const WIRE_STATUS: Record<CheckStatus, HealthStatus> = {
  ok: HealthStatus.OK,
  degraded: HealthStatus.DEGRADED,
  failing: HealthStatus.FAILING,
};

/** Durable Object holding one shard of the metrics totals, or the health stream. */
export class Metrics extends DurableObject<Env> {
  #totals: Totals;
  #lastMessagesOut: { at: number; count: number } | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    setLogLevel(env.LOG_LEVEL);
    this.#totals = ctx.storage.kv.get<Totals>(TOTALS_KEY) ?? emptyTotals();
  }

  /** Adds a pushed delta. */
  async add(delta: Totals): Promise<void> {
    mergeTotals(this.#totals, delta);
    this.ctx.storage.kv.put(TOTALS_KEY, this.#totals);
  }

  /** This shard's totals. */
  async totals(): Promise<Totals> {
    return this.#totals;
  }

  /** A storage round trip, for the health check. */
  async ping(): Promise<number> {
    return this.ctx.storage.sql.exec<{ one: number }>("SELECT 1 AS one").one().one;
  }

  /** Accepts an operator's health stream (the Worker checked the token). */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 400 });
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    server.send(await this.#snapshot());
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + HEALTH_INTERVAL_MS);
    const headers = new Headers();
    const protocol = request.headers.get("X-Crafting-Protocol");
    if (protocol) headers.set("Sec-WebSocket-Protocol", protocol);
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /** Sends a snapshot to every operator stream, every 5 s while any is open. */
  override async alarm(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return;
    const text = await this.#snapshot();
    for (const ws of sockets) {
      try {
        ws.send(text);
      } catch {
        // Closing.
      }
    }
    await this.ctx.storage.setAlarm(Date.now() + HEALTH_INTERVAL_MS);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (message === "ping") ws.send("pong");
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  }

  /** A `ServerFrame` with a `HealthSnapshot`, as JSON. */
  async #snapshot(): Promise<string> {
    const now = Date.now();
    const [checks, totals] = await Promise.all([
      runHealthChecks(this.env),
      collectTotals(this.env),
    ]);
    const summary = summarizeTotals(totals);
    const previous = this.#lastMessagesOut;
    this.#lastMessagesOut = { at: now, count: summary.messagesOut };
    const rate =
      previous && now > previous.at
        ? ((summary.messagesOut - previous.count) * 1000) / (now - previous.at)
        : 0;
    const snapshot = create(HealthSnapshotSchema, {
      status: WIRE_STATUS[overall(checks)],
      version: this.env.SERVICE_VERSION,
      checks: checks.map((check) =>
        create(DependencyHealthSchema, {
          name: check.name,
          status: WIRE_STATUS[check.status],
          latencyMs: check.latency_ms,
          message: check.message,
        }),
      ),
      activeStreams: summary.streamsOpen,
      activeSessions: summary.sessionsActive,
      messagesPerSecond: Math.max(0, rate),
      timestampMs: BigInt(now),
    });
    return toJsonString(
      ServerFrameSchema,
      create(ServerFrameSchema, {
        serverTimeMs: BigInt(now),
        kind: { case: "health", value: snapshot },
      }),
    );
  }
}
