/** A player's queue, domain → wire (`crafting.v1.QueueSnapshot`). */
import { create } from "@bufbuild/protobuf";
import type { QueueItem, SessionSummary } from "../domain/queue/crafting-queue";
import type { SessionStatus } from "../domain/session/session";
import {
  QueueEntrySchema,
  QueueEntryStatus,
  type QueueSnapshot,
  QueueSnapshotSchema,
} from "../gen/crafting/v1/queue_pb";

const STATUS: Record<QueueItem["status"], QueueEntryStatus> = {
  queued: QueueEntryStatus.QUEUED,
  processing: QueueEntryStatus.PROCESSING,
};

const FINAL_STATUS: Partial<Record<SessionStatus, QueueEntryStatus>> = {
  completed: QueueEntryStatus.COMPLETED,
  failed: QueueEntryStatus.FAILED,
  cancelled: QueueEntryStatus.CANCELLED,
};

/** The queue message for `items`, as of `nowMs`; `ended` left the queue with this change. */
export function queueMessage(
  playerId: string,
  items: readonly QueueItem[],
  slots: number,
  nowMs: number,
  ended: readonly SessionSummary[] = [],
): QueueSnapshot {
  return create(QueueSnapshotSchema, {
    playerId,
    slots,
    ended: ended.map((summary) =>
      create(QueueEntrySchema, {
        requestId: summary.sessionId,
        recipeId: summary.recipeId,
        status: FINAL_STATUS[summary.status] ?? QueueEntryStatus.UNSPECIFIED,
        timestampMs: BigInt(nowMs),
        failureReason: summary.failureReason ?? "",
      }),
    ),
    entries: items.map((item) =>
      create(QueueEntrySchema, {
        requestId: item.requestId,
        recipeId: item.recipeId,
        queuePosition: item.queuePosition,
        estimatedWaitSeconds: item.estimatedWaitSeconds,
        status: STATUS[item.status],
        timestampMs: BigInt(nowMs),
      }),
    ),
  });
}
