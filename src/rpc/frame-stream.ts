/**
 * The Worker's end of a stream it holds for a streaming-RPC client: the same
 * WebSocket stream a game client gets from the Durable Object (same slots,
 * owner checks, resume log, token expiry), read as an async sequence of
 * frames. The Worker keeps the stream alive with keepalive pings while the
 * RPC client is connected, and closes it the moment the client cancels.
 */
import { fromJsonString } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "../gen/crafting/v1/frames_pb";

/** How a stream ended: the Durable Object's close code and reason, or the client's cancel. */
export interface StreamEnd {
  code: number;
  reason: string;
  cancelled: boolean;
}

/** Why the Worker closes a stream whose final frame came (the RPC then ends `OK`). */
export const STREAM_ENDED_REASON = "the watched state ended";

/** Keepalive pings (answered by the runtime, they never wake the object): well inside the 30 s idle rule. */
export const KEEPALIVE_INTERVAL_MS = 10_000;

/**
 * Frames of an accepted stream (`response` is the object's 101) until it
 * closes or `signal` aborts (frames already received still come first);
 * returns how it ended.
 */
export async function* streamFrames(
  response: Response,
  signal: AbortSignal,
): AsyncGenerator<ServerFrame, StreamEnd> {
  const ws = response.webSocket;
  if (!ws) throw new Error("the stream's object answered without a WebSocket");
  ws.accept();
  const pending: ServerFrame[] = [];
  // Set once, by whichever comes first: the object's close, an error, the client's cancel.
  const ended: { end: StreamEnd | null } = { end: null };
  let wake: (() => void) | null = null;
  const notify = () => wake?.();
  ws.addEventListener("message", (event) => {
    // Text "pong" answers our keepalive; every other frame is a ServerFrame in JSON.
    if (typeof event.data !== "string" || event.data === "pong") return;
    pending.push(fromJsonString(ServerFrameSchema, event.data, { ignoreUnknownFields: true }));
    notify();
  });
  ws.addEventListener("close", (event) => {
    ended.end ??= { code: event.code, reason: event.reason, cancelled: false };
    notify();
  });
  ws.addEventListener("error", () => {
    ended.end ??= { code: 1011, reason: "the stream failed", cancelled: false };
    notify();
  });
  // Aborted with a reason (STREAM_ENDED_REASON, the token's expiry), or by the client.
  const cancel = () => {
    const reason = typeof signal.reason === "string" ? signal.reason : "cancelled by the client";
    ended.end ??= { code: 1000, reason, cancelled: true };
    notify();
  };
  if (signal.aborted) cancel();
  signal.addEventListener("abort", cancel);
  const keepalive = setInterval(() => {
    try {
      ws.send("ping");
    } catch {
      // Closing already: the close event ends the stream.
    }
  }, KEEPALIVE_INTERVAL_MS);
  try {
    for (;;) {
      const frame = pending.shift();
      if (frame) {
        yield frame;
        continue;
      }
      if (ended.end) return ended.end;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  } finally {
    clearInterval(keepalive);
    signal.removeEventListener("abort", cancel);
    // Ends the object's side at once: its slot is freed and its work stops.
    try {
      ws.close(1000, ended.end?.cancelled ? ended.end.reason : "rpc ended");
    } catch {
      // Already closed.
    }
  }
}
