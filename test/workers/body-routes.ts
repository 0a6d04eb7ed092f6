/** Every route that reads a request body, for tests that hold all of them to one rule. */

export interface Route {
  method: "POST" | "PUT";
  path: (ids: Ids) => string;
  /** Field names a real body carries, to put hostile values in. */
  fields: string[];
  as?: "player";
}

export interface Ids {
  sessionId: string;
  playerId: string;
  workflowId: string;
  /** A session of its own for the lifecycle route (a valid body ends it). */
  endedId: string;
}

export const ROUTES: Route[] = [
  {
    method: "POST",
    path: () => "/v1/sessions",
    fields: ["session_id", "player_id", "recipe_id", "steps", "materials", "workflow_id"],
  },
  { method: "POST", path: (i) => `/v1/sessions/${i.endedId}/fail`, fields: ["reason"] },
  {
    method: "POST",
    path: (i) => `/udp/sessions/${i.sessionId}/progress`,
    fields: ["elapsed_ms", "progress_percent", "current_step_index", "step_progress", "rate"],
  },
  {
    method: "POST",
    path: (i) => `/udp/sessions/${i.sessionId}/materials`,
    fields: ["changes", "as_of_ms"],
  },
  {
    method: "POST",
    path: (i) => `/v1/players/${i.playerId}/materials`,
    fields: ["changes", "as_of_ms"],
  },
  { method: "PUT", path: (i) => `/v1/players/${i.playerId}/slots`, fields: ["slots"] },
  { method: "POST", path: () => "/v1/progress", fields: ["updates"] },
  { method: "POST", path: () => "/v1/workflows", fields: ["player_id", "steps", "workflow_id"] },
  { method: "POST", path: () => "/v1/events", fields: ["event_id", "event_type", "version"] },
  { method: "POST", path: () => "/health/batch", fields: ["checks"] },
  {
    method: "POST",
    path: (i) => `/udp/sessions/${i.sessionId}/connect`,
    fields: ["packet_size", "delta", "lz4", "full_sync_interval_ms"],
    as: "player",
  },
];
