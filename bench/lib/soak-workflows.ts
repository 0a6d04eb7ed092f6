/**
 * The soak's workflows (bench/soak.ts): each a fresh player's, its steps
 * completed one by one, paused and resumed while streams of its own watch
 * it; at the end, read back from a fresh stream's first frame.
 */
import type { ServiceCall } from "./soak-runtime.ts";
import { firstFrame } from "./soak-watcher.ts";
import { token } from "./targets.ts";

/** A soak workflow and what was done to it. */
export interface SoakWorkflow {
  workflowId: string;
  bearer: string;
  /** Steps completed so far: the current step's index. */
  completed: number;
  paused: boolean;
}

/** Steps per workflow; the last is never completed, so the workflow stays watched. */
const STEPS = 6;
/** A step's planned time: it never ends on its own during a soak. */
const STEP_MS = 7 * 24 * 3_600_000;

/** Creates the `index`th workflow for a fresh player. */
export async function createWorkflow(index: number, call: ServiceCall): Promise<SoakWorkflow> {
  const workflowId = `soak-w${index}-${crypto.randomUUID().slice(0, 8)}`;
  const playerId = `soak-wp${index}-${crypto.randomUUID().slice(0, 8)}`;
  const created = await call("/v1/workflows", {
    workflow_id: workflowId,
    player_id: playerId,
    steps: Array.from({ length: STEPS }, (_, step) => ({
      name: `stage-${step}`,
      recipe_id: "soak",
      steps: [{ name: "work", duration_ms: STEP_MS }],
    })),
  });
  if (created.status !== 201)
    throw new Error(`workflow: ${created.status} ${await created.text()}`);
  return { workflowId, bearer: await token(playerId, "player"), completed: 0, paused: false };
}

/**
 * Moves a workflow on: resumes it if paused, else completes its step (short
 * of the last) or pauses it. True when the service took the change.
 */
export async function moveWorkflow(w: SoakWorkflow, call: ServiceCall): Promise<boolean> {
  const action = w.paused
    ? "resume"
    : w.completed < STEPS - 1 && Math.random() < 0.6
      ? "complete"
      : "pause";
  // A completed step's next session is started by the workflow: until then, 404.
  const response =
    action === "complete"
      ? await call(`/v1/sessions/${w.workflowId}.${w.completed}/complete`)
      : await call(`/v1/workflows/${w.workflowId}/${action}`);
  if (response.status !== 200) return false;
  if (action === "complete") w.completed++;
  else w.paused = action === "pause";
  return true;
}

/** Resumes a paused workflow, so it ends the soak active. */
export async function resumeWorkflow(w: SoakWorkflow, call: ServiceCall): Promise<void> {
  if (!w.paused) return;
  await call(`/v1/workflows/${w.workflowId}/resume`);
  w.paused = false;
}

/** A workflow as a fresh stream's first frame (its snapshot) says: its seq and state. */
export async function workflowSnapshot(
  wsBase: string,
  w: SoakWorkflow,
): Promise<{ seq: number; workflow: { currentStepIndex?: number; status: string } }> {
  const frame = await firstFrame<{
    seq: number;
    snapshot: { workflow: { currentStepIndex?: number; status: string } };
  }>(`${wsBase}/ws/workflow/${w.workflowId}`, w.bearer);
  return { seq: frame.seq, workflow: frame.snapshot.workflow };
}
