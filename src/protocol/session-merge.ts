/**
 * A session as a client holds it: the snapshot, with every update merged in
 * and the progress view recomputed from the clock at the frame's server
 * time — exactly as the server computes it (src/domain/session/progress.ts).
 * Used by the SDK and by the streaming RPCs, which answer seed 000's
 * progress fields with every update. Pure; no server code.
 */
import { create } from "@bufbuild/protobuf";
import { usableQuantity } from "../domain/materials/materials";
import type { Session } from "../domain/session/session";
import type { MaterialNotification } from "../gen/crafting/v1/materials_pb";
import {
  type CraftingProgressUpdate,
  type SessionState,
  SessionStateSchema,
  type SessionUpdate,
} from "../gen/crafting/v1/session_pb";
import { progressMessage, sessionStatusOf } from "./session-wire";

/** Seed 000's progress fields of a wire session at `serverTimeMs`, from its clock. */
export function progressOf(state: SessionState, serverTimeMs: number): CraftingProgressUpdate {
  const clock = state.clock;
  const session = {
    sessionId: state.sessionId,
    status: sessionStatusOf(state.status) ?? "queued",
    steps: state.steps.map((step) => ({ name: step.name, durationMs: step.durationMs })),
    clock: {
      anchorAtMs: Number(clock?.anchorAtMs ?? 0n),
      anchorElapsedMs: clock?.anchorElapsedMs ?? 0,
      rate: clock?.rate ?? 1,
      running: clock?.running ?? false,
    },
  } as Pick<Session, "sessionId" | "status" | "steps" | "clock"> as Session;
  return progressMessage(session, serverTimeMs);
}

/**
 * The session after `update` (a frame at `seq`, `serverTimeMs`): what the
 * update carries replaces what was held; the plan stays; progress and the
 * steps' statuses are recomputed.
 */
export function mergeUpdate(
  state: SessionState,
  update: SessionUpdate,
  seq: number,
  serverTimeMs: number,
): SessionState {
  const clock = update.clock
    ? {
        ...update.clock,
        // The plan's total is in the snapshot; updates leave it out (0).
        totalDurationMs: update.clock.totalDurationMs || state.clock?.totalDurationMs || 0,
      }
    : state.clock;
  const merged = create(SessionStateSchema, {
    ...state,
    status: update.status || state.status,
    failureReason: update.failureReason,
    seq,
    ...(clock ? { clock } : {}),
  });
  const progress = progressOf(merged, serverTimeMs);
  return { ...merged, progress, steps: progress.steps };
}

/**
 * The session after a material notification (a frame at `seq`,
 * `serverTimeMs`): each material it names is as available as the change
 * says (an unavailable one counts as none, as the server counts it); the
 * rest stays, and progress is recomputed for the frame's time.
 */
export function mergeMaterials(
  state: SessionState,
  notification: MaterialNotification,
  seq: number,
  serverTimeMs: number,
): SessionState {
  const changes = new Map(notification.changes.map((c) => [c.materialId, c]));
  const progress = progressOf(state, serverTimeMs);
  return {
    ...state,
    materials: state.materials.map((m) => {
      const change = changes.get(m.materialId);
      return change ? { ...m, available: usableQuantity(change) } : m;
    }),
    progress,
    steps: progress.steps,
    seq,
  };
}
