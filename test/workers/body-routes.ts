/** Every route that reads a request body, for tests that hold all of them to one rule. */
import { freshId, serviceToken, token } from "../support/tokens";
import { call, createSession, serviceCall } from "./helpers";

export interface Route {
  method: "POST" | "PUT";
  path: (ids: Ids) => string;
  /** Field names a real body carries, to put hostile values in. */
  fields: string[];
  as?: "player";
  /** The media types it takes, as a body of another type is told (default `application/json`). */
  media?: string;
  /** Its optional top-level fields: `null` reads as absent, as proto3 JSON writes an unset field. */
  optional?: string[];
  /** A body it takes (when `{}` is not one), to send its optional fields beside. */
  valid?: () => Record<string, unknown>;
}

export interface Ids {
  sessionId: string;
  playerId: string;
  workflowId: string;
  /** A session of its own for the lifecycle route (a valid body ends it). */
  endedId: string;
}

const CORRECTION_FIELDS = [
  "session_id",
  "elapsed_ms",
  "progress_percent",
  "current_step_index",
  "step_progress",
  "rate",
];

export const ROUTES: Route[] = [
  {
    method: "POST",
    path: () => "/v1/sessions",
    fields: ["session_id", "player_id", "recipe_id", "steps", "materials", "workflow_id"],
    optional: ["session_id", "materials", "workflow_id", "region"],
    valid: () => ({ player_id: "p", recipe_id: "r", steps: [{ name: "a", duration_ms: 1 }] }),
  },
  {
    method: "POST",
    path: (i) => `/v1/sessions/${i.endedId}/fail`,
    fields: ["reason"],
    optional: ["reason"],
  },
  {
    method: "POST",
    path: (i) => `/udp/sessions/${i.sessionId}/progress`,
    fields: CORRECTION_FIELDS,
    media: "application/json or application/x-protobuf",
    valid: () => ({ elapsed_ms: 1 }),
    // Every field of a correction may be left out (one of them is needed).
    optional: [...CORRECTION_FIELDS, "as_of_ms"],
  },
  {
    method: "POST",
    path: (i) => `/udp/sessions/${i.sessionId}/materials`,
    fields: ["changes", "as_of_ms"],
    media: "application/json or application/x-protobuf",
    optional: ["as_of_ms"],
  },
  {
    method: "POST",
    path: (i) => `/v1/players/${i.playerId}/materials`,
    fields: ["changes", "as_of_ms"],
    optional: ["as_of_ms"],
  },
  {
    method: "POST",
    path: (i) => `/v1/workflows/${i.workflowId}/cancel`,
    fields: ["reason"],
    optional: ["reason"],
  },
  { method: "PUT", path: (i) => `/v1/players/${i.playerId}/slots`, fields: ["slots"] },
  { method: "POST", path: () => "/v1/progress", fields: ["updates"] },
  {
    method: "POST",
    path: () => "/v1/workflows",
    fields: ["player_id", "steps", "workflow_id"],
    optional: ["workflow_id", "region"],
    valid: () => ({
      player_id: "p",
      steps: [{ name: "a", recipe_id: "r", steps: [{ name: "b", duration_ms: 1 }] }],
    }),
  },
  {
    method: "POST",
    path: () => "/v1/events",
    fields: ["event_id", "event_type", "version"],
    media: "application/json (one event or an array) or application/x-ndjson",
    optional: ["payload"],
  },
  { method: "POST", path: () => "/health/batch", fields: ["checks"], optional: ["checks"] },
  { method: "POST", path: () => "/v1/events/dead-letters/redrive", fields: ["ids"] },
  { method: "POST", path: () => "/v1/events/dead-letters/discard", fields: ["ids"] },
  {
    method: "POST",
    path: (i) => `/udp/sessions/${i.sessionId}/connect`,
    fields: ["packet_size", "delta", "lz4", "full_sync_interval_ms"],
    optional: ["packet_size", "delta", "lz4", "full_sync_interval_ms"],
    as: "player",
  },
];

/** The sessions and tokens the routes are called with. */
export interface RouteContext {
  ids: Ids;
  service: string;
  player: string;
}

/** A running session, one to end, and their owner's and the service's tokens. */
export async function routeContext(): Promise<RouteContext> {
  const ids = {
    sessionId: freshId("s"),
    playerId: freshId("p"),
    workflowId: freshId("w"),
    endedId: freshId("s"),
  };
  await createSession(ids.sessionId, ids.playerId);
  await createSession(ids.endedId, ids.playerId);
  await serviceCall(`/v1/sessions/${ids.sessionId}/start`);
  return { ids, service: await serviceToken(), player: await token(ids.playerId) };
}

/** `body` to `route` as JSON with the token it needs (`headers` added or replacing). */
export function sendBody(
  context: RouteContext,
  route: Route,
  body: BodyInit,
  headers: Record<string, string> = {},
): Promise<Response> {
  return call(route.path(context.ids), {
    method: route.method,
    headers: {
      Authorization: `Bearer ${route.as === "player" ? context.player : context.service}`,
      "Content-Type": "application/json",
      ...headers,
    },
    body,
  });
}

/** The running session's seq: a refused body must leave it where it was. */
export async function sessionSeq(context: RouteContext): Promise<number> {
  const response = await serviceCall(`/v1/sessions/${context.ids.sessionId}`, undefined, "GET");
  return ((await response.json()) as { seq: number }).seq;
}

/** "POST /udp/sessions/{id}/progress": a route's name in a test's title. */
export function routeLabel(route: Route): string {
  const placeholder = "{id}";
  return `${route.method} ${route.path({ sessionId: placeholder, playerId: placeholder, workflowId: placeholder, endedId: placeholder })}`;
}
