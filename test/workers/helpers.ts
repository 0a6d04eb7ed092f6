/** Talking to the Worker from inside workerd, as a real client would. */
import { exports } from "cloudflare:workers";
import { serviceToken } from "../support/tokens";

/** A request to the Worker's own fetch handler. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`https://crafting.test${path}`, init));
}

/** A crafting-service call with a JSON body. */
export async function serviceCall(
  path: string,
  body?: unknown,
  method = "POST",
): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${await serviceToken()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return call(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** Creates a two-step session owned by `playerId`. */
export async function createSession(sessionId: string, playerId: string): Promise<Response> {
  return serviceCall("/v1/sessions", {
    session_id: sessionId,
    player_id: playerId,
    recipe_id: "iron-sword",
    steps: [
      { name: "smelt", duration_ms: 60_000 },
      { name: "forge", duration_ms: 60_000 },
    ],
  });
}

/** A JSON server frame as received. */
export type Frame = Record<string, unknown> & { seq?: number; epoch?: number };

/** A client WebSocket that queues frames and close events for the test to await. */
export class TestSocket {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  #waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (event) => {
      this.frames.push(JSON.parse(String(event.data)) as Frame);
      this.#wake();
    });
    ws.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.#wake();
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Waits until `predicate` holds, or fails after `timeoutMs`. */
  async until(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames)}`);
      await Promise.race([
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        new Promise((resolve) => setTimeout(resolve, 50)),
      ]);
    }
  }

  /** Waits for `count` frames in all. */
  async frameCount(count: number): Promise<Frame[]> {
    await this.until(() => this.frames.length >= count, `${count} frames`);
    return this.frames.slice(0, count);
  }

  /** Waits for the close. */
  async closing(): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closed !== null, "close");
    return this.closed as { code: number; reason: string };
  }
}

/** Opens a session stream with a player token in the Authorization header. */
export async function openStream(
  sessionId: string,
  bearer: string,
  headers: Record<string, string> = {},
  query = "",
) {
  const response = await call(`/ws/crafting/${sessionId}${query}`, {
    headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}`, ...headers },
  });
  return { response, socket: response.webSocket ? new TestSocket(response.webSocket) : null };
}

/** Opens a session stream that must be accepted, and returns its client end. */
export async function watch(sessionId: string, bearer: string, query = ""): Promise<TestSocket> {
  const { response, socket } = await openStream(sessionId, bearer, {}, query);
  if (response.status !== 101 || !socket)
    throw new Error(`upgrade refused: ${response.status} ${await response.text()}`);
  return socket;
}
