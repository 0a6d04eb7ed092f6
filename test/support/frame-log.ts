/**
 * What a test client received on a stream — frames and the close — and
 * the waits tests make on it. Shared by the workerd client (test/workers)
 * and the `ws` client (test/e2e).
 */

/** A JSON frame as received. */
export type Frame = Record<string, unknown> & { seq?: number; epoch?: number };

/** A close as received. */
export interface Closed {
  code: number;
  reason: string;
}

/** Frames and the close of one stream, with waits on them. */
export class FrameLog {
  readonly frames: Frame[] = [];
  closed: Closed | null = null;
  #waiters: (() => void)[] = [];

  constructor(private readonly defaultTimeoutMs: number) {}

  /** Records a frame. */
  protected received(frame: Frame): void {
    this.frames.push(frame);
    this.#wake();
  }

  /** Records the close. */
  protected ended(closed: Closed): void {
    this.closed = closed;
    this.#wake();
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Waits until `predicate` holds, or fails after `timeoutMs` naming `what` and the frames so far. */
  async until(
    predicate: () => boolean,
    what: string,
    timeoutMs = this.defaultTimeoutMs,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames)}`);
      }
      await Promise.race([
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        new Promise((resolve) => setTimeout(resolve, 50)),
      ]);
    }
  }

  /** Waits for `count` frames in all. */
  async frameCount(count: number): Promise<Frame[]> {
    await this.until(() => this.frames.length >= count, `${count} frames`);
    return this.frames.slice(0, count);
  }

  /** Waits for the close. */
  async closing(): Promise<Closed> {
    await this.until(() => this.closed !== null, "close");
    return this.closed as Closed;
  }
}
