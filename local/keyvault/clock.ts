/**
 * The emulator's movable clock: real time plus an offset that only grows.
 * While due items are carried out during a jump, `now()` reports each item's own
 * time (the walk is synchronous, so no request can observe that in between).
 */
export class VaultClock {
  private override?: number;

  constructor(
    private readonly getOffset: () => number,
    private readonly setOffset: (ms: number) => void,
  ) {}

  nowMs(): number {
    return this.override ?? Date.now() + this.getOffset();
  }

  now(): Date {
    return new Date(this.nowMs());
  }

  nowSeconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  offsetSeconds(): number {
    return this.getOffset() / 1000;
  }

  /** Runs `fn` with `now()` pinned to `ms`. */
  at<T>(ms: number, fn: () => T): T {
    const previous = this.override;
    this.override = ms;
    try {
      return fn();
    } finally {
      this.override = previous;
    }
  }

  moveForward(ms: number): void {
    this.setOffset(this.getOffset() + ms);
  }
}

/** Serialises async work (clock moves must not overlap). */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

