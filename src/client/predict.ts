/**
 * A smooth progress value between updates. The session's clock says where
 * crafting is at any server time: elapsed(t) = anchor_elapsed + rate · (t −
 * anchor_at) while running, capped at the total. The predictor follows it,
 * and when a correction moves it backwards it never moves the bar back: it
 * keeps going, slower, until the truth catches up.
 */

/** The fields of `crafting.v1.ProgressClock` the predictor needs (ms; plain numbers). */
export interface ClockView {
  anchorAtMs: number;
  anchorElapsedMs: number;
  rate: number;
  running: boolean;
  totalDurationMs: number;
}

/** Where crafting is per the clock at server time `t` (ms elapsed). */
export function elapsedAt(clock: ClockView, serverTimeMs: number): number {
  const running = clock.running ? clock.rate * Math.max(0, serverTimeMs - clock.anchorAtMs) : 0;
  return Math.min(clock.totalDurationMs, Math.max(0, clock.anchorElapsedMs + running));
}

export interface PredictorOptions {
  /** Speed of the bar, as a share of the clock's rate, while the truth is behind it. */
  catchUpRate: number;
}

/** Follows one session's clock; monotonic until `reset`. */
export class ProgressPredictor {
  #clock: ClockView | null = null;
  #shown = 0;
  #shownAt = Number.NaN;

  constructor(private readonly options: PredictorOptions = { catchUpRate: 0.25 }) {}

  /** A new clock from the server (snapshot or update). */
  update(clock: ClockView): void {
    this.#clock = clock;
  }

  /** Forgets what was shown (another session or epoch). */
  reset(): void {
    this.#clock = null;
    this.#shown = 0;
    this.#shownAt = Number.NaN;
  }

  /** The elapsed time to show at server time `t`: never less than what was shown before. */
  elapsedAt(serverTimeMs: number): number {
    const clock = this.#clock;
    if (!clock) return 0;
    const truth = elapsedAt(clock, serverTimeMs);
    const dt = Number.isNaN(this.#shownAt) ? 0 : Math.max(0, serverTimeMs - this.#shownAt);
    let shown: number;
    if (truth >= this.#shown) shown = truth;
    else {
      // Ahead of the truth (a correction went back): creep on, slower, never back.
      const creep = clock.running ? clock.rate * this.options.catchUpRate * dt : 0;
      shown = Math.min(clock.totalDurationMs, this.#shown + creep);
    }
    this.#shown = Math.max(this.#shown, shown);
    this.#shownAt = serverTimeMs;
    return this.#shown;
  }

  /** The same as a percentage of the total. */
  percentAt(serverTimeMs: number): number {
    const total = this.#clock?.totalDurationMs ?? 0;
    return total > 0 ? (this.elapsedAt(serverTimeMs) / total) * 100 : 0;
  }
}

/** Which step `elapsedMs` falls in, and how far into it (%). */
export function stepAt(
  durationsMs: readonly number[],
  elapsedMs: number,
): { index: number; percent: number } {
  let start = 0;
  for (const [index, duration] of durationsMs.entries()) {
    if (elapsedMs < start + duration)
      return { index, percent: ((elapsedMs - start) / duration) * 100 };
    start += duration;
  }
  return { index: Math.max(0, durationsMs.length - 1), percent: 100 };
}

/** One workflow step as the prediction needs it (`crafting.v1.WorkflowStep`). */
export interface WorkflowStepClock {
  completed: boolean;
  /** The step's clock; its total is the step's planned time, its weight in the overall progress. */
  clock: ClockView | undefined;
  /** The step's progress in its frame: all there is from a server before step clocks. */
  percent: number;
}

/** A step from a server before step clocks: where it was reported, out of 100, not moving. */
const stoppedAt = (percent: number): ClockView => ({
  anchorAtMs: 0,
  anchorElapsedMs: percent,
  rate: 0,
  running: false,
  totalDurationMs: 100,
});

/** A workflow's progress at an instant: overall and per step (%). */
export interface WorkflowProgress {
  percent: number;
  steps: number[];
}

/**
 * Follows a workflow's steps' clocks: progress at any server time,
 * weighted by each step's planned time as the server weighs
 * `overall_progress`. Each step's value never moves back until `reset`.
 */
export class WorkflowPredictor {
  #steps: readonly WorkflowStepClock[] = [];
  #shown: number[] = [];

  /** The steps of a new frame. */
  update(steps: readonly WorkflowStepClock[]): void {
    this.#steps = steps;
  }

  /** Forgets what was shown (another workflow or epoch). */
  reset(): void {
    this.#steps = [];
    this.#shown = [];
  }

  /** Progress to show at server time `t`. */
  at(serverTimeMs: number): WorkflowProgress {
    let done = 0;
    let total = 0;
    const steps = this.#steps.map(({ completed, clock: given, percent }, i) => {
      const clock = given ?? stoppedAt(percent);
      const planned = clock.totalDurationMs;
      const truth = completed
        ? 100
        : planned > 0
          ? (elapsedAt(clock, serverTimeMs) / planned) * 100
          : 0;
      const shown = Math.max(truth, this.#shown[i] ?? 0);
      this.#shown[i] = shown;
      done += (planned * shown) / 100;
      total += planned;
      return shown;
    });
    return { percent: total > 0 ? (done / total) * 100 : 0, steps };
  }
}
