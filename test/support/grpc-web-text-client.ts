/**
 * The official grpc-web client (npm `grpc-web`) in its text mode
 * (`application/grpc-web-text`, its only mode that streams from the
 * server), as a browser page runs it: bundled into a page by
 * test/e2e/rpc.test.ts. Messages are read with the generated protobuf-es
 * schemas; nothing of the service's own client code is used.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { GrpcWebClientBase, MethodDescriptor, MethodType } from "grpc-web";
import {
  type StreamCraftingProgressRequest,
  StreamCraftingProgressRequestSchema,
  type StreamCraftingProgressResponse,
  StreamCraftingProgressResponseSchema,
} from "../../src/gen/crafting/v1/streaming_service_pb";

const METHOD = "/crafting.v1.CraftingStreamingService/StreamCraftingProgress";

/** What a page saw of one call: each message, then how it ended. */
export interface Followed {
  messages: { seq: number; status: number; percent: number; materials: string[]; cause: string }[];
  end: { code: number; message: string } | null;
}

/** Follows a session with `bearer` until the call ends; `seen` grows as messages come. */
export function follow(
  baseUrl: string,
  bearer: string,
  sessionId: string,
  seen: Followed,
): Promise<Followed> {
  const client = new GrpcWebClientBase({ format: "text" });
  const descriptor = new MethodDescriptor<
    StreamCraftingProgressRequest,
    StreamCraftingProgressResponse
  >(
    METHOD,
    MethodType.SERVER_STREAMING,
    Object as never,
    Object as never,
    (request: StreamCraftingProgressRequest) =>
      toBinary(StreamCraftingProgressRequestSchema, request),
    (bytes: Uint8Array) => fromBinary(StreamCraftingProgressResponseSchema, bytes),
  );
  const request = create(StreamCraftingProgressRequestSchema, { sessionId });
  return new Promise((resolve) => {
    const stream = client.serverStreaming(
      `${baseUrl}${METHOD}`,
      request,
      { Authorization: `Bearer ${bearer}` },
      descriptor,
    );
    stream.on("data", (m: StreamCraftingProgressResponse) => {
      seen.messages.push({
        seq: m.seq,
        status: m.status,
        percent: Math.round(m.update?.progressPercent ?? -1),
        materials: m.materials.map((x) => `${x.materialId} ${x.available}/${x.required}`),
        cause: m.cause,
      });
    });
    stream.on("status", (status) => {
      seen.end = { code: status.code, message: status.details };
    });
    stream.on("error", (error) => {
      seen.end = { code: error.code, message: error.message };
      resolve(seen);
    });
    stream.on("end", () => resolve(seen));
  });
}
