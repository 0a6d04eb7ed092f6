/**
 * Resume, as a pure rule: a client that presents the (epoch, seq) it last
 * saw is replayed exactly what it missed, in order, when the replay log
 * still holds all of it; otherwise it gets a snapshot marked not recovered
 * (another epoch, a seq from the future, or older than the log keeps), so
 * it can tell "I missed nothing" from "I must resync".
 */

/** Where a stream's watched state stands. */
export interface StreamPoint {
  epoch: number;
  seq: number;
}

/** What to send a resuming client. */
export type ResumePlan<Frame> =
  | { type: "replay"; frames: Frame[]; missed: number }
  | { type: "snapshot"; recovered: false };

/** Plans a resume from `from` to `current`; `replayAfter` is read only when the gap can be bridged. */
export function planResume<Frame>(
  current: StreamPoint,
  from: StreamPoint,
  replayAfter: (seq: number) => Frame[],
): ResumePlan<Frame> {
  if (from.epoch === current.epoch && from.seq <= current.seq) {
    const missed = current.seq - from.seq;
    const frames = missed === 0 ? [] : replayAfter(from.seq);
    if (frames.length === missed) return { type: "replay", frames, missed };
  }
  return { type: "snapshot", recovered: false };
}

/** The `epoch.seq` a resuming client presented (validated by the Worker), or null. */
export function parseResumePoint(value: string | null): StreamPoint | null {
  const match = value ? /^(\d+)\.(\d+)$/.exec(value) : null;
  return match ? { epoch: Number(match[1]), seq: Number(match[2]) } : null;
}
