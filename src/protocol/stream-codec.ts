/**
 * How a stream's frames travel, chosen by its subprotocol: `crafting.v1.json`
 * (proto3 JSON text frames, the default), `crafting.v1.bin` (binary protobuf
 * frames: the same `ServerFrame`/`ClientFrame`, the same information), or
 * `crafting.sync.v1` (the compact sync channel's packets, src/protocol/sync).
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ServiceError } from "../errors";
import {
  type ClientFrame,
  ClientFrameSchema,
  type ServerFrame,
  ServerFrameSchema,
} from "../gen/crafting/v1/frames_pb";
import { decodeClientJson, encodeJson } from "./frames";

/** The subprotocols, by name. */
export const SUBPROTOCOL = {
  json: "crafting.v1.json",
  binary: "crafting.v1.bin",
  sync: "crafting.sync.v1",
} as const;

export type StreamCodec = keyof typeof SUBPROTOCOL;

/** The ingest stream's subprotocol (crafting-service's corrections; offering none is fine too). */
export const INGEST_PROTOCOL = "crafting.ingest.v1";

/** The tag a socket is accepted with, so deliveries find each codec's sockets without reading attachments. */
export const CODEC_TAG: Record<StreamCodec, string> = {
  json: "codec:json",
  binary: "codec:binary",
  sync: "codec:sync",
};

/** The codec a negotiated subprotocol selects (JSON when none was). */
export function codecOf(protocol: string | null): StreamCodec {
  if (protocol === SUBPROTOCOL.binary) return "binary";
  if (protocol === SUBPROTOCOL.sync) return "sync";
  return "json";
}

/** A frame as a JSON text frame or a binary frame. */
export function encodeFrame(codec: "json" | "binary", frame: ServerFrame): string | Uint8Array {
  return codec === "binary" ? toBinary(ServerFrameSchema, frame) : encodeJson(frame);
}

/**
 * A client frame in the stream's codec; anything else is an error value.
 * Unknown fields are tolerated (newer clients), garbage is not.
 */
export function decodeClientFrame(
  codec: "json" | "binary",
  message: string | ArrayBuffer,
): { ok: true; frame: ClientFrame } | { ok: false; error: ServiceError } {
  if (codec === "json") {
    if (typeof message === "string") return decodeClientJson(message);
    return invalid("this stream speaks crafting.v1.json: send text frames");
  }
  if (typeof message === "string")
    return invalid("this stream speaks crafting.v1.bin: send binary frames");
  try {
    const frame = fromBinary(ClientFrameSchema, new Uint8Array(message));
    if (frame.kind.case === undefined) return invalid("frame has no known kind (ping or resume)");
    return { ok: true, frame };
  } catch (e) {
    return invalid(`malformed frame: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function invalid(message: string): { ok: false; error: ServiceError } {
  return { ok: false, error: { code: "invalid_argument", message } };
}
