/**
 * A workflow's status and when it has ended. This module imports nothing, so
 * plain Node scripts (`scripts/watch.mjs`) can load it as TypeScript source.
 */

/** Status of a workflow (seed 000). */
export type WorkflowStatus = "active" | "paused" | "completed" | "failed";

/** Whether a workflow in `status` can no longer change. */
export const workflowStatusEnded = (status: WorkflowStatus) =>
  status === "completed" || status === "failed";
