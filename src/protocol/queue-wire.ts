/** A player's queue, domain → wire (`crafting.v1.QueueSnapshot`). */
import { create } from "@bufbuild/protobuf";
import type { QueueItem } from "../../durable-objects/player/crafting-queue";
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

/** The queue message for `items`, as of `nowMs`. */
export function queueMessage(
  playerId: string,
  items: readonly QueueItem[],
  slots: number,
  nowMs: number,
): QueueSnapshot {
  return create(QueueSnapshotSchema, {
    playerId,
    slots,
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
