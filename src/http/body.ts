/** Reading request bodies with a size cap and a content-type check. */
import { AppError } from "../errors";

/** Largest JSON body the HTTP API accepts (bytes). */
export const MAX_JSON_BODY_BYTES = 64 * 1024;

/** Strict UTF-8 (one for every request: a whole-buffer decode keeps no state). */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Reads a JSON body of at most `maxBytes`; an empty body reads as `{}` when
 * `optional`. `accept` is what a body of another type is told to be sent as:
 * every type the route takes.
 */
export async function readJsonBody(
  request: Request,
  { maxBytes = MAX_JSON_BODY_BYTES, optional = false, accept = "application/json" } = {},
): Promise<unknown> {
  const text = await readBodyText(request, {
    maxBytes,
    types: [/^application\/json\b/i],
    accept,
  });
  if (text === null) {
    if (optional) return {};
    throw new AppError("invalid_argument", "a JSON body is required");
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError("invalid_argument", "the body is not valid JSON");
  }
}

/**
 * Reads a UTF-8 body of at most `maxBytes` whose Content-Type (when sent)
 * matches one of `types`; null when empty.
 */
export async function readBodyText(
  request: Request,
  options: { maxBytes: number; types: readonly RegExp[]; accept: string },
): Promise<string | null> {
  const bytes = await readBodyBytes(request, options);
  if (bytes === null) return null;
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new AppError("invalid_argument", "the body is not valid UTF-8");
  }
}

/** Media type of binary protobuf bodies. */
export const PROTOBUF_TYPE = "application/x-protobuf";

/** What a route that takes a body as JSON or as its proto message tells a body of another type. */
export const JSON_OR_PROTOBUF = `application/json or ${PROTOBUF_TYPE}`;

/** Whether a request's body is binary protobuf. */
export function isProtobuf(request: Request): boolean {
  return /^application\/(x-)?protobuf\b/i.test(request.headers.get("Content-Type") ?? "");
}

/** Whether a caller asked for binary protobuf answers. */
export function wantsProtobuf(request: Request): boolean {
  return /application\/(x-)?protobuf/i.test(request.headers.get("Accept") ?? "");
}

/** Reads a binary protobuf body of at most `maxBytes` (empty: no bytes, every field default). */
export async function readProtobufBody(
  request: Request,
  maxBytes = MAX_JSON_BODY_BYTES,
): Promise<Uint8Array> {
  const bytes = await readBodyBytes(request, {
    maxBytes,
    types: [/^application\/(x-)?protobuf\b/i],
    accept: PROTOBUF_TYPE,
  });
  return bytes ?? new Uint8Array();
}

/**
 * Reads a body of at most `maxBytes` whose Content-Type (when sent) matches
 * one of `types`; null when empty. A body sent with a content coding
 * (`Content-Encoding: gzip` or `deflate`) is decoded, and the cap counts the
 * decoded bytes, so a small body that inflates past it is stopped there. A
 * plain body that declares its length (within the cap) is read whole, as the
 * runtime frames it by that length; one that does not is counted as it
 * streams in, so it cannot get past the cap.
 */
async function readBodyBytes(
  request: Request,
  { maxBytes, types, accept }: { maxBytes: number; types: readonly RegExp[]; accept: string },
): Promise<Uint8Array | null> {
  const length = request.headers.get("Content-Length");
  const declared = length && /^\d{1,15}$/.test(length) ? Number(length) : null;
  if (declared !== null && declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return null;
  const contentType = request.headers.get("Content-Type") ?? "";
  if (contentType && !types.some((type) => type.test(contentType))) {
    throw new AppError("unsupported_media_type", `send the body as ${accept}`);
  }
  const coding = contentCoding(request.headers.get("Content-Encoding"));
  if (coding !== null) {
    if (declared === 0) return null;
    try {
      return await readCapped(request.body.pipeThrough(new DecompressionStream(coding)), maxBytes);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError("invalid_argument", `the body is not valid ${coding} (Content-Encoding)`);
    }
  }
  if (declared !== null) {
    const bytes = new Uint8Array(await request.arrayBuffer());
    if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
    return bytes.byteLength === 0 ? null : bytes;
  }
  return readCapped(request.body, maxBytes);
}

/** Reads a stream whole, refusing it (and cancelling the rest) past `maxBytes`; null when empty. */
async function readCapped(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  if (size === 0) return null;
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/** The content codings a request body may arrive in (RFC 9110 §8.4.1), as `DecompressionStream` names them. */
const DECODINGS = new Map<string, "gzip" | "deflate">([
  ["gzip", "gzip"],
  ["x-gzip", "gzip"],
  ["deflate", "deflate"],
]);

/** What a 415 for a content coding lists as readable (RFC 9110 §12.5.3). */
const ACCEPTED_ENCODINGS = "gzip, deflate";

/**
 * The decoding a body's `Content-Encoding` asks for: null for none
 * (absent or `identity`), else one of DECODINGS. Anything else — another
 * coding, or codings stacked on each other — is refused with 415 and
 * `Accept-Encoding`, rather than read as if it were plain.
 */
function contentCoding(header: string | null): "gzip" | "deflate" | null {
  if (header === null) return null;
  const codings = header
    .split(",")
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== "" && coding !== "identity");
  if (codings.length === 0) return null;
  const coding = codings.length === 1 ? DECODINGS.get(codings[0] ?? "") : undefined;
  if (coding) return coding;
  throw new AppError(
    "unsupported_media_type",
    `Content-Encoding "${header.slice(0, 40)}" is not read here: send the body as gzip, deflate or uncompressed`,
    undefined,
    { "Accept-Encoding": ACCEPTED_ENCODINGS },
  );
}

function tooLarge(maxBytes: number): AppError {
  return new AppError("payload_too_large", `the body exceeds ${maxBytes} bytes`);
}
