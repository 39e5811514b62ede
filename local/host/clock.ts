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

  get offsetMs(): number {
    return this.#offsetMs;
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

/** The listener URLs the clock notifies; undefined when the clock does not say (no listing there). */
export async function clockListeners(clockUrl: string, caFile: string | undefined): Promise<string[] | undefined> {
  const url = `${clockUrl.replace(/\/+$/, '')}/listeners`;
  const res = await requestJson(url, { ca: readCa(caFile), timeoutMs: 5000 });
  const listeners = res.status === 200 ? (res.body as { listeners?: unknown } | null)?.listeners : undefined;
  return Array.isArray(listeners) && listeners.every((l) => typeof l === 'string') ? listeners : undefined;
}

export interface ClockWatchDeps {
  clockUrl: string;
  listenerUrl: string;
  caFile: string | undefined;
  intervalMs: number;
  /** The host clock's current offset from the machine clock. */
  offsetMs(): number;
  /** The clock is ahead of the host (a move it was not told about): follow it. */
  catchUp(offsetMs: number): Promise<void>;
  warn(message: string): void;
  info(message: string): void;
}

/**
 * Keeps the host following the clock. The emulator drops a listener after three failed
 * notifications in a row (under load a move's timer runs can outlast its 60 s timeout) and
 * tells nobody; so every check asks whether this host is still registered (and registers
 * again if not), and whether the clock is ahead of the host (a missed move: catch up).
 */
export class ClockWatch {
  #handle: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #registered: boolean;
  #failing = false;
  /** The clock's offset when a check last found it ahead of the host. */
  #aheadAt: number | undefined;

  constructor(
    private readonly deps: ClockWatchDeps,
    registered: boolean,
  ) {
    this.#registered = registered;
  }

  start(): void {
    this.#handle ??= setInterval(() => void this.check(), this.deps.intervalMs);
    this.#handle.unref();
  }

  stop(): void {
    clearInterval(this.#handle);
    this.#handle = undefined;
  }

  /** One check; overlapping calls share the running one. */
  check(): Promise<void> {
    this.#running ??= this.#check().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #check(): Promise<void> {
    const { clockUrl, listenerUrl, caFile } = this.deps;
    try {
      const listeners = await clockListeners(clockUrl, caFile);
      // Without a listing, only a host that never got registered tries again.
      const missing = listeners ? !listeners.includes(listenerUrl) : !this.#registered;
      if (missing) {
        if (this.#registered) this.deps.warn(`This host (${listenerUrl}) is no longer a clock listener at ${clockUrl}; registering again.`);
        await registerClockListener(clockUrl, listenerUrl, caFile);
        this.#registered = true;
        this.deps.info(`Registered ${listenerUrl} as a clock listener at ${clockUrl}.`);
      }
      // The emulator's clock only moves forward: ahead of ours by more than jitter means a missed
      // move. A move's notice comes only after its events settled, so a clock just ahead is
      // followed once the host was dropped or when it is still ahead, unchanged, a check later.
      const offset = await fetchClockOffset(clockUrl, caFile);
      const ahead = offset - this.deps.offsetMs() > 1000;
      if (ahead && (missing || this.#aheadAt === offset)) {
        this.#aheadAt = undefined;
        await this.deps.catchUp(offset);
      } else {
        this.#aheadAt = ahead ? offset : undefined;
      }
      this.#failing = false;
    } catch (err) {
      // Once per outage, not once per check.
      if (!this.#failing) this.deps.warn(`Clock check at ${clockUrl} failed: ${(err as Error).message}`);
      this.#failing = true;
    }
  }
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
