/** Sessions in every status, built through the transition, for the session tests. */
import type { LifecycleAction, Session, SessionStatus } from "../../../src/domain/session/session";
import { transition } from "../../../src/domain/session/session-machine";

export const T0 = 1_000_000;

export function created(): Session {
  const result = transition(null, {
    type: "create",
    epoch: 7,
    atMs: T0,
    params: {
      sessionId: "s1",
      playerId: "p1",
      recipeId: "sword",
      workflowId: null,
      steps: [
        { name: "smelt", durationMs: 4_000 },
        { name: "forge", durationMs: 6_000 },
      ],
      materials: [],
    },
  });
  if (!result.ok) throw new Error(result.error.message);
  return result.state;
}

export function apply(
  state: Session,
  action: LifecycleAction,
  atMs: number,
  reason?: string,
): Session {
  const result = transition(state, {
    type: "lifecycle",
    action,
    atMs,
    ...(reason ? { reason } : {}),
  });
  if (!result.ok) throw new Error(result.error.message);
  return result.state;
}

export function inStatus(status: SessionStatus): Session {
  const queued = created();
  switch (status) {
    case "queued":
      return queued;
    case "active":
      return apply(queued, "start", T0);
    case "paused":
      return apply(apply(queued, "start", T0), "pause", T0 + 1_000);
    case "completed":
      return apply(apply(queued, "start", T0), "complete", T0 + 10_000);
    case "failed":
      return apply(queued, "fail", T0, "no ore");
    case "cancelled":
      return apply(queued, "cancel", T0);
  }
}
