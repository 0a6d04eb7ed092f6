/** Talking to the Worker from inside workerd, as a real client would. */
import { createExecutionContext, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { onTestFinished, vi } from "vitest";
import worker from "../../src/index";
import { type Frame, FrameLog } from "../support/frame-log";
import { serviceToken } from "../support/tokens";

/** A request to the Worker's own fetch handler. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`https://crafting.test${path}`, init));
}

/**
 * Requests to the Worker as deployed with `configured` bindings (other
 * settings, a binding that fails): same paths and answers as `call`.
 */
export function callWith(configured: Env) {
  return async (path: string, init: RequestInit = {}): Promise<Response> =>
    worker.fetch(
      new Request(`https://crafting.test${path}`, init),
      configured,
      createExecutionContext(),
    );
}

/** The value of one series in /metrics, its labels as written (sorted): 0 when absent. */
export async function metricSeries(name: string, labels: string): Promise<number> {
  const text = await (
    await call("/metrics", { headers: { Authorization: `Bearer ${await serviceToken()}` } })
  ).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

/** A series once the counts already made have been pushed (pushes come within a second). */
export async function metricSettled(name: string, labels: string): Promise<number> {
  let last = await metricSeries(name, labels);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const now = await metricSeries(name, labels);
    if (now === last) return now;
    last = now;
  }
}

/** Polls a series until it has grown by at least `by` since `from` (10 s at most): how much it grew. */
export async function metricGrows(
  name: string,
  labels: string,
  from: number,
  by: number,
): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = await metricSeries(name, labels);
    if (now - from >= by || Date.now() > deadline) return now - from;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** What a stub call answers when its object is overloaded, as the platform says it. */
export const overloaded = (): Promise<never> =>
  Promise.reject(Object.assign(new Error("Durable Object is overloaded"), { overloaded: true }));

/**
 * `namespace` whose stubs are `fake(name)`, or the real stub where it
 * answers undefined: an object unreachable or failing, for one caller.
 */
export function stubsFrom<N extends { getByName(name: string): unknown }>(
  namespace: N,
  fake: (name: string) => object | undefined,
): N {
  return new Proxy(namespace, {
    get: (target, property) =>
      property === "getByName"
        ? (name: string) => fake(name) ?? target.getByName(name)
        : Reflect.get(target, property),
  });
}

/**
 * Gives the object behind `stub` a `binding` whose stubs are `fake(name)`
 * (`stubsFrom`), as it calls other objects; the answer puts the real one back.
 */
export async function rebindIn(
  stub: DurableObjectStub,
  binding: "PLAYER" | "CRAFTING_SESSION" | "CRAFTING_WORKFLOW",
  fake: (name: string) => object | undefined,
): Promise<() => Promise<void>> {
  const restore = await runInDurableObject(stub, (instance: object) => {
    const held = instance as { env: Env };
    const real = held.env;
    held.env = { ...real, [binding]: stubsFrom(real[binding], fake) };
    return () => {
      held.env = real;
    };
  });
  return () => runInDurableObject(stub, () => restore());
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

/** An error answer's status and its `{ error: { code, message } }`. */
export async function errorOf(
  response: Response,
): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, ...body.error };
}

/** Creates a two-step session owned by `playerId`. */
export async function createSession(
  sessionId: string,
  playerId: string,
  /** Fields in place of the defaults (`steps`) or besides them (`materials`). */
  more: Record<string, unknown> = {},
): Promise<Response> {
  return serviceCall("/v1/sessions", {
    session_id: sessionId,
    player_id: playerId,
    recipe_id: "iron-sword",
    steps: [
      { name: "smelt", duration_ms: 60_000 },
      { name: "forge", duration_ms: 60_000 },
    ],
    ...more,
  });
}

export type { Frame } from "../support/frame-log";

/** A client WebSocket in workerd that records frames and the close for the test to await. */
export class TestSocket extends FrameLog {
  constructor(readonly ws: WebSocket) {
    super(5_000);
    ws.accept();
    ws.addEventListener("message", (event) =>
      this.received(JSON.parse(String(event.data)) as Frame),
    );
    ws.addEventListener("close", (event) => this.ended({ code: event.code, reason: event.reason }));
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

/** A client socket that keeps every message as it came: text or bytes. */
export class RawSocket {
  readonly messages: (string | Uint8Array)[] = [];
  closed: { code: number; reason: string } | null = null;
  constructor(readonly ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    ws.accept();
    ws.addEventListener("message", (event) => {
      this.messages.push(
        typeof event.data === "string" ? event.data : new Uint8Array(event.data as ArrayBuffer),
      );
    });
    ws.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
    });
  }

  /** The first `n` messages, once they came. */
  async count(n: number): Promise<(string | Uint8Array)[]> {
    await this.until(() => this.messages.length >= n, `${n} messages`);
    return this.messages.slice(0, n);
  }

  /** Waits until `done` holds (or the stream closes first: an error naming `what`). */
  async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!done()) {
      if (this.closed) throw new Error(`closed ${this.closed.code} while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/**
 * Captures the log lines written until the test ends (or `restore`);
 * `events(name)` are those of one event, parsed. Call it inside a test.
 */
export function captureLogs() {
  const lines: string[] = [];
  const spies = (["log", "warn", "error"] as const).map((m) =>
    vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    }),
  );
  const restore = () => {
    for (const spy of spies) spy.mockRestore();
  };
  onTestFinished(restore);
  return {
    lines,
    events: (name: string) =>
      lines
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        })
        .filter((e) => e.event === name),
    restore,
  };
}
