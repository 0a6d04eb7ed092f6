/**
 * crafting-service's side of the ingest stream (docs/sessions.md, "The
 * ingest stream"): progress corrections sent over one authenticated
 * WebSocket, each answered with the seq its session stored it at. For a
 * backend (Node >= 22, Workers, or the `ws` package's class), not a game
 * client. It keeps the stream open as the SDK's views do (connection.ts:
 * reconnect with backoff, heartbeat, a new token before the old one
 * expires) and loses nothing across a drop: the newest unanswered
 * correction of each session is sent again, and the older ones are
 * answered with it (ingest-backlog.ts). A correction refused for a while
 * (`retry_after_s` in its answer: a rate limit, a session unreachable) is
 * sent again after that wait. It keeps as many in flight as the round trip
 * needs and the service answers in time (ingest-window.ts).
 */
import { refusalOfClose } from "../errors";
import { serviceBases } from "./base-url";
import { Connection, type ConnectionTuning, type StateChange, tuningOf } from "./connection";
import { type Held, IngestBacklog, type IngestCorrection } from "./ingest-backlog";
import { IngestWindow } from "./ingest-window";
import type { TokenProvider } from "./token";

export type { IngestCorrection } from "./ingest-backlog";

/** A correction's session stored it (its watchers were sent it). */
export interface IngestApplied {
  sessionId: string;
  epoch: number;
  seq: number;
  /** False: a stale reading, the session left as it was (at `seq`). */
  changed: boolean;
  /**
   * True: this correction was not applied on its own; a newer one of its
   * session was sent in its place (latest wins), and this is that one's
   * answer. It was waiting for room in the window, or was sent and left
   * unanswered by a drop or refused for a while. Many of them mean
   * corrections come faster than the window lets them out (docs/sdk.md).
   */
  superseded: boolean;
}

/** A correction not applied: the service's error `code` and `message`, or the client's (`cancelled`, a stream closed for good). */
export class IngestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly sessionId: string,
  ) {
    super(message);
    this.name = "IngestError";
  }
}

export interface IngestOptions extends ConnectionTuning {
  /** The service, e.g. `https://crafting.example.com`. */
  baseUrl: string;
  /** A service token (scope `service`); called before every (re)connect. */
  token: TokenProvider;
  /**
   * Corrections sent and not yet answered, at most: 1 to 1,000 (the
   * default), what the service holds a stream; past it the service would
   * refuse them for a second. Within it the client keeps as many in flight as the
   * round trip needs and no more than the service answers without a queue
   * building up; `window` on the client says how many now (docs/sdk.md).
   */
  window?: number;
  /** Times a correction refused for a while is sent again before its refusal is final (default 5). */
  retries?: number;
  /** The stream's state changes (connecting, open, reconnecting, closed), with why. */
  onState?: (change: StateChange) => void;
}

/** The protocol the ingest stream speaks (JSON text messages). */
const INGEST_PROTOCOL = "crafting.ingest.v1";
/** Most corrections in one message (the service's limit). */
export const MAX_PER_MESSAGE = 1000;
/** Most corrections of a stream waiting for their sessions (the service's limit): the greatest window. */
export const MOST_IN_FLIGHT = 1000;

type Answer = {
  ref?: unknown;
  session_id?: string;
  epoch?: number;
  seq?: number;
  changed?: boolean;
  error?: { code: string; message: string };
  retry_after_s?: number;
};

export class IngestClient {
  readonly #backlog = new IngestBacklog<IngestApplied, IngestError>();
  readonly #connection: Connection;
  readonly #window: IngestWindow;
  readonly #retries: number;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #closed = false;
  /** Why it closed for good: every later correction is refused with it. */
  #ending = { code: "cancelled", message: "the ingest client was closed" };
  /** A flush is due at the end of this turn. */
  #flushing = false;
  /** Waiting for nothing to be held (`idle`). */
  #idle: (() => void)[] = [];

  constructor(private readonly options: IngestOptions) {
    this.#window = new IngestWindow(
      wholeOption("window", options.window ?? MOST_IN_FLIGHT, 1, MOST_IN_FLIGHT),
    );
    this.#retries = wholeOption("retries", options.retries ?? 5, 0);
    const base = serviceBases(options.baseUrl).ws;
    this.#connection = new Connection({
      ...tuningOf(options),
      url: () => `${base}/v1/progress/stream`,
      token: options.token,
      protocols: [INGEST_PROTOCOL],
      onOpen: () => this.#flush(),
      onMessage: (data) => this.#message(data),
      onState: (state, detail) => this.#state({ state, ...detail }),
    }).start();
  }

  /** Corrections held: sent and unanswered, waiting to be sent, or resting before a retry. */
  get held(): number {
    return this.#backlog.size;
  }

  /** Corrections it lets be sent and unanswered now: grown while the round trip needs more, shrunk while the service's answers queue. */
  get window(): number {
    return this.#window.size;
  }

  /**
   * Sends a correction; resolves when its session stored it (or a newer one
   * of the same session, sent in its place), rejects with an `IngestError`
   * when it was refused.
   */
  send(correction: IngestCorrection): Promise<IngestApplied> {
    const sessionId = correction?.session_id;
    if (this.#closed)
      return Promise.reject(
        new IngestError(this.#ending.code, this.#ending.message, String(sessionId)),
      );
    if (typeof sessionId !== "string" || sessionId === "")
      return Promise.reject(
        new IngestError("invalid_argument", "session_id must be a session's id", String(sessionId)),
      );
    const answer = new Promise<IngestApplied>((resolve, reject) =>
      this.#backlog.add({ ...correction }, { resolve, reject }),
    );
    // Corrections sent in one turn leave together, as one message.
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => {
        this.#flushing = false;
        this.#flush();
      });
    }
    return answer;
  }

  /**
   * Resolves once nothing is held: every correction sent so far answered
   * (or refused, or the client closed). For a graceful shutdown: `await
   * ingest.idle()`, then `close()`.
   */
  idle(): Promise<void> {
    if (this.#backlog.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Closes the stream for good; corrections still held are rejected (`cancelled`). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#connection.close();
    this.#end();
  }

  /** Sends what the window allows, up to 1,000 corrections a message. */
  #flush(): void {
    while (!this.#closed && this.#connection.state === "open") {
      const room = Math.min(this.#window.size - this.#backlog.inFlight, MAX_PER_MESSAGE);
      if (room <= 0 && this.#backlog.waiting > 0) this.#window.full();
      const taken = room > 0 ? this.#backlog.take(room, performance.now()) : [];
      if (taken.length === 0) return;
      const updates = taken.map((held) => ({ ...held.correction, ref: held.ref }));
      // Not open after all (a close under way): they wait for the next stream.
      if (!this.#connection.send(JSON.stringify(updates.length === 1 ? updates[0] : updates))) {
        this.#backlog.unanswered();
        return;
      }
    }
  }

  #message(data: string | ArrayBuffer): void {
    // Every message is news from the server: the connection is alive.
    this.#connection.answered();
    if (data === "pong") return;
    let answers: Answer[];
    try {
      answers = JSON.parse(String(data)) as Answer[];
    } catch {
      return;
    }
    for (const answer of Array.isArray(answers) ? answers : [answers]) this.#answer(answer);
    this.#flush();
    this.#settleIdle();
  }

  #answer(answer: Answer): void {
    const held = this.#backlog.answered(answer.ref);
    if (!held) return;
    const sessionId = held.correction.session_id;
    if (!answer.error) {
      // Only a stored correction times the round trip: a refusal may come before any session is asked.
      this.#window.answered(sessionId, held.sentAt, performance.now());
      const applied: IngestApplied = {
        sessionId,
        epoch: answer.epoch ?? 0,
        seq: answer.seq ?? 0,
        changed: answer.changed !== false,
        superseded: false,
      };
      // The correction sent is the last to wait on it; those before it were folded into it.
      const own = held.waiters.length - 1;
      held.waiters.forEach((waiter, i) => {
        waiter.resolve(i === own ? applied : { ...applied, superseded: true });
      });
      return;
    }
    const waitS = answer.retry_after_s;
    if (typeof waitS === "number" && held.tries < this.#retries) {
      // Rested and sent again, or answered with its session's newer correction.
      if (this.#backlog.rest(held)) this.#later(held, waitS * 1000);
      return;
    }
    const error = new IngestError(answer.error.code, answer.error.message, sessionId);
    for (const waiter of held.waiters) waiter.reject(error);
  }

  /** A rested correction is sent again after `ms`. */
  #later(held: Held<IngestApplied, IngestError>, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#backlog.back(held);
      this.#flush();
    }, ms);
    this.#timers.add(timer);
  }

  #state(change: StateChange): void {
    // A dropped stream: what it had not answered is sent again on the next.
    if (change.state === "reconnecting") {
      this.#backlog.unanswered();
      this.#window.reopened();
    }
    if (change.state === "closed" && !this.#closed) {
      this.#closed = true;
      this.#ending = {
        code: refusalOfClose(change.code ?? 0) ?? "unavailable",
        message: `the ingest stream closed for good: ${change.code} ${change.reason ?? ""}`.trim(),
      };
      this.#end();
    }
    this.options.onState?.(change);
  }

  /** Rejects everything held with why it ended, and stops every retry. */
  #end(): void {
    const { code, message } = this.#ending;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const held of this.#backlog.drain()) {
      const error = new IngestError(code, message, held.correction.session_id);
      for (const waiter of held.waiters) waiter.reject(error);
    }
    this.#settleIdle();
  }

  /** Resolves `idle()` callers once nothing is held. */
  #settleIdle(): void {
    if (this.#backlog.size > 0 || this.#idle.length === 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}

/** A whole-number option from `min` to `most`; anything else is said at once, not run with. */
function wholeOption(name: string, value: unknown, min: number, most = Infinity): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= most)
    return value;
  const range = most === Infinity ? `at least ${min}` : `from ${min} to ${most}`;
  throw new TypeError(`${name} must be a whole number, ${range} (got ${String(value)})`);
}
