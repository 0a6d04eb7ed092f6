/**
 * One resilient WebSocket: a token from the provider on every (re)connect
 * (sent as the `bearer.<token>` subprotocol, which browsers can set), a
 * refused upgrade told as a close code and reason in every runtime (the
 * `crafting.refusals` subprotocol: Node's and Workers' WebSocket, like a
 * browser's, hide a refused handshake's HTTP status),
 * exponential backoff with full jitter, close codes that stop retrying or
 * ask for a new token, a heartbeat with a pong timeout, and a reconnect
 * with a new token just before the one in use expires. What the messages
 * mean is the caller's (stream.ts, sync.ts).
 */
import { CloseCode, closeAdvice, READABLE_REFUSALS_PROTOCOL } from "../errors";
import { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from "./backoff";
import { notAToken, type TokenProvider, tokenExpiryMs } from "./token";

/**
 * Thrown by a `url` or `token` provider whose own request was refused (the
 * sync channel's negotiation): ends the attempt as a stream closed with
 * `code` would, so a final refusal is reported instead of retried.
 */
export class RefusedError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(reason);
    this.name = "RefusedError";
  }
}

/** How long before its token expires a stream reconnects with a new one: a tenth of its life left, at most this. */
const REFRESH_EARLY_MS = 5_000;

/** The reason a stream the app closed is closed with, on the wire and in its `closed` state. */
const CLOSED_BY_CLIENT = "closed by the client";

/** Where a connection stands. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** A change of a connection's state, as views report it: `code` and `reason` say why it closed or is reconnecting. */
export interface StateChange {
  state: ConnectionState;
  code?: number;
  reason?: string;
  /** Attempts since the last open. */
  attempt: number;
}

export interface ConnectionOptions {
  /** Builds the URL of each attempt (it may carry a resume point). */
  url: () => string | Promise<string>;
  token: TokenProvider;
  /** Subprotocols to offer besides the bearer one. */
  protocols: string[];
  backoff?: BackoffOptions;
  /** Heartbeat interval and how long to wait for its answer (ms). */
  heartbeatMs?: number;
  pongTimeoutMs?: number;
  /** How long a handshake may take before it is abandoned and retried (ms). */
  connectTimeoutMs?: number;
  /**
   * How long a stream whose close has begun may wait for its close event
   * before it is treated as closed (ms, default 2,000, as Chromium waits).
   * Node's `WebSocket` fires it only when the TCP connection ends, which
   * after the server's close can take as long as its object stays busy,
   * and after the client's own close to a silent peer, minutes.
   */
  closeWaitMs?: number;
  /** A heartbeat to send (return null to send the text keepalive "ping"). */
  ping?: () => string | Uint8Array | null;
  onOpen?: () => void;
  onMessage: (data: string | ArrayBuffer) => void;
  /**
   * The reason the stream ends with once its final frame came (`session
   * completed`, as the server says it); null before. Set, the stream is
   * closed normally with it from this side, and ends as closed if its close
   * event has not come within `closeWaitMs`.
   */
  endedReason?: () => string | null;
  onState?: (state: ConnectionState, detail: Omit<StateChange, "state">) => void;
  /** The WebSocket class (global by default: browsers, Node ≥ 22, Workers). */
  WebSocket?: typeof WebSocket;
}

/** The connection settings a view passes through from its own options. */
export type ConnectionTuning = Pick<
  ConnectionOptions,
  "backoff" | "heartbeatMs" | "pongTimeoutMs" | "connectTimeoutMs" | "closeWaitMs" | "WebSocket"
>;

/** Those of `options` that are set (an unset one keeps the connection's default). */
export function tuningOf(options: ConnectionTuning): ConnectionTuning {
  const tuning: ConnectionTuning = {};
  if (options.backoff) tuning.backoff = options.backoff;
  if (options.heartbeatMs) tuning.heartbeatMs = options.heartbeatMs;
  if (options.pongTimeoutMs) tuning.pongTimeoutMs = options.pongTimeoutMs;
  if (options.connectTimeoutMs) tuning.connectTimeoutMs = options.connectTimeoutMs;
  if (options.closeWaitMs) tuning.closeWaitMs = options.closeWaitMs;
  if (options.WebSocket) tuning.WebSocket = options.WebSocket;
  return tuning;
}

export class Connection {
  #ws: WebSocket | null = null;
  #attempt = 0;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  #pongDeadline: ReturnType<typeof setTimeout> | null = null;
  #refresh: ReturnType<typeof setTimeout> | null = null;
  /** Ends a closing stream whose close event is late (`closeWaitMs`). */
  #closeWait: ReturnType<typeof setTimeout> | null = null;
  /** Whether the current stream has had a message. */
  #heard = false;
  /** The token of the last connect. */
  #token: string | null = null;
  state: ConnectionState = "connecting";

  constructor(private readonly options: ConnectionOptions) {
    // Said at once: each attempt would fail alike, and be retried forever.
    if (!(options.WebSocket ?? globalThis.WebSocket))
      throw new TypeError(
        "this runtime has no WebSocket: use Node >= 22, a browser or Workers, or pass the WebSocket option (the ws package's class)",
      );
  }

  /** Opens the connection (and keeps it open until `close`). */
  start(): this {
    void this.#connect();
    return this;
  }

  /** Sends a message now, if open. */
  send(data: string | Uint8Array): boolean {
    if (this.#ws?.readyState !== 1) return false;
    this.#ws.send(data);
    return true;
  }

  /** A heartbeat was answered. */
  answered(): void {
    if (this.#pongDeadline) clearTimeout(this.#pongDeadline);
    this.#pongDeadline = null;
  }

  /** Closes for good (once: a connection already closed stays as it is). */
  close(): void {
    if (this.state === "closed") return;
    this.#closed = true;
    this.#clearTimers();
    try {
      this.#ws?.close(CloseCode.NORMAL, CLOSED_BY_CLIENT);
    } catch {
      // Already closed.
    }
    // Said like any other end: with its code and why.
    this.#setState("closed", { code: CloseCode.NORMAL, reason: CLOSED_BY_CLIENT });
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    // A retry has said "reconnecting" already, with why.
    if (this.#attempt === 0) this.#setState("connecting", {});
    let ws: WebSocket;
    let token: string;
    try {
      // The token first: getting it may decide the URL (the sync channel negotiates both).
      token = await this.#inTime(this.options.token, "the token provider");
      const url = await this.#inTime(this.options.url, "the URL provider");
      if (this.#closed) return;
      const malformed = notAToken(token);
      if (malformed) return this.#ended(CloseCode.TOKEN_EXPIRED, malformed, false);
      const Socket = this.options.WebSocket ?? globalThis.WebSocket;
      ws = new Socket(url, [
        ...this.options.protocols,
        READABLE_REFUSALS_PROTOCOL,
        `bearer.${token}`,
      ]);
    } catch (err) {
      if (err instanceof RefusedError) this.#ended(err.code, err.reason, false);
      else this.#retry(undefined, `could not connect: ${err instanceof Error ? err.message : err}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    // An attempt that never opens is abandoned and retried: one that hangs
    // (a server restarting behind a proxy) at the timeout, one that failed
    // (nothing listening, a handshake refused without a close code) at once.
    // Node's WebSocket reports such a failure with `error` and no `close`.
    let opened = false;
    const abandon = (reason: string) => {
      clearTimeout(handshake);
      if (this.#ws !== ws || opened) return;
      this.#ws = null;
      try {
        ws.close();
      } catch {
        // Never opened.
      }
      this.#retry(undefined, reason);
    };
    const handshake = setTimeout(
      () => abandon("handshake timeout"),
      this.options.connectTimeoutMs ?? 10_000,
    );
    ws.addEventListener("error", () => abandon("could not connect"));
    ws.addEventListener("open", () => {
      opened = true;
      clearTimeout(handshake);
      this.#attempt = 0;
      this.#setState("open", {});
      this.#startHeartbeat();
      this.#refreshBefore(token, token === this.#token);
      this.#token = token;
      this.options.onOpen?.();
    });
    this.#heard = false;
    ws.addEventListener("message", (event) => {
      if (this.#ws !== ws) return;
      this.#heard = true;
      this.options.onMessage(event.data as string | ArrayBuffer);
      // The final frame: closed from this side at once, as the server waits
      // for (a close the client starts ends its connection at once, where
      // the server's may hold it for seconds: docs/streams.md).
      const reason = this.options.endedReason?.();
      if (reason) this.#closeOwn(CloseCode.NORMAL, reason);
    });
    ws.addEventListener("close", (event) => {
      clearTimeout(handshake);
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#clearTimers();
      this.#ended(event.code, event.reason, this.#heard);
    });
  }

  /** Closes the stream from this side with `code`, and goes on without waiting long for its close event. */
  #closeOwn(code: number, reason: string): void {
    const ws = this.#ws;
    if (!ws) return;
    try {
      ws.close(code, reason);
    } catch {
      // Already closing.
    }
    this.#settleUnlessClosed(ws, code, reason);
  }

  /**
   * A stream whose close has begun ends as closed with `code` if its close
   * event has not come within `closeWaitMs`: the event is then dropped.
   */
  #settleUnlessClosed(ws: WebSocket, code: number, reason: string): void {
    if (this.#closeWait) return;
    this.#closeWait = setTimeout(() => {
      this.#closeWait = null;
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#clearTimers();
      try {
        ws.close(CloseCode.NORMAL); // Sent only if the server never closed it.
      } catch {
        // Already closing.
      }
      this.#ended(code, reason, this.#heard);
    }, this.options.closeWaitMs ?? 2_000);
  }

  /**
   * What `provider` gives, or an error saying `what` did not answer within
   * the connect timeout: a token fetch that hangs is retried like a
   * handshake that hangs, not waited on forever.
   */
  async #inTime<T>(provider: () => T | Promise<T>, what: string): Promise<T> {
    const ms = this.options.connectTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([provider(), late]);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** A stream (or an attempt at one) ended with `code`: retried or final, as the code says. */
  #ended(code: number, reason: string, heard: boolean): void {
    if (this.#closed) return;
    // A token refused at the handshake (4001 before any frame) was just
    // fetched: another would be refused too. Final, and said to the app.
    const refusedAtHandshake = code === CloseCode.TOKEN_EXPIRED && !heard;
    const advice = refusedAtHandshake ? "do_not_reconnect" : closeAdvice(code);
    if (advice === "do_not_reconnect") {
      this.#closed = true;
      this.#setState("closed", { code, reason });
      return;
    }
    // The token expired on an open stream: fetch a new one and reconnect at once.
    this.#retry(code, reason, advice === "reconnect_with_new_token");
  }

  #retry(code: number | undefined, reason: string | undefined, immediate = false): void {
    if (this.#closed) return;
    const delay = immediate
      ? 0
      : backoffDelay(this.#attempt, this.options.backoff ?? DEFAULT_BACKOFF);
    this.#attempt++;
    this.#setState("reconnecting", { code, reason });
    this.#timer = setTimeout(() => void this.#connect(), delay);
  }

  #startHeartbeat(): void {
    const every = this.options.heartbeatMs ?? 10_000;
    const timeout = this.options.pongTimeoutMs ?? 5_000;
    this.#heartbeat = setInterval(() => {
      // The server's close came, but not its close event: seen as a dropped stream, unless final.
      const ws = this.#ws;
      if (ws?.readyState === 2)
        return this.#settleUnlessClosed(
          ws,
          CloseCode.ABNORMAL,
          "the server closed the stream; its connection did not end",
        );
      const ping = this.options.ping?.() ?? "ping";
      if (!this.send(ping)) return;
      if (this.#pongDeadline) return;
      this.#pongDeadline = setTimeout(() => {
        // No answer: the connection is dead even if the socket does not know it yet.
        this.#pongDeadline = null;
        this.#closeOwn(4000, "heartbeat timeout");
      }, timeout);
    }, every);
  }

  /**
   * Reconnects with a new token just before `token` expires: the server
   * sends a stream past its token nothing more, and says so (4001) only at
   * its next change. A tenth of the token's life early (at most 5 s); at
   * its expiry when the provider handed the same token again.
   */
  #refreshBefore(token: string, again: boolean): void {
    const expiresAtMs = tokenExpiryMs(token);
    if (expiresAtMs === null) return;
    const left = expiresAtMs - Date.now();
    const early = again ? 0 : Math.min(REFRESH_EARLY_MS, left / 10);
    this.#refresh = setTimeout(
      () => {
        this.#refresh = null;
        this.#closeOwn(CloseCode.TOKEN_EXPIRED, "token expiring: reconnecting with a new one");
      },
      Math.min(Math.max(left - early, 0), 2 ** 31 - 1),
    );
  }

  #clearTimers(): void {
    for (const timer of [this.#timer, this.#pongDeadline, this.#refresh, this.#closeWait])
      if (timer) clearTimeout(timer);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#timer = this.#pongDeadline = this.#heartbeat = this.#refresh = this.#closeWait = null;
  }

  #setState(state: ConnectionState, detail: { code?: number; reason?: string }): void {
    this.state = state;
    this.options.onState?.(state, { ...detail, attempt: this.#attempt });
  }
}
