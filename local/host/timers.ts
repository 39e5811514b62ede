/**
 * Timer trigger scheduler following the timer extension's rules: runs of one function never
 * overlap, the next occurrence is computed from the start of a run (an overrun gives one
 * immediate catch-up run), `runOnStartup`, an in-memory schedule monitor, and a clock jump
 * runs each timer whose next occurrence was passed once (not once per missed occurrence).
 */
import type { HostClock } from './clock';
import type { HostLogger } from './hostLogger';
import { formatDotNetDate, type Schedule } from './schedule';

export interface TimerDefinition {
  name: string;
  schedule: Schedule;
  runOnStartup: boolean;
  useMonitor: boolean;
  /** False for a disabled function: admin runs only. */
  scheduled: boolean;
}

export interface TimerPayload {
  Schedule: { AdjustForDST: boolean };
  ScheduleStatus: { Last: string; Next: string; LastUpdated: string } | null;
  IsPastDue: boolean;
}

/** Invokes the function; resolves whether it succeeded (never rejects). */
export type TimerInvoke = (name: string, payload: TimerPayload, reason: string) => Promise<boolean>;

interface MonitorStatus {
  last: number | null;
  next: number | null;
  lastUpdated: number | null;
}

interface Job {
  reason: string;
  isPastDue: boolean;
  occurrence: number | null;
  /** Runs started by the scheduler coalesce and move the schedule on; manual runs do neither. */
  scheduled: boolean;
}

interface TimerState {
  def: TimerDefinition;
  next: number | null;
  handle: NodeJS.Timeout | undefined;
  chain: Promise<void>;
  pendingScheduled: Promise<void> | null;
  status: MonitorStatus;
}

// Re-check at least this often, so a clock moved without notice is still followed.
const MAX_SLEEP_MS = 60_000;

export const MANUAL_REASON = 'This function was programmatically called via the host APIs.';

export class TimerScheduler {
  readonly #states = new Map<string, TimerState>();
  #running = false;
  #stopped = false;

  constructor(
    private readonly clock: HostClock,
    private readonly invoke: TimerInvoke,
    private readonly logger: HostLogger,
  ) {}

  add(def: TimerDefinition): void {
    this.#states.set(def.name.toLowerCase(), {
      def,
      next: null,
      handle: undefined,
      chain: Promise.resolve(),
      pendingScheduled: null,
      status: { last: null, next: null, lastUpdated: null },
    });
  }

  has(name: string): boolean {
    return this.#states.has(name.toLowerCase());
  }

  get running(): boolean {
    return this.#running;
  }

  nextOccurrence(name: string): number | null {
    return this.#states.get(name.toLowerCase())?.next ?? null;
  }

  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    const now = this.clock.now();
    for (const s of this.#states.values()) {
      if (!s.def.scheduled) continue;
      s.next = s.def.schedule.nextAfter(now);
      s.status.next = s.next;
      this.logger.info(
        `The next occurrence of the '${s.def.name}' schedule (${s.def.schedule.describe()}) is ${s.next === null ? 'never' : formatDotNetDate(s.next)}`,
      );
      this.#arm(s);
      if (s.def.runOnStartup) {
        void this.#enqueue(s, { reason: `Timer fired at ${formatDotNetDate(now)}`, isPastDue: false, occurrence: null, scheduled: true });
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#running = false;
    for (const s of this.#states.values()) clearTimeout(s.handle);
  }

  /** An admin run: waits for a running invocation of the same function, never overlaps it. */
  runManual(name: string): Promise<void> {
    const s = this.#states.get(name.toLowerCase());
    if (!s) return Promise.reject(new Error(`No timer function '${name}'.`));
    return this.#enqueue(s, { reason: MANUAL_REASON, isPastDue: false, occurrence: null, scheduled: false });
  }

  /**
   * The clock moved: run once each timer whose next occurrence is now in the past, reschedule
   * all from the new now, and resolve with the names run once those runs finished.
   */
  async clockJumped(): Promise<string[]> {
    if (!this.#running) return [];
    const now = this.clock.now();
    const ran: string[] = [];
    const runs: Promise<void>[] = [];
    for (const s of this.#states.values()) {
      if (!s.def.scheduled) continue;
      const due = s.next !== null && s.next <= now ? s.next : null;
      s.next = s.def.schedule.nextAfter(now);
      this.#arm(s);
      if (due !== null) {
        ran.push(s.def.name);
        // A catch-up for a missed occurrence is "past due", as func reports it.
        runs.push(this.#enqueue(s, { reason: `Timer fired at ${formatDotNetDate(now)}`, isPastDue: true, occurrence: due, scheduled: true }));
      }
    }
    await Promise.all(runs);
    return ran;
  }

  #arm(s: TimerState): void {
    clearTimeout(s.handle);
    s.handle = undefined;
    if (!this.#running || s.next === null) return;
    const delay = Math.min(Math.max(0, s.next - this.clock.now()), MAX_SLEEP_MS);
    s.handle = setTimeout(() => this.#onTimer(s), delay);
    s.handle.unref();
  }

  #onTimer(s: TimerState): void {
    s.handle = undefined;
    if (!this.#running || s.next === null) return;
    const now = this.clock.now();
    if (now < s.next) {
      this.#arm(s);
      return;
    }
    const occurrence = s.next;
    // Keep ticking while a run is busy; further fires coalesce into one pending run.
    s.next = s.def.schedule.nextAfter(Math.max(now, occurrence));
    this.#arm(s);
    void this.#enqueue(s, { reason: `Timer fired at ${formatDotNetDate(now)}`, isPastDue: false, occurrence, scheduled: true });
  }

  #enqueue(s: TimerState, job: Job): Promise<void> {
    if (job.scheduled && s.pendingScheduled) return s.pendingScheduled;
    const run = s.chain.then(async () => {
      if (job.scheduled) s.pendingScheduled = null;
      if (this.#stopped) return;
      const startedAt = this.clock.now();
      if (job.scheduled && this.#running) {
        // The timer extension computes the next occurrence from the start of the run.
        s.next = s.def.schedule.nextAfter(startedAt);
        this.#arm(s);
      }
      const status = s.status;
      const payload: TimerPayload = {
        Schedule: { AdjustForDST: true },
        ScheduleStatus: s.def.useMonitor
          ? {
              Last: formatDotNetDate(status.last),
              Next: formatDotNetDate(job.occurrence ?? status.next),
              LastUpdated: formatDotNetDate(status.lastUpdated),
            }
          : null,
        IsPastDue: job.isPastDue,
      };
      try {
        await this.invoke(s.def.name, payload, job.reason);
      } catch (err) {
        this.logger.error(`Timer '${s.def.name}' could not be invoked: ${(err as Error).message}`);
      }
      s.status = { last: job.occurrence ?? startedAt, next: s.next, lastUpdated: this.clock.now() };
    });
    s.chain = run;
    if (job.scheduled) s.pendingScheduled = run;
    return run;
  }
}
