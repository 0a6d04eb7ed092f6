/**
 * The light SDK (`crafting-network-service/client/lite`): live views of a
 * session, a queue or a workflow over JSON frames (`crafting.v1.json`), with
 * reconnect (backoff and jitter), resume, clock sync and progress prediction
 * — and nothing else: no protobuf runtime, no binary frames, no sync channel,
 * no LZ4. For a page that only wants progress bars; a few KB minified
 * (docs/sdk.md has both sizes). States are the proto3 JSON of the full
 * SDK's messages (`SessionState`, `QueueSnapshot`, `WorkflowUpdate`).
 *
 *   import { LiteClient } from "crafting-network-service/client/lite";
 *   const session = new LiteClient({ baseUrl, token: getToken }).watchSession("s-1001");
 *   session.on("change", (state) => (label.textContent = state.status));
 *   requestAnimationFrame(function frame() { bar.value = session.predictProgress().percent; requestAnimationFrame(frame); });
 */
import { isFinal } from "../domain/session/session";
import { workflowStatusEnded } from "../domain/workflow/status";
import { ClockSync } from "./clock";
import type { Connection, ConnectionState, StateChange } from "./connection";
import { Emitter } from "./emitter";
import { endedAs, endedReason } from "./ended";
import {
  type ClockView,
  ProgressPredictor,
  stepAt,
  WorkflowPredictor,
  type WorkflowProgress,
} from "./predict";
import { idSegment, type ViewStreamOptions, viewConnection } from "./view-stream";

export { ClockSync } from "./clock";
export type { ConnectionState, StateChange } from "./connection";
export type { WorkflowProgress } from "./predict";
export type { TokenProvider } from "./token";

/** A view's settings: the service, the token, and the connection's (connection.ts). */
export type LiteOptions = ViewStreamOptions;

/** A message as JSON (proto3 JSON names; 64-bit integers are strings). */
export type LiteJson = Record<string, unknown>;

/** A server frame as JSON. */
export interface LiteFrame {
  seq?: number;
  epoch?: number;
  serverTimeMs?: string;
  snapshot?: {
    recovered?: boolean;
    session?: LiteSession;
    queue?: LiteJson;
    workflow?: LiteWorkflow;
  };
  update?: LiteSessionUpdate;
  material?: { changes?: { materialId: string; quantity?: number; available?: boolean }[] };
  queue?: LiteJson;
  workflow?: LiteWorkflow;
  pong?: { clientTimeMs?: string; serverTimeMs?: string };
  error?: { code: string; message: string };
  heartbeat?: unknown;
  resumed?: unknown;
}

/** A session clock as JSON. */
export interface LiteClock {
  anchorAtMs?: string;
  anchorElapsedMs?: number;
  rate?: number;
  running?: boolean;
  totalDurationMs?: number;
}

/** A session as JSON (`crafting.v1.SessionState`). */
export interface LiteSession {
  sessionId: string;
  playerId?: string;
  recipeId?: string;
  status?: string;
  failureReason?: string;
  steps?: { name: string; durationMs?: number }[];
  materials?: { materialId: string; required?: number; available?: number }[];
  clock?: LiteClock;
  seq?: number;
  epoch?: number;
  [field: string]: unknown;
}

/** What an update frame carries: only what changed. */
export interface LiteSessionUpdate {
  status?: string;
  clock?: LiteClock;
  cause?: string;
  failureReason?: string;
  superseded?: number;
}

/** Events of every lite view. */
export interface LiteEvents<State> {
  change: State;
  state: StateChange;
  error: { code: string; message: string };
  /** The server could not replay what was missed: the state was replaced by a snapshot. */
  resync: State;
}

/** One live stream, resuming from the last (epoch, seq) it saw. */
export class LiteView<State> extends Emitter<LiteEvents<State>> {
  readonly clock: ClockSync;
  /** The watched thing as last known (null until the first frame). */
  current: State | null = null;
  protected epoch = 0;
  protected seq = 0;
  readonly #connection: Connection;

  constructor(
    path: string,
    options: LiteOptions,
    private readonly read: (frame: LiteFrame, held: State | null) => State | null,
    clock = new ClockSync(),
  ) {
    super();
    this.clock = clock;
    this.#connection = viewConnection(path, options, {
      protocol: "crafting.v1.json",
      position: () => this.position,
      clockPing: () => JSON.stringify({ ping: { clientTimeMs: String(Date.now()) } }),
      onMessage: (data) => this.#receive(data),
      endedReason: () => this.endedReason(),
      onState: (change) => this.emit("state", change),
    });
  }

  /** The connection's state. */
  get state(): ConnectionState {
    return this.#connection.state;
  }

  /** The (epoch, seq) of the last change received. */
  get position(): { epoch: number; seq: number } {
    return { epoch: this.epoch, seq: this.seq };
  }

  close(): void {
    this.#connection.close();
  }

  /** Why the server closes this stream, once what it watches ended (connection.ts); null before. */
  protected endedReason(): string | null {
    return null;
  }

  #receive(data: string | ArrayBuffer): void {
    if (data === "pong") {
      this.#connection.answered();
      return;
    }
    if (typeof data !== "string") return;
    let frame: LiteFrame;
    try {
      frame = JSON.parse(data) as LiteFrame;
    } catch {
      return; // Not ours to understand: ignore.
    }
    if (frame.serverTimeMs) this.clock.hint(Number(frame.serverTimeMs));
    if (frame.pong) {
      this.#connection.answered();
      this.clock.sample(Number(frame.pong.clientTimeMs), Number(frame.pong.serverTimeMs));
      return;
    }
    if (frame.error) {
      this.emit("error", frame.error);
      return;
    }
    if (frame.heartbeat !== undefined || frame.resumed !== undefined) return;
    const next = this.read(frame, this.current);
    if (next === null) return;
    const resync = frame.snapshot !== undefined && !frame.snapshot.recovered && this.seq > 0;
    this.epoch = frame.epoch ?? this.epoch;
    this.seq = frame.seq ?? this.seq;
    this.current = next;
    if (resync) this.emit("resync", next);
    this.emit("change", next);
  }
}

/** A crafting session, live, with a smooth progress value between updates. */
export class LiteSessionView extends LiteView<LiteSession> {
  readonly #predictor = new ProgressPredictor();

  constructor(sessionId: string, options: LiteOptions, clock?: ClockSync) {
    super(`/ws/crafting/${idSegment("sessionId", sessionId)}`, options, mergeSession, clock);
    this.on("change", (session) => {
      if (session.clock) this.#predictor.update(clockView(session.clock));
    });
    this.on("resync", () => this.#predictor.reset());
  }

  /** True once the session ended (the stream then closes normally). */
  get ended(): boolean {
    return endedAs("SESSION_STATUS_", isFinal, this.current?.status);
  }

  protected override endedReason(): string | null {
    return this.ended ? endedReason("session", this.current?.status ?? "") : null;
  }

  /** Progress to show at `now` (client clock): smooth between updates, never moving backwards. */
  predictProgress(now: number = Date.now()): {
    percent: number;
    elapsedMs: number;
    stepIndex: number;
    stepPercent: number;
  } {
    const elapsedMs = this.#predictor.elapsedAt(now + this.clock.offsetMs);
    const total = this.current?.clock?.totalDurationMs ?? 0;
    const step = stepAt(this.current?.steps?.map((s) => s.durationMs ?? 0) ?? [], elapsedMs);
    return {
      percent: total > 0 ? (elapsedMs / total) * 100 : 0,
      elapsedMs,
      stepIndex: step.index,
      stepPercent: step.percent,
    };
  }
}

/** A workflow as JSON (`crafting.v1.WorkflowUpdate`): each frame carries it whole. */
export interface LiteWorkflow {
  workflowId?: string;
  status?: string;
  overallProgress?: number;
  currentStepIndex?: number;
  steps?: {
    name?: string;
    status?: string;
    progressPercent?: number;
    clock?: LiteClock;
    failureReason?: string;
  }[];
  /** With status `WORKFLOW_STATUS_FAILED`: why its failed or cancelled step ended. */
  failureReason?: string;
  [field: string]: unknown;
}

/** A multi-step workflow, live, with smooth progress between frames (each step's clock). */
export class LiteWorkflowView extends LiteView<LiteWorkflow> {
  readonly #predictor = new WorkflowPredictor();

  constructor(workflowId: string, options: LiteOptions, clock?: ClockSync) {
    super(
      `/ws/workflow/${idSegment("workflowId", workflowId)}`,
      options,
      (frame) => frame.snapshot?.workflow ?? frame.workflow ?? null,
      clock,
    );
    this.on("change", (workflow) =>
      this.#predictor.update(
        (workflow.steps ?? []).map((step) => ({
          completed: step.status === "WORKFLOW_STATUS_COMPLETED",
          clock: step.clock && clockView(step.clock),
          percent: step.progressPercent ?? 0,
        })),
      ),
    );
    this.on("resync", () => this.#predictor.reset());
  }

  /** True once the workflow completed or failed (the stream then closes normally). */
  get ended(): boolean {
    return endedAs("WORKFLOW_STATUS_", workflowStatusEnded, this.current?.status);
  }

  protected override endedReason(): string | null {
    return this.ended ? endedReason("workflow", this.current?.status ?? "") : null;
  }

  /** Progress to show at `now` (client clock), overall and per step: moving between frames. */
  predictProgress(now: number = Date.now()): WorkflowProgress {
    return this.#predictor.at(now + this.clock.offsetMs);
  }
}

/** The session after a frame: a snapshot replaces it; an update and a material change merge in. */
export function mergeSession(frame: LiteFrame, held: LiteSession | null): LiteSession | null {
  if (frame.snapshot?.session) return frame.snapshot.session;
  if (!held) return null;
  if (frame.update) {
    const { status, clock, failureReason } = frame.update;
    return {
      ...held,
      ...(status ? { status } : {}),
      ...(failureReason ? { failureReason } : {}),
      // The plan's total is in the snapshot; updates leave it out.
      ...(clock
        ? {
            clock: {
              ...clock,
              totalDurationMs: clock.totalDurationMs || held.clock?.totalDurationMs,
            },
          }
        : {}),
      seq: frame.seq ?? held.seq,
    };
  }
  if (frame.material?.changes) {
    const changes = new Map(frame.material.changes.map((c) => [c.materialId, c]));
    return {
      ...held,
      materials: held.materials?.map((m) => {
        const change = changes.get(m.materialId);
        // An unavailable material counts as none (as the server counts it).
        return change ? { ...m, available: change.available ? (change.quantity ?? 0) : 0 } : m;
      }),
      seq: frame.seq ?? held.seq,
    };
  }
  return null;
}

function clockView(clock: LiteClock): ClockView {
  return {
    anchorAtMs: Number(clock.anchorAtMs ?? 0),
    anchorElapsedMs: clock.anchorElapsedMs ?? 0,
    // proto3 JSON leaves out zero values.
    rate: clock.rate ?? 0,
    running: clock.running ?? false,
    totalDurationMs: clock.totalDurationMs ?? 0,
  };
}

/** One player's settings and shared clock; views are opened from it. */
export class LiteClient {
  readonly clock = new ClockSync();

  constructor(private readonly options: LiteOptions) {}

  watchSession(sessionId: string): LiteSessionView {
    return new LiteSessionView(sessionId, this.options, this.clock);
  }

  /** A player's queue (`crafting.v1.QueueSnapshot` as JSON): each frame carries it whole. */
  watchQueue(playerId: string): LiteView<LiteJson> {
    return new LiteView<LiteJson>(
      `/ws/queue/${idSegment("playerId", playerId)}`,
      this.options,
      (frame) => frame.snapshot?.queue ?? frame.queue ?? null,
      this.clock,
    );
  }

  /** A workflow (`crafting.v1.WorkflowUpdate` as JSON): each frame carries it whole. */
  watchWorkflow(workflowId: string): LiteWorkflowView {
    return new LiteWorkflowView(workflowId, this.options, this.clock);
  }
}
