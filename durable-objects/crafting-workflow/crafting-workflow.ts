/**
 * One multi-step workflow: a thin Durable Object around workflow-state.ts.
 * It creates and starts each step's session, hears back from the session
 * objects after every change, and streams the workflow to its player.
 */

import type { LocationHint } from "../../src/domain/placement/placement";
import {
  applyStepChange,
  heldStep,
  newWorkflow,
  type StepSummary,
  samePlan,
  stepToStart,
  type WorkflowAction,
  type WorkflowState,
  type WorkflowStepPlan,
  workflowEnded,
} from "../../src/domain/workflow/workflow-state";
import { sessionStub } from "../../src/durable";
import { fail, ok, type Result } from "../../src/errors";
import { log, setLogLevel } from "../../src/log";
import {
  type FramePosition,
  workflowFrame,
  workflowSnapshotFrame,
} from "../../src/protocol/frames";
import { workflowMessage } from "../../src/protocol/workflow-wire";
import { OwedRetry } from "../owed-retry";
import { meterObject } from "../storage-meter";
import { ReplayLog } from "../streams/replay-log";
import { StreamHub } from "../streams/stream-hub";
import { StreamingObject } from "../streams/streaming-object";

const STATE_KEY = "workflow";
/** The location hint the workflow was created with, for its steps' sessions. */
const PLACEMENT_KEY = "placement";
/** Workflow changes kept for resuming clients. */
export const WORKFLOW_LOG_LIMIT = 200;

/** Durable Object holding one workflow and its live subscribers. */
export class CraftingWorkflow extends StreamingObject {
  #state: WorkflowState | null;
  protected override readonly hub: StreamHub;
  readonly #log: ReplayLog;
  /** A step whose session could not be started, started by the alarm. */
  readonly #owed: OwedRetry;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(ctx, "workflow");
    setLogLevel(env.LOG_LEVEL);
    this.#owed = new OwedRetry(
      ctx.storage,
      env,
      { object: "workflow", work: "step_start" },
      () => ({
        workflow_id: this.#state?.workflowId,
        step_index: this.#state?.currentIndex,
      }),
    );
    this.#state = ctx.storage.kv.get<WorkflowState>(STATE_KEY) ?? null;
    this.#log = new ReplayLog(ctx.storage, "workflow_log", WORKFLOW_LOG_LIMIT);
    this.hub = new StreamHub(ctx, env, "workflow", {
      position: (nowMs) => (this.#state ? this.#position(this.#state, nowMs) : null),
      snapshot: (nowMs, recovered) => {
        const state = this.#state as WorkflowState;
        return workflowSnapshotFrame(
          this.#position(state, nowMs),
          workflowMessage(state, nowMs),
          recovered,
        );
      },
      replayAfter: (seq) => this.#log.after(seq),
      auditFields: () => ({ workflow_id: this.#state?.workflowId }),
    });
  }

  // --- RPC for the Worker and the session objects ----------------------------

  /** Creates the workflow and starts its first step; the same create again is idempotent. */
  async create(
    workflowId: string,
    playerId: string,
    plans: WorkflowStepPlan[],
    locationHint: LocationHint | null = null,
  ): Promise<Result<{ created: boolean; workflow: WorkflowState }>> {
    if (this.#state) {
      return samePlan(this.#state, playerId, plans)
        ? ok({ created: false, workflow: this.#state })
        : fail("already_exists", "a different workflow already has this id");
    }
    const epoch = 1 + Math.floor(Math.random() * 0xfffffffe);
    // Its steps' sessions are placed where it was (one row, kept only when there is a hint).
    if (locationHint) this.ctx.storage.kv.put(PLACEMENT_KEY, locationHint);
    this.#commit(newWorkflow(workflowId, playerId, plans, epoch, Date.now()));
    if (!(await this.#startStep(0))) await this.#owed.failed();
    const created = await this.view();
    return created.ok ? ok({ created: true, workflow: created.value }) : created;
  }

  /**
   * A step's session changed (called by the session object). Answers with
   * what the workflow holds for that step after it, so the session can
   * leave out notices that would change nothing (`movesStep`).
   */
  async stepChanged(summary: StepSummary): Promise<StepSummary | null> {
    const state = this.#state;
    if (!state) return null;
    const applied = applyStepChange(state, summary, Date.now());
    if (!applied.changed) return heldStep(state, summary.sessionId);
    this.#commit(applied.state);
    if (applied.startStep !== null && !(await this.#startStep(applied.startStep)))
      await this.#owed.failed();
    if (workflowEnded(applied.state)) this.hub.endAll(1000, `workflow ${applied.state.status}`);
    return heldStep(applied.state, summary.sessionId);
  }

  /**
   * Pauses, resumes, cancels or fails the current step's session; the
   * workflow follows it (a cancelled or failed step fails the workflow).
   */
  async control(action: WorkflowAction, reason?: string): Promise<Result<WorkflowState>> {
    const state = this.#state;
    if (!state) return fail("not_found", "no workflow with this id");
    if (workflowEnded(state)) return fail("failed_precondition", `the workflow is ${state.status}`);
    const current = state.steps[state.currentIndex];
    if (!current) return fail("internal", "the workflow has no current step");
    const result = await sessionStub(this.env, current.sessionId).lifecycle(action, reason);
    if (!result.ok) return result;
    // The session has told this object about the change by now.
    return this.view();
  }

  /** The workflow, or not_found. */
  async view(): Promise<Result<WorkflowState>> {
    return this.#state ? ok(this.#state) : fail("not_found", "no workflow with this id");
  }

  // --- Streams ---------------------------------------------------------------

  /** Accepts the owning player's workflow stream. */
  override async fetch(request: Request): Promise<Response> {
    const state = this.#state;
    const endReason = state && workflowEnded(state) ? `workflow ${state.status}` : null;
    return this.acceptOwned(request, "workflow", state && { owner: state.playerId, endReason });
  }

  /** Starts a step whose session could not be started when it was due (src/domain/owed.ts). */
  override async alarm(): Promise<void> {
    await super.alarm();
    if (!this.#owed.pending()) return;
    const index = this.#state ? stepToStart(this.#state) : null;
    if (index === null || (await this.#startStep(index))) this.#owed.done();
    else await this.#owed.failed();
  }

  // --- Internals -------------------------------------------------------------

  /**
   * Creates and starts step `index`'s session (idempotent: a retried create
   * returns the same session). False: it could not be started (its object
   * unreachable or overloaded), and the alarm is to start it.
   */
  async #startStep(index: number): Promise<boolean> {
    const state = this.#state as WorkflowState;
    const step = state.steps[index];
    if (!step) return true;
    const hint = this.ctx.storage.kv.get<LocationHint>(PLACEMENT_KEY) ?? null;
    const stub = sessionStub(this.env, step.sessionId, hint);
    let failure: string | null = null;
    try {
      const created = await stub.create({
        sessionId: step.sessionId,
        playerId: state.playerId,
        recipeId: step.recipeId,
        workflowId: state.workflowId,
        steps: step.steps,
        materials: step.materials,
      });
      if (created.ok && created.value.created)
        log("info", "session.placed", {
          session_id: step.sessionId,
          player_id: state.playerId,
          location_hint: hint,
          via: "workflow",
        });
      const started = created.ok ? await stub.lifecycle("start") : created;
      if (!started.ok && started.error.code !== "failed_precondition")
        failure = started.error.message;
    } catch (e: unknown) {
      failure = e instanceof Error ? e.message : String(e);
    }
    if (failure === null) return true;
    log("error", "workflow.step_start_failed", {
      workflow_id: state.workflowId,
      session_id: step.sessionId,
      message: failure,
    });
    return false;
  }

  /** Stores the workflow and its frame in one transaction, then tells its streams. */
  #commit(state: WorkflowState): void {
    const now = Date.now();
    const frame = workflowFrame(this.#position(state, now), workflowMessage(state, now));
    const { storage } = this.ctx;
    storage.transactionSync(() => {
      storage.kv.put(STATE_KEY, state);
      this.#log.append(state.seq, frame);
    });
    const first = this.#state === null;
    this.#state = state;
    if (first) this.hub.current(state.seq);
    else this.hub.deliver(frame, false, now, now);
  }

  #position(state: WorkflowState, nowMs: number): FramePosition {
    return { seq: state.seq, epoch: state.epoch, serverTimeMs: nowMs };
  }
}
