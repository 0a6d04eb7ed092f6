/**
 * Typed live views over the service's streams — a session (progress and
 * materials), a player's queue, a workflow — in JSON or binary frames. Each
 * view resumes from the last (epoch, seq) it saw after a reconnect, so it
 * misses nothing the replay log still holds, and keeps its state current.
 */
import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import {
  type ClientFrame,
  ClientFrameSchema,
  type ServerFrame,
  ServerFrameSchema,
} from "../gen/crafting/v1/frames_pb";
import type { MaterialNotification } from "../gen/crafting/v1/materials_pb";
import type { QueueSnapshot } from "../gen/crafting/v1/queue_pb";
import { type SessionState, SessionStatus } from "../gen/crafting/v1/session_pb";
import { WorkflowStatus, type WorkflowUpdate } from "../gen/crafting/v1/workflow_pb";
import { mergeMaterials, mergeUpdate } from "../protocol/session-merge";
import { sessionEndedOnWire } from "../protocol/session-wire";
import { workflowEndedOnWire } from "../protocol/workflow-wire";
import { ClockSync } from "./clock";
import type { Connection, ConnectionState, StateChange } from "./connection";
import { Emitter } from "./emitter";
import { endedReason } from "./ended";
import {
  type ClockView,
  ProgressPredictor,
  stepAt,
  WorkflowPredictor,
  type WorkflowProgress,
} from "./predict";
import { idSegment, type ViewStreamOptions, viewConnection } from "./view-stream";

/** What every view needs from the client: the service, the token, the connection's settings (connection.ts). */
export interface ViewOptions extends ViewStreamOptions {
  /** `json` (crafting.v1.json, default) or `binary` (crafting.v1.bin). */
  codec?: "json" | "binary";
  clock?: ClockSync;
}

/** Events every view emits. */
export interface ViewEvents {
  /** Any frame, decoded. */
  frame: ServerFrame;
  /** The connection's state. */
  state: StateChange;
  /** A frame the server sent as an `error` (the stream stays open). */
  error: { code: string; message: string };
  /** Resync: the server could not replay what was missed; state was replaced by a snapshot. */
  resync: ServerFrame;
}

/** A live stream of one watched thing. */
export abstract class View<Events extends ViewEvents = ViewEvents> extends Emitter<Events> {
  readonly clock: ClockSync;
  protected epoch = 0;
  protected seq = 0;
  readonly #connection: Connection;
  readonly #codec: "json" | "binary";

  constructor(path: string, options: ViewOptions) {
    super();
    this.clock = options.clock ?? new ClockSync();
    this.#codec = options.codec ?? "json";
    this.#connection = viewConnection(path, options, {
      protocol: this.#codec === "binary" ? "crafting.v1.bin" : "crafting.v1.json",
      position: () => this.position,
      clockPing: () => this.#clockPing(),
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

  /** Stops watching. */
  close(): void {
    this.#connection.close();
  }

  /** The server's time now, per the heartbeats' clock samples. */
  serverNow(): number {
    return this.clock.serverNow();
  }

  /** Applies one data frame to the view's state. */
  protected abstract apply(frame: ServerFrame): void;

  /** Why the server closes this stream, once what it watches ended (connection.ts); null before. */
  protected endedReason(): string | null {
    return null;
  }

  /** A ping frame carrying this client's time: its pong is a clock sample. */
  #clockPing(): string | Uint8Array {
    const frame: ClientFrame = create(ClientFrameSchema, {
      kind: { case: "ping", value: { clientTimeMs: BigInt(Date.now()) } },
    });
    return this.#codec === "binary"
      ? toBinary(ClientFrameSchema, frame)
      : toJsonString(ClientFrameSchema, frame);
  }

  #receive(data: string | ArrayBuffer): void {
    if (data === "pong") {
      this.#connection.answered();
      return;
    }
    let frame: ServerFrame;
    try {
      frame =
        typeof data === "string"
          ? fromJsonString(ServerFrameSchema, data, { ignoreUnknownFields: true })
          : fromBinary(ServerFrameSchema, new Uint8Array(data));
    } catch {
      return; // Not ours to understand: ignore.
    }
    const { kind } = frame;
    this.clock.hint(Number(frame.serverTimeMs));
    switch (kind.case) {
      case "pong":
        this.#connection.answered();
        this.clock.sample(Number(kind.value.clientTimeMs), Number(kind.value.serverTimeMs));
        break;
      case "error":
        this.emit("error", { code: kind.value.code, message: kind.value.message });
        break;
      case "heartbeat":
      case "resumed":
        break;
      default:
        if (kind.case === "snapshot" && !kind.value.recovered && this.seq > 0)
          this.emit("resync", frame);
        this.epoch = frame.epoch;
        this.seq = frame.seq;
        this.apply(frame);
    }
    this.emit("frame", frame);
  }
}

/** Events of a session view. */
export interface SessionEvents extends ViewEvents {
  /** The state changed (snapshot, update or material notification). */
  change: SessionState;
  material: MaterialNotification;
}

/** A crafting session, live: its state, and a smooth progress value between updates. */
export class SessionView extends View<SessionEvents> {
  /** The session as last known (null until the first frame). */
  session: SessionState | null = null;
  readonly #predictor = new ProgressPredictor();

  constructor(sessionId: string, options: ViewOptions) {
    super(`/ws/crafting/${idSegment("sessionId", sessionId)}`, options);
  }

  /** True once the session ended (the stream then closes normally). */
  get ended(): boolean {
    return this.session !== null && sessionEndedOnWire(this.session.status);
  }

  protected override endedReason(): string | null {
    return this.ended && this.session
      ? endedReason("session", SessionStatus[this.session.status])
      : null;
  }

  /**
   * Progress to show at `now` (client clock; server time via the clock
   * offset): smooth between updates, never moving backwards.
   */
  predictProgress(now: number = Date.now()): {
    percent: number;
    elapsedMs: number;
    stepIndex: number;
    stepPercent: number;
  } {
    const serverTime = now + this.clock.offsetMs;
    const elapsedMs = this.#predictor.elapsedAt(serverTime);
    const total = this.session?.clock?.totalDurationMs ?? 0;
    const step = stepAt(this.session?.steps.map((s) => s.durationMs) ?? [], elapsedMs);
    return {
      percent: total > 0 ? (elapsedMs / total) * 100 : 0,
      elapsedMs,
      stepIndex: step.index,
      stepPercent: step.percent,
    };
  }

  protected apply(frame: ServerFrame): void {
    const { kind } = frame;
    if (kind.case === "snapshot" && kind.value.state.case === "session") {
      const state = kind.value.state.value;
      if (this.session && this.session.epoch !== state.epoch) this.#predictor.reset();
      this.session = state;
    } else if (kind.case === "update" && this.session) {
      // Updates carry what changed; the plan is the snapshot's; progress is recomputed.
      this.session = mergeUpdate(this.session, kind.value, frame.seq, Number(frame.serverTimeMs));
    } else if (kind.case === "material" && this.session) {
      this.session = mergeMaterials(
        this.session,
        kind.value,
        frame.seq,
        Number(frame.serverTimeMs),
      );
      this.emit("material", kind.value);
    } else return;
    const clock = this.session?.clock;
    if (clock) this.#predictor.update(clockView(clock));
    if (this.session) this.emit("change", this.session);
  }
}

function clockView(clock: NonNullable<SessionState["clock"]>): ClockView {
  return {
    anchorAtMs: Number(clock.anchorAtMs),
    anchorElapsedMs: clock.anchorElapsedMs,
    rate: clock.rate,
    running: clock.running,
    totalDurationMs: clock.totalDurationMs,
  };
}

/** Events of a queue view. */
export interface QueueEvents extends ViewEvents {
  change: QueueSnapshot;
}

/** A player's crafting queue, live. */
export class QueueView extends View<QueueEvents> {
  queue: QueueSnapshot | null = null;

  constructor(playerId: string, options: ViewOptions) {
    super(`/ws/queue/${idSegment("playerId", playerId)}`, options);
  }

  protected apply(frame: ServerFrame): void {
    const { kind } = frame;
    if (kind.case === "queue") this.queue = kind.value;
    else if (kind.case === "snapshot" && kind.value.state.case === "queue")
      this.queue = kind.value.state.value;
    else return;
    this.emit("change", this.queue);
  }
}

/** Events of a workflow view. */
export interface WorkflowEvents extends ViewEvents {
  change: WorkflowUpdate;
}

/** A multi-step workflow, live, with smooth progress between frames. */
export class WorkflowView extends View<WorkflowEvents> {
  workflow: WorkflowUpdate | null = null;
  readonly #predictor = new WorkflowPredictor();

  constructor(workflowId: string, options: ViewOptions) {
    super(`/ws/workflow/${idSegment("workflowId", workflowId)}`, options);
  }

  /** True once the workflow completed or failed (the stream then closes normally). */
  get ended(): boolean {
    return this.workflow !== null && workflowEndedOnWire(this.workflow.status);
  }

  protected override endedReason(): string | null {
    return this.ended && this.workflow
      ? endedReason("workflow", WorkflowStatus[this.workflow.status])
      : null;
  }

  /**
   * Progress to show at `now` (client clock; server time via the clock
   * offset), overall and per step: from each step's clock, so it moves
   * between frames (a report that keeps a step on its course sends none).
   */
  predictProgress(now: number = Date.now()): WorkflowProgress {
    return this.#predictor.at(now + this.clock.offsetMs);
  }

  protected apply(frame: ServerFrame): void {
    const { kind } = frame;
    let next: WorkflowUpdate;
    if (kind.case === "workflow") next = kind.value;
    else if (kind.case === "snapshot" && kind.value.state.case === "workflow") {
      next = kind.value.state.value;
      // A snapshot after a gap may go back (a resync): show it as it is.
      this.#predictor.reset();
    } else return;
    this.workflow = next;
    this.#predictor.update(
      next.steps.map((step) => ({
        completed: step.status === WorkflowStatus.COMPLETED,
        clock: step.clock && clockView(step.clock),
        percent: step.progressPercent,
      })),
    );
    this.emit("change", next);
  }
}
