/** crafting-service's API for multi-step workflows: create, read, pause, resume, cancel and fail. */
import { toJsonString } from "@bufbuild/protobuf";
import { Hono } from "hono";
import type { LocationHint } from "../domain/placement/placement";
import {
  WORKFLOW_ACTIONS,
  type WorkflowState,
  type WorkflowStepPlan,
} from "../domain/workflow/workflow-state";
import { placementOf, workflowStub } from "../durable";
import { AppError, unwrap } from "../errors";
import { WorkflowUpdateSchema } from "../gen/crafting/v1/workflow_pb";
import { readJsonBody } from "../http/body";
import { jsonText } from "../http/json-text";
import { isObject, parse, refuseUnknownFields, snakeKeys, spelled } from "../http/valid";
import { log } from "../log";
import { type AuthVariables, requireServiceOrOperatorReads } from "../middleware/auth";
import { rateLimit, subject } from "../middleware/limits";
import { workflowMessage } from "../protocol/workflow-wire";
import { placementHeader, regionField } from "./placement";
import { parseCreateSession, parseId, parseReason } from "./session-input";

/** Most steps in one workflow. */
export const MAX_WORKFLOW_STEPS = 32;

function json(state: WorkflowState, status = 200, headers: Record<string, string> = {}): Response {
  return jsonText(
    toJsonString(WorkflowUpdateSchema, workflowMessage(state, Date.now())),
    status,
    headers,
  );
}

/** `POST /v1/workflows` body: `{ player_id, steps: [{ name, recipe_id, steps: [{ name, duration_ms }], materials? }], workflow_id?, region? }` (or camelCase names). */
function parseWorkflow(body: unknown): {
  workflowId: string;
  playerId: string;
  plans: WorkflowStepPlan[];
  region: LocationHint | null;
} {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AppError("invalid_argument", "the body must be a JSON object");
  }
  const input = snakeKeys(body) as Record<string, unknown>;
  refuseUnknownFields(input, ["workflow_id", "player_id", "steps", "region"]);
  const playerId = parseId(input.player_id, spelled(input, "player_id"));
  const workflowId =
    input.workflow_id == null
      ? crypto.randomUUID()
      : parseId(input.workflow_id, spelled(input, "workflow_id"));
  if (workflowId.length > 60)
    throw new AppError(
      "invalid_argument",
      `${spelled(input, "workflow_id")} must be at most 60 characters`,
    );
  const steps = input.steps;
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_WORKFLOW_STEPS) {
    throw new AppError(
      "invalid_argument",
      `steps must be an array of 1-${MAX_WORKFLOW_STEPS} workflow steps`,
    );
  }
  const plans = steps.map((raw: unknown, i) => {
    const step = (isObject(raw) ? snakeKeys(raw) : {}) as Record<string, unknown>;
    refuseUnknownFields(step, ["name", "recipe_id", "steps", "materials"], `steps[${i}]`);
    if (typeof step.name !== "string" || step.name.length === 0 || step.name.length > 64) {
      throw new AppError(
        "invalid_argument",
        `steps[${i}].name must be a string of 1-64 characters`,
      );
    }
    // Each step is a session: its recipe and crafting steps follow the session rules.
    let session: ReturnType<typeof parseCreateSession>;
    try {
      session = parseCreateSession(
        {
          player_id: playerId,
          // Under the name it was sent as, so a refusal names it so.
          [spelled(step, "recipe_id")]: step.recipe_id,
          steps: step.steps,
          materials: step.materials,
        },
        () => "x",
      );
    } catch (e) {
      // Its refusal names a field of the step (`steps[0].duration_ms …`): named from the body's root.
      throw new AppError(
        "invalid_argument",
        `steps[${i}].${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return {
      name: step.name,
      recipeId: session.recipeId,
      steps: session.steps,
      materials: session.materials,
    };
  });
  return {
    workflowId,
    playerId,
    plans,
    region: parse(regionField, input.region, "region") ?? null,
  };
}

/** Routes under /v1/workflows. */
export const workflowRoutes = new Hono<{ Bindings: Env; Variables: AuthVariables }>()
  .use(requireServiceOrOperatorReads, rateLimit("INGEST_RATE_LIMITER", subject))
  .post("/", async (c) => {
    const { workflowId, playerId, plans, region } = parseWorkflow(await readJsonBody(c.req.raw));
    // The workflow and its steps' sessions are placed as a session's create places it.
    const placement = await placementOf(c.env, playerId, region);
    const { created, workflow } = unwrap(
      await workflowStub(c.env, workflowId, placement.hint).create(
        workflowId,
        playerId,
        plans,
        placement.hint,
      ),
    );
    if (created)
      log("info", "workflow.placed", {
        workflow_id: workflowId,
        player_id: playerId,
        location_hint: placement.hint,
        source: placement.source,
      });
    return json(workflow, created ? 201 : 200, placementHeader(placement));
  })
  .get("/:id", async (c) => {
    return json(
      unwrap(await workflowStub(c.env, parseId(c.req.param("id"), "workflow_id")).view()),
    );
  })
  .post("/:id/:action", async (c) => {
    const action = WORKFLOW_ACTIONS.find((a) => a === c.req.param("action"));
    if (!action)
      throw new AppError("not_found", `unknown action; use one of ${WORKFLOW_ACTIONS.join(", ")}`);
    // As a session's lifecycle: an optional `{ reason }`, kept for cancel and fail.
    const reason = parseReason(await readJsonBody(c.req.raw, { optional: true }));
    const stub = workflowStub(c.env, parseId(c.req.param("id"), "workflow_id"));
    return json(unwrap(await stub.control(action, reason)));
  });
