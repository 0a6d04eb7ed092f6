/** Which frame is its stream's last: the RPC relay ends the stream after it. */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { QueueSnapshotSchema } from "../../src/gen/crafting/v1/queue_pb";
import {
  SessionStateSchema,
  SessionStatus,
  SessionUpdateSchema,
} from "../../src/gen/crafting/v1/session_pb";
import { WorkflowStatus, WorkflowUpdateSchema } from "../../src/gen/crafting/v1/workflow_pb";
import {
  decodeClientJson,
  endsStream,
  pongFrame,
  queueSnapshotFrame,
  snapshotFrame,
  updateFrame,
  workflowFrame,
  workflowSnapshotFrame,
} from "../../src/protocol/frames";

const at = { seq: 7, epoch: 1, serverTimeMs: 1_800_000_000_000 };
const FINAL_SESSION = [SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED];
const FINAL_WORKFLOW = [WorkflowStatus.COMPLETED, WorkflowStatus.FAILED];

describe("endsStream", () => {
  it("is true of a session's update or snapshot in a final status, and only then", () => {
    for (const status of Object.values(SessionStatus).filter((s) => typeof s === "number")) {
      const final = FINAL_SESSION.includes(status);
      expect(endsStream(updateFrame(at, create(SessionUpdateSchema, { status })))).toBe(final);
      expect(endsStream(snapshotFrame(at, create(SessionStateSchema, { status })))).toBe(final);
    }
  });

  it("is true of a workflow's frame or snapshot in a final status, and only then", () => {
    for (const status of Object.values(WorkflowStatus).filter((s) => typeof s === "number")) {
      const final = FINAL_WORKFLOW.includes(status);
      const workflow = create(WorkflowUpdateSchema, { status });
      expect(endsStream(workflowFrame(at, workflow))).toBe(final);
      expect(endsStream(workflowSnapshotFrame(at, workflow))).toBe(final);
    }
  });

  it("is false of a queue and of the frames that carry no state", () => {
    expect(endsStream(queueSnapshotFrame(at, create(QueueSnapshotSchema, {})))).toBe(false);
    expect(endsStream(pongFrame(at, 1n))).toBe(false);
  });
});

describe("decodeClientJson", () => {
  it("tells a frame of no kind it knows which frames it takes, as written", () => {
    for (const text of ['{"type":"ping"}', "{}", '{"subscribe":{"sessionId":"s-1"}}']) {
      const decoded = decodeClientJson(text);
      expect(decoded.ok).toBe(false);
      const message = decoded.ok ? "" : decoded.error.message;
      expect(message).toContain('{"ping":{"clientTimeMs":"<ms>"}}');
      expect(message).toContain('{"resume":{"epoch":<epoch>,"seq":<seq>}}');
    }
    // What it names is taken.
    expect(decodeClientJson('{"ping":{"clientTimeMs":"1"}}').ok).toBe(true);
    expect(decodeClientJson('{"resume":{"epoch":1,"seq":2}}').ok).toBe(true);
  });
});
