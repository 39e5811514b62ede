/**
 * The emulator's movable clock: real time plus an offset that only grows.
 * While due items are carried out during a jump, `now()` reports each item's own
 * time (the walk is synchronous, so no request can observe that in between).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

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

/** POSTs JSON and resolves with the status; rejects on network error or timeout. */
export function postJson(url: string, body: unknown, opts: { ca?: string; timeoutMs: number }): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = Buffer.from(JSON.stringify(body));
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
        ...(u.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}),
        timeout: opts.timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
