/**
 * Encoding of stream frames. JSON frames are the proto3 JSON form of
 * `ServerFrame`/`ClientFrame`; a frame's type is the `kind` field that is set.
 */
import { create, fromJsonString, toJsonString } from "@bufbuild/protobuf";
import type { ServiceError } from "../errors";
import {
  type ClientFrame,
  ClientFrameSchema,
  ErrorFrameSchema,
  HeartbeatSchema,
  PongSchema,
  ResumeResultSchema,
  type ServerFrame,
  ServerFrameSchema,
  SnapshotSchema,
} from "../gen/crafting/v1/frames_pb";
import type { HealthSnapshot } from "../gen/crafting/v1/health_pb";
import type { MaterialNotification } from "../gen/crafting/v1/materials_pb";
import type { QueueSnapshot } from "../gen/crafting/v1/queue_pb";
import type {
  SessionState as SessionStateMessage,
  SessionUpdate,
} from "../gen/crafting/v1/session_pb";
import type { WorkflowUpdate } from "../gen/crafting/v1/workflow_pb";
import { sessionEndedOnWire } from "./session-wire";
import { workflowEndedOnWire } from "./workflow-wire";

/** Largest inbound frame a stream accepts (bytes); larger ones close the stream with 1009. */
export const MAX_CLIENT_FRAME_BYTES = 64 * 1024;

/** Where a frame stands in the watched state's history. */
export interface FramePosition {
  seq: number;
  epoch: number;
  serverTimeMs: number;
  traceId?: string;
}

function frame(position: FramePosition, kind: ServerFrame["kind"]): ServerFrame {
  return create(ServerFrameSchema, {
    seq: position.seq,
    epoch: position.epoch,
    serverTimeMs: BigInt(Math.floor(position.serverTimeMs)),
    traceId: position.traceId ?? "",
    kind,
  });
}

/**
 * Whether `frame` is its stream's last: the session or workflow it carries
 * has ended, and the server ends the stream after it.
 */
export function endsStream({ kind }: ServerFrame): boolean {
  switch (kind.case) {
    case "update":
      return sessionEndedOnWire(kind.value.status);
    case "workflow":
      return workflowEndedOnWire(kind.value.status);
    case "snapshot": {
      const { state } = kind.value;
      if (state.case === "session") return sessionEndedOnWire(state.value.status);
      if (state.case === "workflow") return workflowEndedOnWire(state.value.status);
      return false;
    }
    default:
      return false;
  }
}

/** A snapshot of a session; `recovered` answers a resume. */
export function snapshotFrame(
  position: FramePosition,
  session: SessionStateMessage,
  recovered = false,
): ServerFrame {
  return frame(position, {
    case: "snapshot",
    value: create(SnapshotSchema, { state: { case: "session", value: session }, recovered }),
  });
}

/** The service's health and load (the operators' health stream). */
export function healthFrame(position: FramePosition, health: HealthSnapshot): ServerFrame {
  return frame(position, { case: "health", value: health });
}

/** A snapshot of a player's crafting queue; `recovered` answers a resume. */
export function queueSnapshotFrame(
  position: FramePosition,
  queue: QueueSnapshot,
  recovered = false,
): ServerFrame {
  return frame(position, {
    case: "snapshot",
    value: create(SnapshotSchema, { state: { case: "queue", value: queue }, recovered }),
  });
}

/** A change of a player's crafting queue: the whole queue (it is small). */
export function queueFrame(position: FramePosition, queue: QueueSnapshot): ServerFrame {
  return frame(position, { case: "queue", value: queue });
}

/** A snapshot of a workflow; `recovered` answers a resume. */
export function workflowSnapshotFrame(
  position: FramePosition,
  workflow: WorkflowUpdate,
  recovered = false,
): ServerFrame {
  return frame(position, {
    case: "snapshot",
    value: create(SnapshotSchema, { state: { case: "workflow", value: workflow }, recovered }),
  });
}

/** A change of a workflow: all of it. */
export function workflowFrame(position: FramePosition, workflow: WorkflowUpdate): ServerFrame {
  return frame(position, { case: "workflow", value: workflow });
}

/** An update of a session. */
export function updateFrame(position: FramePosition, update: SessionUpdate): ServerFrame {
  return frame(position, { case: "update", value: update });
}

/** A change in the availability of a session's materials. */
export function materialFrame(
  position: FramePosition,
  notification: MaterialNotification,
): ServerFrame {
  return frame(position, { case: "material", value: notification });
}

/** An error on the stream; the stream stays open. */
export function errorFrame(position: FramePosition, error: ServiceError): ServerFrame {
  return frame(position, { case: "error", value: create(ErrorFrameSchema, error) });
}

/** The answer to a Ping, carrying both clocks. */
export function pongFrame(position: FramePosition, clientTimeMs: bigint): ServerFrame {
  return frame(position, {
    case: "pong",
    value: create(PongSchema, {
      clientTimeMs,
      serverTimeMs: BigInt(Math.floor(position.serverTimeMs)),
    }),
  });
}

/** Marks the end of a replay: the client missed nothing and is live. */
export function resumedFrame(
  position: FramePosition,
  fromSeq: number,
  replayed: number,
): ServerFrame {
  return frame(position, {
    case: "resumed",
    value: create(ResumeResultSchema, { fromSeq, replayed }),
  });
}

/** The server's periodic sign of life. */
export function heartbeatFrame(position: FramePosition, idleTimeoutMs: number): ServerFrame {
  return frame(position, { case: "heartbeat", value: create(HeartbeatSchema, { idleTimeoutMs }) });
}

/** A server frame as a JSON text frame. */
export function encodeJson(frame: ServerFrame): string {
  return toJsonString(ServerFrameSchema, frame);
}

/** What a JSON frame of no kind the server knows is told: the frames it takes, as written. */
const NO_KNOWN_KIND =
  'frame has no known kind: send {"ping":{"clientTimeMs":"<ms>"}}, {"resume":{"epoch":<epoch>,"seq":<seq>}} or the text frame ping';

/** Decodes a JSON text frame from a client; garbage is an error value, never a throw. */
export function decodeClientJson(
  text: string,
): { ok: true; frame: ClientFrame } | { ok: false; error: ServiceError } {
  try {
    const frame = fromJsonString(ClientFrameSchema, text, { ignoreUnknownFields: true });
    if (frame.kind.case === undefined) {
      return {
        ok: false,
        error: { code: "invalid_argument", message: NO_KNOWN_KIND },
      };
    }
    return { ok: true, frame };
  } catch (e: unknown) {
    const detail = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      error: { code: "invalid_argument", message: `malformed frame: ${detail}` },
    };
  }
}
