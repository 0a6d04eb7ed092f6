/**
 * gRPC-Web's text mode (`application/grpc-web-text`): gRPC-Web in base64,
 * what the official grpc-web client sends in `mode=grpcwebtext`, the one
 * mode in which it streams from the server. connect-es serves binary
 * gRPC-Web only, so a text call is decoded into a binary one, and each
 * chunk of the binary answer goes out base64-encoded on its own: padding in
 * mid-stream is allowed, and clients decode chunk by chunk (the gRPC-Web
 * protocol, "Text-encoded (response) streams").
 */

const TEXT_TYPE = /^application\/grpc-web-text(?:\+proto)?\s*(?:;|$)/i;
const BINARY_TYPE = "application/grpc-web+proto";
const ANSWER_TYPE = "application/grpc-web-text+proto";
const encoder = new TextEncoder();
/** gRPC status codes these answers use. */
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;

/** True for a call in gRPC-Web's text mode. */
export function isGrpcWebText(contentType: string): boolean {
  return TEXT_TYPE.test(contentType);
}

/**
 * Serves a text-mode call with `serve`, which speaks binary gRPC-Web: the
 * request's body decoded (at most `maxBytes` of message once decoded), the
 * answer's body encoded. A body that is not base64, or too large, is
 * answered as gRPC-Web answers any error: a status in the headers.
 */
export async function serveGrpcWebText(
  request: Request,
  maxBytes: number,
  serve: (binary: Request) => Promise<Response>,
): Promise<Response> {
  const text = (await request.text()).replace(/\s+/g, "");
  // A framed message is 5 bytes of header and the message; base64 is 4 characters per 3 bytes.
  if (text.length > Math.ceil((maxBytes + 5) / 3) * 4) {
    return refused(RESOURCE_EXHAUSTED, `the request is larger than ${maxBytes} bytes`);
  }
  let body: Uint8Array;
  try {
    body = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return refused(
      INVALID_ARGUMENT,
      "the body of an application/grpc-web-text call must be base64",
    );
  }
  const headers = new Headers(request.headers);
  headers.set("Content-Type", BINARY_TYPE);
  headers.delete("Content-Length");
  const answer = await serve(
    new Request(request.url, { method: "POST", headers, body, signal: request.signal }),
  );
  const answerHeaders = new Headers(answer.headers);
  answerHeaders.set("Content-Type", ANSWER_TYPE);
  answerHeaders.delete("Content-Length");
  const encoded = answer.body?.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        if (chunk.byteLength > 0) out.enqueue(encoder.encode(base64(chunk)));
      },
    }),
  );
  return new Response(encoded ?? null, { status: answer.status, headers: answerHeaders });
}

/** An error as gRPC-Web says one with no message before it: its status in the headers. */
function refused(status: number, message: string): Response {
  return new Response(null, {
    status: 200,
    headers: {
      "Content-Type": ANSWER_TYPE,
      "grpc-status": String(status),
      "grpc-message": encodeURIComponent(message),
    },
  });
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
