/**
 * Request bodies sent with a content coding (`Content-Encoding: gzip` or
 * `deflate`, as HTTP clients and Kafka sinks may send them): every route
 * that reads a body decodes them, caps the decoded size, and refuses a
 * coding it cannot read or a body that is not what its coding says, with
 * a clear 4xx that changes nothing.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { freshId } from "../support/tokens";
import {
  ROUTES,
  type Route,
  type RouteContext,
  routeContext,
  routeLabel,
  sendBody,
  sessionSeq,
} from "./body-routes";

/** `bytes` compressed in `format`, by the runtime's own CompressionStream. */
async function compress(bytes: Uint8Array, format: "gzip" | "deflate"): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream(format));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const encode = (text: string) => new TextEncoder().encode(text);

/** A body that streams in with no Content-Length, as chunked requests do. */
function streamed(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes]).stream();
}

let context: RouteContext;

beforeAll(async () => {
  context = await routeContext();
});

function send(route: Route, body: BodyInit, headers: Record<string, string>): Promise<Response> {
  return sendBody(context, route, body, headers);
}

async function answerOf(response: Response) {
  const body = (await response.json()) as { error?: { code: string; message: string } };
  return { status: response.status, error: body.error ?? null };
}

describe("request bodies with a content coding, on every route that reads one", () => {
  for (const route of ROUTES) {
    it(`${routeLabel(route)}: gzip and deflate read as the plain body; others 415; a false coding 400`, async () => {
      // A body each route refuses on its content (an array where an object
      // goes, or no events), so the answer shows what the route read.
      const plain = encode("[]");
      const expected = await answerOf(await send(route, plain, {}));
      for (const coding of ["gzip", "x-gzip", "deflate"] as const) {
        const format = coding === "deflate" ? "deflate" : "gzip";
        const packed = await compress(plain, format);
        expect(await answerOf(await send(route, packed, { "Content-Encoding": coding }))).toEqual(
          expected,
        );
        expect(
          await answerOf(await send(route, streamed(packed), { "Content-Encoding": coding })),
          `${coding}, streamed`,
        ).toEqual(expected);
      }

      const before = await sessionSeq(context);
      for (const coding of ["br", "zstd", "gzip, gzip", "constructor"]) {
        const response = await send(route, plain, { "Content-Encoding": coding });
        expect(response.headers.get("Accept-Encoding"), coding).toBe("gzip, deflate");
        expect(await answerOf(response), coding).toMatchObject({
          status: 415,
          error: { code: "unsupported_media_type" },
        });
      }
      for (const [coding, body] of [
        ["gzip", plain],
        ["deflate", plain],
        ["gzip", (await compress(plain, "gzip")).slice(0, 12)],
      ] as const) {
        expect(await answerOf(await send(route, body, { "Content-Encoding": coding }))).toEqual({
          status: 400,
          error: {
            code: "invalid_argument",
            message: `the body is not valid ${coding} (Content-Encoding)`,
          },
        });
      }
      expect(await sessionSeq(context)).toBe(before);
    });
  }
});

describe("what a coded body does", () => {
  const [progress, events] = ["/udp/sessions/{id}/progress", "/v1/events"].map((path) => {
    const route = ROUTES.find((r) => routeLabel(r).endsWith(path));
    if (!route) throw new Error(`no route ${path}`);
    return route;
  }) as [Route, Route];

  it("a gzipped progress correction is applied like a plain one", async () => {
    const before = await sessionSeq(context);
    const body = await compress(encode(JSON.stringify({ progress_percent: 25 })), "gzip");
    const response = await send(progress, body, { "Content-Encoding": "gzip" });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { seq: number }).seq).toBe(before + 1);
    expect(await sessionSeq(context)).toBe(before + 1);
  });

  it("a deflated batch of events in JSON lines is taken whole", async () => {
    const sessionId = freshId("s");
    const lines = ["start", "pause"].map((type, i) =>
      JSON.stringify({
        event_id: crypto.randomUUID(),
        event_type: `crafting.session.${type}`,
        occurred_at: new Date().toISOString(),
        session_id: sessionId,
        player_id: context.ids.playerId,
        version: i + 1,
        payload:
          type === "start"
            ? { recipe_id: "iron-sword", steps: [{ name: "smelt", duration_ms: 30_000 }] }
            : {},
      }),
    );
    const body = await compress(encode(lines.join("\n")), "deflate");
    const response = await send(events, body, {
      "Content-Encoding": "deflate",
      "Content-Type": "application/x-ndjson",
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ accepted: 2 });
  });

  it("a small body that inflates past the cap is refused with 413 and applies nothing", async () => {
    const before = await sessionSeq(context);
    // 8 MB of JSON whitespace around a valid correction: ~8 KB compressed.
    const huge = encode(`${" ".repeat(8 * 1024 * 1024)}{"progress_percent":30}`);
    const bomb = await compress(huge, "gzip");
    expect(bomb.byteLength).toBeLessThan(64 * 1024);
    for (const body of [bomb, streamed(bomb)]) {
      expect(await answerOf(await send(progress, body, { "Content-Encoding": "gzip" }))).toEqual({
        status: 413,
        error: { code: "payload_too_large", message: "the body exceeds 65536 bytes" },
      });
    }
    const eventsBomb = await compress(new Uint8Array(8 * 1024 * 1024).fill(0x20), "gzip");
    expect(
      await answerOf(await send(events, streamed(eventsBomb), { "Content-Encoding": "gzip" })),
    ).toMatchObject({ status: 413, error: { code: "payload_too_large" } });
    expect(await sessionSeq(context)).toBe(before);
  });
});
