/** crafting-service calls against a running server, for end-to-end tests. */
import { freshId, serviceToken } from "./tokens";

/** POSTs `body` (JSON, when given) to `baseUrl + path` with a crafting-service token. */
export async function servicePost(
  baseUrl: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${await serviceToken()}`,
      "Content-Type": "application/json",
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** A step of a session plan, as crafting-service sends it. */
export interface PlannedStep {
  name: string;
  duration_ms: number;
}

const ONE_LONG_STEP: PlannedStep[] = [{ name: "forge", duration_ms: 3_600_000 }];

/** POST /v1/sessions for `sessionId` of `playerId` (one long step by default): the answer, whatever it is. */
export function createSession(
  baseUrl: string,
  sessionId: string,
  playerId: string,
  steps: PlannedStep[] = ONE_LONG_STEP,
): Promise<Response> {
  return servicePost(baseUrl, "/v1/sessions", {
    session_id: sessionId,
    player_id: playerId,
    recipe_id: "iron-sword",
    steps,
  });
}

/** Creates and starts a session of a fresh player (one long step by default, so it stays active). */
export async function startedSession(
  baseUrl: string,
  steps: PlannedStep[] = ONE_LONG_STEP,
): Promise<{ sessionId: string; playerId: string }> {
  const sessionId = freshId("s");
  const playerId = freshId("p");
  const created = await createSession(baseUrl, sessionId, playerId, steps);
  if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
  const started = await servicePost(baseUrl, `/v1/sessions/${sessionId}/start`);
  if (started.status !== 200) throw new Error(`start: ${started.status} ${await started.text()}`);
  return { sessionId, playerId };
}
