/** A `ws` client that records JSON frames and the close, for end-to-end tests. */
import WebSocket from "ws";
import { type Frame, FrameLog } from "./frame-log";

export type { Frame } from "./frame-log";

/** Result of trying to open a stream: either an open client or the refusal. */
export type OpenResult =
  | { ok: true; client: WsClient; protocol: string }
  | { ok: false; status: number; body: string };

/** A connected client. */
export class WsClient extends FrameLog {
  constructor(readonly socket: WebSocket) {
    super(10_000);
    socket.on("message", (data, isBinary) => {
      this.received(isBinary ? { binary: data } : parseText(String(data)));
    });
    socket.on("close", (code, reason) => this.ended({ code, reason: reason.toString() }));
  }

  close(): void {
    this.socket.close(1000);
  }
}

/** Opens `url`; resolves with the client, or with the HTTP refusal. */
export function openWs(
  url: string,
  options: { headers?: Record<string, string>; protocols?: string[] } = {},
) {
  return new Promise<OpenResult>((resolve, reject) => {
    // Local workerd answers a server-initiated close handshake but leaves the
    // TCP connection open, so `ws` would report the close only after its
    // 30 s close timeout; the close code and reason are already final.
    // (`closeTimeout` exists in ws 8 but not in its type definitions.)
    const clientOptions: WebSocket.ClientOptions & { closeTimeout: number } = {
      headers: options.headers ?? {},
      closeTimeout: 500,
    };
    const socket = new WebSocket(url, options.protocols ?? [], clientOptions);
    const client = new WsClient(socket);
    socket.once("open", () => resolve({ ok: true, client, protocol: socket.protocol }));
    socket.once("unexpected-response", (_request, response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on("end", () => resolve({ ok: false, status: response.statusCode ?? 0, body }));
    });
    socket.once("error", (error) => {
      if (socket.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

/** A JSON frame, or the runtime's plain "pong" answer to "ping" as `{ text }`. */
function parseText(text: string): Frame {
  try {
    return JSON.parse(text) as Frame;
  } catch {
    return { text };
  }
}
