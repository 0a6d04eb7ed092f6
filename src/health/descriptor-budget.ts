/**
 * What this isolate holds of its process's file descriptors, estimated, so
 * that the service refuses work (503) before the process runs out: local
 * workerd aborts on `accept(): Too many open files` and loses every stream
 * (docs/reliability.md, the descriptor budget). Pure: the clock is passed in.
 *
 * What holds descriptors here, measured: a Durable Object whose SQLite
 * database is open holds 3 until the runtime evicts it, 10 s after its last
 * call; a WebSocket holds 2 for as long as it is open, hibernated or not
 * (on a plain workerd: under `wrangler dev`, 4, which `npm start`'s budget
 * allows for).
 */

/** The measured costs. */
export const DESCRIPTOR_COSTS = {
  perLiveObject: 3,
  perSocket: 2,
  /** The runtime evicts an object this long after its last call. */
  objectLiveMs: 10_000,
} as const;

/** The descriptors one isolate's objects and sockets hold. */
export class DescriptorBudget {
  /** When each object (by key) was last called (oldest first: a touch moves a key to the end). */
  readonly #lastCalled = new Map<string, number>();
  /** The open sockets of each holder (an object, by its id). */
  readonly #sockets = new Map<string, number>();
  #socketTotal = 0;

  /** Notes a call to an object; the object is live for `objectLiveMs` after it. */
  called(key: string, now: number): void {
    this.#lastCalled.delete(key);
    this.#lastCalled.set(key, now);
    this.#forgetEvicted(now);
  }

  /** Sets how many sockets a holder has open now (the runtime's own count, so nothing drifts). */
  socketsOf(holder: string, open: number): void {
    this.#socketTotal += open - (this.#sockets.get(holder) ?? 0);
    if (open > 0) this.#sockets.set(holder, open);
    else this.#sockets.delete(holder);
  }

  /** One more (`+1`) or one fewer (`-1`) socket open at `holder`. */
  socketChanged(holder: string, change: 1 | -1): void {
    this.socketsOf(holder, Math.max(0, (this.#sockets.get(holder) ?? 0) + change));
  }

  /** Whether an object counts as live now (called within `objectLiveMs`). */
  isLive(key: string, now: number): boolean {
    const at = this.#lastCalled.get(key);
    return at !== undefined && now - at < DESCRIPTOR_COSTS.objectLiveMs;
  }

  /** The descriptors held now, by the estimate above. */
  held(now: number): number {
    this.#forgetEvicted(now);
    return (
      this.#lastCalled.size * DESCRIPTOR_COSTS.perLiveObject +
      this.#socketTotal * DESCRIPTOR_COSTS.perSocket
    );
  }

  /**
   * Whether a call to `key` fits in `budget` descriptors: always when the
   * object is live already (it holds its descriptors), else if one more live
   * object fits. A budget of 0 or less means no limit.
   */
  admitsCall(key: string, budget: number, now: number): boolean {
    if (budget <= 0 || this.isLive(key, now)) return true;
    return this.held(now) + DESCRIPTOR_COSTS.perLiveObject <= budget;
  }

  /**
   * Whether one more stream fits in `budget`: its socket, and at worst
   * `objects` objects coming to life for it (a watch: the object it watches
   * and its player's; an ingest stream: none, as each of its calls is
   * admitted on its own).
   */
  admitsStream(budget: number, now: number, objects = 2): boolean {
    if (budget <= 0) return true;
    const cost = DESCRIPTOR_COSTS.perSocket + objects * DESCRIPTOR_COSTS.perLiveObject;
    return this.held(now) + cost <= budget;
  }

  #forgetEvicted(now: number): void {
    for (const [key, at] of this.#lastCalled) {
      if (now - at < DESCRIPTOR_COSTS.objectLiveMs) break;
      this.#lastCalled.delete(key);
    }
  }
}

/** This isolate's budget: every object and the Worker of one isolate share it. */
export const descriptors = new DescriptorBudget();

/**
 * One holder's share of its isolate's budget: an object's (its stream hub
 * keeps its sockets, and the wakes no stub call notes), or the Worker's
 * own sockets (crafting-service's ingest streams). Does nothing where no
 * budget is kept (`budgeted` false: Cloudflare).
 */
export class DescriptorShare {
  constructor(
    private readonly holder: string,
    private readonly budgeted: boolean,
    private readonly budget: DescriptorBudget = descriptors,
  ) {}

  /** A socket accepted (`+1`) or closed by its client (`-1`). */
  socketChanged(change: 1 | -1): void {
    if (this.budgeted) this.budget.socketChanged(this.holder, change);
  }

  /** The runtime's own count, at a look at every socket: a close event that never fired (workerd#1187) does not drift it. */
  socketsCounted(open: number): void {
    if (this.budgeted) this.budget.socketsOf(this.holder, open);
  }

  /** A client's frame wakes the object without a stub: it is live as after a call. */
  woke(now: number): void {
    if (this.budgeted) this.budget.called(this.holder, now);
  }
}

/** The budget configured for this deployment (`DESCRIPTOR_BUDGET`; "0" or unset: no limit). */
export function descriptorBudgetOf(env: { DESCRIPTOR_BUDGET?: string }): number {
  const budget = Number(env.DESCRIPTOR_BUDGET ?? 0);
  return Number.isFinite(budget) ? budget : 0;
}
