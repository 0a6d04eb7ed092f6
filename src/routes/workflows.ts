/** crafting-service's API for multi-step workflows: create, read, pause, resume, cancel and fail. */
import { toJsonString } from "@bufbuild/protobuf";
import { Hono } from "hono";
import * as v from "valibot";
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
import { fields, parse } from "../http/valid";
import { log } from "../log";
import { type AuthVariables, requireServiceOrOperatorReads } from "../middleware/auth";
import { rateLimit, subject } from "../middleware/limits";
import { workflowMessage } from "../protocol/workflow-wire";
import { placementHeader, regionField } from "./placement";
import {
  BODY_RULE,
  idSchema,
  parseId,
  parseReason,
  plannedSteps,
  requirements,
  requirementsOf,
  sessionSteps,
  stepName,
} from "./session-input";

/** Most steps in one workflow. */
export const MAX_WORKFLOW_STEPS = 32;

function json(state: WorkflowState, status = 200, headers: Record<string, string> = {}): Response {
  return jsonText(
    toJsonString(WorkflowUpdateSchema, workflowMessage(state, Date.now())),
    status,
    headers,
  );
}

/** Longest workflow id: its steps' sessions are `{workflow_id}.{i}`, ids of at most 64. */
const MAX_WORKFLOW_ID_LENGTH = 60;
const STEPS_RULE = `must be an array of 1-${MAX_WORKFLOW_STEPS} workflow steps`;
/** Each step is a session: its recipe, crafting steps and materials follow the session rules. */
const workflowStep = fields(
  { name: stepName, recipe_id: idSchema, steps: sessionSteps, materials: requirements },
  "must be a JSON object",
);
const workflowBody = fields(
  {
    workflow_id: v.nullish(
      v.pipe(
        idSchema,
        v.maxLength(MAX_WORKFLOW_ID_LENGTH, `must be at most ${MAX_WORKFLOW_ID_LENGTH} characters`),
      ),
    ),
    player_id: idSchema,
    steps: v.pipe(
      v.array(workflowStep, STEPS_RULE),
      v.minLength(1, STEPS_RULE),
      v.maxLength(MAX_WORKFLOW_STEPS, STEPS_RULE),
    ),
    region: regionField,
  },
  BODY_RULE,
);

/**
 * `POST /v1/workflows` body: `{ player_id, steps: [{ name, recipe_id, steps:
 * [{ name, duration_ms }], materials? }], workflow_id?, region? }` (or
 * camelCase names); a refusal names every field at fault, a step's from
 * the body's root (`steps[1].steps[0].duration_ms …`).
 */
function parseWorkflow(body: unknown): {
  workflowId: string;
  playerId: string;
  plans: WorkflowStepPlan[];
  region: LocationHint | null;
} {
  const input = parse(workflowBody, body);
  return {
    workflowId: input.workflow_id ?? crypto.randomUUID(),
    playerId: input.player_id,
    plans: input.steps.map((step) => ({
      name: step.name,
      recipeId: step.recipe_id,
      steps: plannedSteps(step.steps),
      materials: requirementsOf(step.materials),
    })),
    region: input.region ?? null,
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
