/**
 * The scheduler's notion of "now". Locally it can follow the Key Vault emulator's movable
 * clock (`KEYTURN_CLOCK_URL`): the offset is fetched at start, and the emulator tells the
 * host about every move through a registered listener URL.
 */
import { readFileSync } from 'node:fs';
import { requestJson } from '../httpJson';

export interface HostClock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: HostClock = { now: () => Date.now() };

/** A base clock plus an offset that jumps set; idempotent if the base already moved there. */
export class AdjustableClock implements HostClock {
  #offsetMs = 0;
  constructor(private readonly base: HostClock) {}

  now(): number {
    return this.base.now() + this.#offsetMs;
  }

  set(timeMs: number): void {
    this.#offsetMs = timeMs - this.base.now();
  }

  setOffset(offsetMs: number): void {
    this.#offsetMs = offsetMs;
  }
}

const readCa = (caFile: string | undefined) => (caFile ? readFileSync(caFile, 'utf8') : undefined);

/** Reads the emulator clock and returns its offset from this machine's clock in ms. */
export async function fetchClockOffset(clockUrl: string, caFile: string | undefined): Promise<number> {
  const started = Date.now();
  const res = await requestJson(clockUrl, { ca: readCa(caFile), timeoutMs: 5000 });
  if (res.status !== 200 || typeof res.body !== 'object' || res.body === null) {
    throw new Error(`GET ${clockUrl} answered ${res.status}`);
  }
  const body = res.body as { time?: unknown; offsetSeconds?: unknown };
  if (typeof body.offsetSeconds === 'number' && Number.isFinite(body.offsetSeconds)) return body.offsetSeconds * 1000;
  const time = typeof body.time === 'string' ? Date.parse(body.time) : NaN;
  if (Number.isNaN(time)) throw new Error(`GET ${clockUrl} returned neither "offsetSeconds" nor a valid "time"`);
  // Without an offset, assume the answer was produced half-way through the call.
  return time - (started + Date.now()) / 2;
}

export async function registerClockListener(clockUrl: string, listenerUrl: string, caFile: string | undefined): Promise<void> {
  const url = `${clockUrl.replace(/\/+$/, '')}/listeners`;
  const res = await requestJson(url, { method: 'POST', body: { url: listenerUrl }, ca: readCa(caFile), timeoutMs: 5000 });
  if (res.status < 200 || res.status >= 300) throw new Error(`POST ${url} answered ${res.status}`);
}

export async function retry<T>(attempts: number, firstDelayMs: number, action: () => Promise<T>): Promise<T> {
  let delay = firstDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await action();
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}
