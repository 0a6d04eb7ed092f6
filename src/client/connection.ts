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

/** Returns a fresh bearer token; called before every connect. */
export type TokenProvider = () => string | Promise<string>;

/**
 * When a JWT expires (ms since the epoch), read from its payload without
 * verifying it (the server does); null when it is not a JWT with an `exp`.
 */
export function tokenExpiryMs(token: string): number | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const base64 = payload.replaceAll("-", "+").replaceAll("_", "/");
    const claims = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="))) as {
      exp?: unknown;
    };
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
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
  /** A heartbeat to send (return null to send the text keepalive "ping"). */
  ping?: () => string | Uint8Array | null;
  onOpen?: () => void;
  onMessage: (data: string | ArrayBuffer) => void;
  onState?: (state: ConnectionState, detail: Omit<StateChange, "state">) => void;
  /** The WebSocket class (global by default: browsers, Node ≥ 22, Workers). */
  WebSocket?: typeof WebSocket;
}

/** The connection settings a view passes through from its own options. */
export type ConnectionTuning = Pick<
  ConnectionOptions,
  "backoff" | "heartbeatMs" | "pongTimeoutMs" | "connectTimeoutMs" | "WebSocket"
>;

/** Those of `options` that are set (an unset one keeps the connection's default). */
export function tuningOf(options: ConnectionTuning): ConnectionTuning {
  const tuning: ConnectionTuning = {};
  if (options.backoff) tuning.backoff = options.backoff;
  if (options.heartbeatMs) tuning.heartbeatMs = options.heartbeatMs;
  if (options.pongTimeoutMs) tuning.pongTimeoutMs = options.pongTimeoutMs;
  if (options.connectTimeoutMs) tuning.connectTimeoutMs = options.connectTimeoutMs;
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
      token = await this.options.token();
      const url = await this.options.url();
      if (this.#closed) return;
      const Socket = this.options.WebSocket ?? globalThis.WebSocket;
      ws = new Socket(url, [
        ...this.options.protocols,
        READABLE_REFUSALS_PROTOCOL,
        `bearer.${token}`,
      ]);
    } catch (err) {
      if (err instanceof RefusedError) this.#ended(err.code, err.reason, false);
      else this.#retry(undefined, "could not connect");
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
    let heard = false;
    ws.addEventListener("message", (event) => {
      heard = true;
      this.options.onMessage(event.data as string | ArrayBuffer);
    });
    ws.addEventListener("close", (event) => {
      clearTimeout(handshake);
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#clearTimers();
      this.#ended(event.code, event.reason, heard);
    });
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
      const ping = this.options.ping?.() ?? "ping";
      if (!this.send(ping)) return;
      if (this.#pongDeadline) return;
      this.#pongDeadline = setTimeout(() => {
        // No answer: the connection is dead even if the socket does not know it yet.
        this.#pongDeadline = null;
        try {
          this.#ws?.close(4000, "heartbeat timeout");
        } catch {
          // Already closing.
        }
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
        try {
          this.#ws?.close(CloseCode.TOKEN_EXPIRED, "token expiring: reconnecting with a new one");
        } catch {
          // Already closing.
        }
      },
      Math.min(Math.max(left - early, 0), 2 ** 31 - 1),
    );
  }

  #clearTimers(): void {
    for (const timer of [this.#timer, this.#pongDeadline, this.#refresh])
      if (timer) clearTimeout(timer);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#timer = this.#pongDeadline = this.#heartbeat = this.#refresh = null;
  }

  #setState(state: ConnectionState, detail: { code?: number; reason?: string }): void {
    this.state = state;
    this.options.onState?.(state, { ...detail, attempt: this.#attempt });
  }
}
