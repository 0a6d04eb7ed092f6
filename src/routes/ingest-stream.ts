/**
 * crafting-service's ingest stream, `GET /v1/progress/stream`: one
 * WebSocket, authenticated once at the upgrade, that carries progress
 * corrections in and one answer per correction out — the client-streaming
 * and bidirectional forms of seeds 003/004. A correction sent this way
 * costs a session call and nothing else: no HTTP request to parse, route,
 * authenticate and answer per update.
 *
 * In: JSON text messages `{"ref", "session_id", ...correction}` (the fields
 * of a `POST /v1/progress` update, and the caller's `ref`), or arrays of
 * them: a session's updates in one message go in as one change.
 * Out: JSON arrays of answers (those ready together leave as one message),
 * one answer per update, in each session's order:
 * `{"ref", "session_id", "epoch", "seq"}` once the session stored the
 * correction (its watchers were sent it), or
 * `{"ref", "session_id", "error": {"code", "message"}}` (with
 * `"retry_after_s"` when waiting helps). A malformed message is refused on
 * its own; the stream goes on. Updates that arrive for a session while its
 * previous call is under way are applied together, as one change, when it
 * returns: progress is latest-wins, so a session sent updates faster than
 * it stores them falls behind by one call, not by a queue.
 * docs/sessions.md, "The ingest stream".
 */
import { msUntilExpiry, type TokenClaims } from "../auth/jwt";
import { sessionStub } from "../durable";
import { CloseCode, knownError, type ServiceError, TOKEN_EXPIRED_REASON } from "../errors";
import { DescriptorShare, descriptorBudgetOf } from "../health/descriptor-budget";
import { saidFor } from "../http/valid";
import { log } from "../log";
import { metrics, pushMetricsSoon } from "../metrics/push";
import { checkRateLimit } from "../middleware/limits";
import type { TraceContext } from "../middleware/trace";
import { PerKeyBatches } from "./per-key-batches";
import {
  CORRECTION_FIELDS,
  parseStreamUpdate,
  type StreamUpdate,
  streamUpdateKeys,
} from "./progress-input";

/** Where the stream is opened (a WebSocket upgrade). */
export const INGEST_STREAM_PATH = "/v1/progress/stream";

export const INGEST_STREAM_LIMITS = {
  /** Largest message (an update is ~100 bytes). */
  maxMessageBytes: 256 * 1024,
  /** Most updates in one message (an array of them). */
  maxUpdatesPerMessage: 1000,
  /** Updates waiting for their session per stream; more are refused until answers come back. */
  maxPending: 1000,
} as const;

type Outcome = "applied" | "refused" | "failed";

/**
 * Accepts the server end of an upgraded socket as an ingest stream for
 * `claims`' caller; `waitUntil` (the upgrade request's) keeps its metrics
 * pushes alive past the socket's close.
 */
export function serveIngestStream(
  ws: WebSocket,
  env: Env,
  claims: TokenClaims,
  trace: TraceContext,
  waitUntil: (work: Promise<unknown>) => void,
): void {
  ws.accept();
  // The Worker holds these sockets: they count in the isolate's descriptor budget where one is kept.
  const sockets = new DescriptorShare("worker:ingest-streams", descriptorBudgetOf(env) > 0);
  sockets.socketChanged(1);
  const stream = new IngestStream(ws, env, claims, trace, waitUntil, () =>
    sockets.socketChanged(-1),
  );
  ws.addEventListener("message", (event) => stream.message(event.data));
  ws.addEventListener("close", (event) => stream.closed(event.code, event.reason));
  ws.addEventListener("error", () => stream.closed(CloseCode.GOING_AWAY, "socket error"));
}

/** An update, and when it reached the edge. */
interface Received {
  update: StreamUpdate;
  receivedAtMs: number;
}

class IngestStream {
  readonly #batches = new PerKeyBatches<Received>(INGEST_STREAM_LIMITS.maxPending, (_, items) =>
    this.#apply(items),
  );
  readonly #expiry: ReturnType<typeof setTimeout>;
  #outbox: Record<string, unknown>[] = [];
  /** Messages are admitted one after another (the limiter may make one wait). */
  #admitting: Promise<void> = Promise.resolve();
  #open = true;

  constructor(
    private readonly ws: WebSocket,
    private readonly env: Env,
    private readonly claims: TokenClaims,
    private readonly trace: TraceContext,
    private readonly waitUntil: (work: Promise<unknown>) => void,
    private readonly onClosed: () => void,
  ) {
    // The token was checked once, at the upgrade: the stream lasts no longer than it does.
    this.#expiry = setTimeout(
      () => this.#close(CloseCode.TOKEN_EXPIRED, TOKEN_EXPIRED_REASON),
      msUntilExpiry(claims),
    );
  }

  message(data: string | ArrayBuffer): void {
    // The keepalive of every stream here: answered, never counted or limited.
    if (data === "ping") {
      this.ws.send("pong");
      return;
    }
    const receivedAtMs = Date.now();
    metrics.count("crafting_messages_in_total");
    if (typeof data !== "string") {
      this.#refuse(null, null, "invalid_argument", "send each update as a JSON text message");
      return;
    }
    const { maxMessageBytes, maxUpdatesPerMessage } = INGEST_STREAM_LIMITS;
    if (tooLarge(data)) {
      const message = `a message is at most ${maxMessageBytes} bytes`;
      this.#refuse(null, null, "payload_too_large", message);
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(data);
    } catch {
      this.#refuse(null, null, "invalid_argument", "the message is not valid JSON");
      return;
    }
    // One update, or an array of them (each answered on its own).
    const bodies = Array.isArray(body) ? body : [body];
    const tooMany =
      bodies.length > maxUpdatesPerMessage
        ? `a message carries at most ${maxUpdatesPerMessage} updates`
        : null;
    const accepted: [string, Received][] = [];
    for (const item of bodies) {
      if (tooMany) {
        this.#refuseItem(item, tooMany);
        continue;
      }
      try {
        const update = parseStreamUpdate(item);
        accepted.push([update.sessionId, { update, receivedAtMs }]);
      } catch (e: unknown) {
        const message = e instanceof Error ? e.message : String(e);
        this.#refuseItem(item, saidFor(item, message, CORRECTION_FIELDS));
      }
    }
    if (accepted.length === 0) return;
    // Admitted in the order received, whatever the limiter's answer takes.
    this.#admitting = this.#admitting.then(() => this.#admit(accepted));
  }

  /**
   * Counts a message against the ingest limit once (as one `POST
   * /v1/progress` of any size is counted), then queues its updates for their sessions,
   * refusing those past `maxPending`.
   */
  async #admit(accepted: [string, Received][]): Promise<void> {
    try {
      await checkRateLimit(
        this.env,
        "INGEST_RATE_LIMITER",
        this.claims.sub,
        INGEST_STREAM_PATH,
        this.waitUntil,
      );
    } catch (e: unknown) {
      for (const [, { update }] of accepted) this.#failed(update, e);
      return;
    }
    for (const { update } of this.#batches.pushAll(accepted)) {
      this.#refuse(
        update.ref,
        update.sessionId,
        "resource_exhausted",
        `${INGEST_STREAM_LIMITS.maxPending} updates are waiting to be applied: wait for their answers before sending more`,
        1,
      );
    }
  }

  /** The client closed (or the socket failed): reciprocate; waiting updates are still applied. */
  closed(code: number, reason: string): void {
    this.#close(code === 1005 || code === 1006 ? CloseCode.NORMAL : code, reason);
  }

  /**
   * Applies one session's waiting updates, in order: alone, or as one change
   * when several waited (each answered with that change's seq). A change
   * the session refuses is retried one update at a time, so only the update
   * at fault is refused.
   */
  async #apply(items: Received[]): Promise<void> {
    const [first] = items;
    if (!first) return;
    const { sessionId } = first.update;
    const trace = { ...this.trace, receivedAtMs: first.receivedAtMs };
    try {
      const stub = sessionStub(this.env, sessionId);
      const result =
        items.length === 1
          ? await stub.correctProgress(first.update.correction, trace, true)
          : await stub.correctProgressBatch(
              items.map((item) => item.update.correction),
              trace,
              true,
            );
      if (result.ok) {
        const { epoch, seq, changed } = JSON.parse(result.value) as {
          epoch: number;
          seq: number;
          changed?: false;
        };
        const unchanged = changed === false ? { changed } : {};
        for (const { update } of items)
          this.#answer(
            { ref: update.ref, session_id: sessionId, epoch, seq, ...unchanged },
            "applied",
          );
      } else if (items.length === 1) {
        const { code, message } = result.error;
        const said = saidFor(first.update.body, message, CORRECTION_FIELDS);
        this.#refuse(first.update.ref, sessionId, code, said);
      } else {
        for (const item of items) await this.#apply([item]);
      }
    } catch (e: unknown) {
      for (const { update } of items) this.#failed(update, e);
    }
  }

  /** Answers an update whose call failed: a known refusal, or `internal` (logged). */
  #failed(update: StreamUpdate, e: unknown): void {
    const known = knownError(e);
    if (!known) {
      log("error", "ingest_stream.apply_failed", {
        session_id: update.sessionId,
        trace_id: this.trace.traceId,
        message: e instanceof Error ? e.message : String(e),
      });
      this.#refuse(
        update.ref,
        update.sessionId,
        "internal",
        "the session could not apply the update",
        undefined,
        "failed",
      );
      return;
    }
    const outcome = known.code === "resource_exhausted" ? "refused" : "failed";
    const { ref, sessionId } = update;
    this.#refuse(ref, sessionId, known.code, known.message, known.retryAfterSeconds, outcome);
  }

  /** Refuses one update of a message as invalid, answering it by its own ref. */
  #refuseItem(item: unknown, message: string): void {
    const { ref, sessionId } = streamUpdateKeys(item);
    this.#refuse(ref, sessionId, "invalid_argument", message);
  }

  /** Answers an update (or a message) that was not applied. */
  #refuse(
    ref: number | null,
    sessionId: string | null,
    code: ServiceError["code"],
    message: string,
    retryAfterSeconds?: number,
    outcome: Outcome = "refused",
  ): void {
    this.#answer(
      {
        ref,
        session_id: sessionId,
        error: { code, message },
        ...(retryAfterSeconds !== undefined && { retry_after_s: retryAfterSeconds }),
      },
      outcome,
    );
  }

  /** Queues an answer: the answers of one turn (a change's updates, refusals) leave as one message. */
  #answer(answer: Record<string, unknown>, outcome: Outcome): void {
    metrics.count("crafting_ingest_stream_updates_total", { outcome });
    if (this.#outbox.push(answer) === 1) queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    const answers = this.#outbox;
    this.#outbox = [];
    pushMetricsSoon(this.env, this.waitUntil);
    if (!this.#open) return;
    try {
      this.ws.send(JSON.stringify(answers));
    } catch {
      // Closed meanwhile: the caller resends what it has no answer for.
    }
  }

  #close(code: number, reason: string): void {
    if (!this.#open) return;
    this.#open = false;
    clearTimeout(this.#expiry);
    this.onClosed();
    try {
      this.ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }
}

/** Whether `text` is over `maxMessageBytes` in UTF-8 (encoded only when it could be). */
function tooLarge(text: string): boolean {
  const max = INGEST_STREAM_LIMITS.maxMessageBytes;
  return text.length * 3 > max && new TextEncoder().encode(text).byteLength > max;
}
