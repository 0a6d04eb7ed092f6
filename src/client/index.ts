/**
 * crafting-network-service's client SDK, for browsers, Node (≥ 22) and
 * Workers: live views of sessions, queues and workflows that reconnect,
 * resume and keep time with the server; a smooth progress value between
 * updates; the compact sync channel. No Node-only dependencies.
 *
 *   import { CraftingClient } from "crafting-network-service/client";
 *   const client = new CraftingClient({ baseUrl: "https://crafting.example", token: getToken });
 *   const session = client.watchSession("s-1001");
 *   session.on("change", (state) => render(state));
 *   requestAnimationFrame(function frame() { bar.value = session.predictProgress().percent; requestAnimationFrame(frame); });
 */
import { ClockSync } from "./clock";
import { tuningOf } from "./connection";
import { QueueView, SessionView, type ViewOptions, WorkflowView } from "./streams";
import { SyncView, type SyncViewOptions } from "./sync";

export { type BackoffOptions, backoffCeiling, backoffDelay, DEFAULT_BACKOFF } from "./backoff";
export { ClockSync } from "./clock";
export {
  Connection,
  type ConnectionOptions,
  type ConnectionState,
  type StateChange,
} from "./connection";
export {
  type ClockView,
  elapsedAt,
  ProgressPredictor,
  stepAt,
  WorkflowPredictor,
  type WorkflowProgress,
} from "./predict";
export { QueueView, SessionView, View, type ViewOptions, WorkflowView } from "./streams";
export { SyncView, type SyncViewEvents, type SyncViewOptions } from "./sync";
export type { TokenProvider } from "./token";

/** A client's settings: those of its views (the clock is the client's own, shared by them). */
export type ClientOptions = Omit<ViewOptions, "clock">;

/** One player's connection settings and shared clock; views are opened from it. */
export class CraftingClient {
  /** The server clock, shared by every view of this client. */
  readonly clock = new ClockSync();

  constructor(private readonly options: ClientOptions) {}

  /** The server's time now. */
  serverNow(): number {
    return this.clock.serverNow();
  }

  watchSession(sessionId: string): SessionView {
    return new SessionView(sessionId, this.#viewOptions());
  }

  watchQueue(playerId: string): QueueView {
    return new QueueView(playerId, this.#viewOptions());
  }

  watchWorkflow(workflowId: string): WorkflowView {
    return new WorkflowView(workflowId, this.#viewOptions());
  }

  /** A session over the compact sync channel (binary deltas, LZ4). */
  syncSession(sessionId: string, options: Partial<SyncViewOptions> = {}): SyncView {
    return new SyncView(sessionId, {
      baseUrl: this.options.baseUrl,
      token: this.options.token,
      // The client's connection settings, as its other views have them.
      ...tuningOf(this.options),
      ...options,
    });
  }

  #viewOptions(): ViewOptions {
    return { ...this.options, clock: this.clock };
  }
}
