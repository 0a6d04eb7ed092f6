/**
 * Stream frames → the messages of `CraftingStreamingService`'s RPCs (seed
 * 000). Pure: the RPCs are served from the same frames as WebSocket streams.
 */
import { create } from "@bufbuild/protobuf";
import type { ServerFrame } from "../gen/crafting/v1/frames_pb";
import type { QueueEntry, QueueSnapshot } from "../gen/crafting/v1/queue_pb";
import type { SessionState } from "../gen/crafting/v1/session_pb";
import {
  type StreamCraftingProgressResponse,
  StreamCraftingProgressResponseSchema,
  type StreamCraftingQueueResponse,
  StreamCraftingQueueResponseSchema,
  type StreamMultiStepWorkflowResponse,
  StreamMultiStepWorkflowResponseSchema,
} from "../gen/crafting/v1/streaming_service_pb";
import { mergeMaterials, mergeUpdate } from "./session-merge";

/**
 * `StreamCraftingProgress` from a session's frames: seed 000's progress
 * fields, the materials and the failure with every message. Updates carry
 * only what changed, so the session is held here (from the snapshot, or
 * `base` when a resumed stream starts with replayed updates) and each update
 * and material change merged in. Every frame that has a seq of its own is a
 * message, so a client's count of seqs has no hole a frame left out made.
 */
export class SessionProgress {
  constructor(private state: SessionState | null = null) {}

  /** The message for one frame; null for frames the RPC does not carry. */
  next(frame: ServerFrame): StreamCraftingProgressResponse | null {
    const { kind, seq, epoch } = frame;
    let superseded = 0;
    let cause = "";
    if (kind.case === "snapshot" && kind.value.state.case === "session") {
      this.state = kind.value.state.value;
    } else if (kind.case === "update" && this.state) {
      this.state = mergeUpdate(this.state, kind.value, seq, Number(frame.serverTimeMs));
      superseded = kind.value.superseded;
      cause = kind.value.cause;
    } else if (kind.case === "material" && this.state) {
      this.state = mergeMaterials(this.state, kind.value, seq, Number(frame.serverTimeMs));
      cause = "material";
    } else {
      return null;
    }
    const { progress, status, clock, materials, failureReason } = this.state;
    return create(StreamCraftingProgressResponseSchema, {
      update: progress,
      status,
      clock,
      seq,
      epoch,
      superseded,
      snapshot: kind.case === "snapshot",
      materials,
      failureReason,
      cause,
    });
  }
}

/** A workflow frame as `StreamMultiStepWorkflow` sends it; null for frames it does not carry. */
export function workflowResponse(frame: ServerFrame): StreamMultiStepWorkflowResponse | null {
  const { kind, seq, epoch } = frame;
  const update =
    kind.case === "workflow"
      ? kind.value
      : kind.case === "snapshot" && kind.value.state.case === "workflow"
        ? kind.value.state.value
        : null;
  return update && create(StreamMultiStepWorkflowResponseSchema, { update, seq, epoch });
}

const entryKey = (entry: QueueEntry) =>
  `${entry.status}/${entry.queuePosition}/${entry.estimatedWaitSeconds}/${entry.recipeId}`;

/**
 * `StreamCraftingQueue` sends one entry per message: every entry on the
 * snapshot (marked `snapshot`, and one message without an entry for an
 * empty queue, so a client can tell it holds nothing), then, on each change,
 * the entries whose position, wait or status changed and the ones that
 * ended (with their final status). Each carries the player's slots; a
 * change that moved no entry (the slots alone) is one message without an
 * entry, so every seq of the queue has a message and a client's count of
 * them has no hole.
 */
export class QueueEntryDiff {
  readonly #held = new Map<string, string>();

  /** The messages a queue frame gives, in queue order then ended ones. */
  next(frame: ServerFrame): StreamCraftingQueueResponse[] {
    const { kind, seq, epoch } = frame;
    let queue: QueueSnapshot | null = null;
    const snapshot = kind.case === "snapshot";
    if (kind.case === "queue") queue = kind.value;
    else if (snapshot && kind.value.state.case === "queue") {
      queue = kind.value.state.value;
      this.#held.clear();
    }
    if (!queue) return [];
    const changed = queue.entries.filter(
      (entry) => this.#held.get(entry.requestId) !== entryKey(entry),
    );
    for (const entry of queue.entries) this.#held.set(entry.requestId, entryKey(entry));
    for (const entry of queue.ended) this.#held.delete(entry.requestId);
    const entries: (QueueEntry | undefined)[] = [...changed, ...queue.ended];
    if (entries.length === 0) entries.push(undefined);
    const { slots } = queue;
    return entries.map((entry) =>
      create(StreamCraftingQueueResponseSchema, { entry, seq, epoch, snapshot, slots }),
    );
  }
}
