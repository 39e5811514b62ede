/**
 * The step runner: advances any job of the step kernel (`domain/stepKernel.ts`) whose
 * steps are functions. Each round: decide → claim (ETag-guarded lease, fresh token) →
 * run the step (which checks the lease's margin before every external write) → record
 * (ETag-guarded) → next. The job is read at the start and after a lost race only: a
 * round decides on the document its own ETag-guarded write returned (as stored, with
 * its new ETag), so a change by anyone else still fails the next write. A lost race
 * re-reads and re-decides; a step that throws is recorded as a failed try (the job's
 * rules say what that means).
 */
import { randomUUID } from 'node:crypto';
import { ConcurrencyConflict, KeyturnError, describeError, notFound } from '../../errors';
import type { Claim, Decision, StepJob } from '../../domain/stepKernel';
import type { Clock, FaultPoints, Logger, Versioned } from '../../ports';

/** A test-only crash (InjectedFault): it must escape like a process crash, never be recorded. */
export const isInjectedCrash = (e: unknown): boolean => e instanceof Error && e.name === 'InjectedFault';

/**
 * A step stops before an external write once its lease has less than this left (half
 * the lease at most): an SDK call with its retries (delays up to 64 s) or a Graph call
 * (up to 30 s) must end before another worker may take the step over.
 */
export const LEASE_MARGIN_MS = 120_000;

/** Thrown by a step's lease check: the step is abandoned as is (no failure, no clean-up). */
export class LeaseLapsing extends KeyturnError {
  constructor(
    readonly step: string,
    readonly before: string,
    readonly leftMs: number,
  ) {
    super('LEASE_LAPSING', `lease of step ${step} has ${Math.max(0, Math.round(leftMs / 1000))} s left: not starting ${before}`, { step });
    this.name = 'LeaseLapsing';
  }
}

/** Checks, before an external write, that the step's lease still has its safety margin. */
export type LeaseCheck = (before: string) => Promise<void>;

export function leaseCheck(expiresAt: string, leaseMs: number, step: string, clock: Clock): LeaseCheck {
  const margin = Math.min(leaseMs / 2, LEASE_MARGIN_MS);
  const until = Date.parse(expiresAt);
  return async (before) => {
    const left = until - (await clock.now()).getTime();
    if (!(left >= margin)) throw new LeaseLapsing(step, before, left);
  };
}

export interface JobStore<J> {
  read(id: string): Promise<Versioned<J> | undefined>;
  /** Throws ConcurrencyConflict('changed') when the ETag no longer matches. */
  replace(job: J, etag: string): Promise<Versioned<J>>;
  /** Jobs whose `dueAt` has come, in due order, at most `limit`. */
  due(now: Date, limit: number): Promise<J[]>;
}

/** One claimed step being run. */
export interface StepRun<J, S extends string> {
  /** The job as read when the step was claimed by this run. */
  job: J;
  step: S;
  token: string;
  now: Date;
  check: LeaseCheck;
}

/** A document to write, and what to log once the write landed. */
export interface Outcome<J> {
  next: J;
  written(): void;
}

export interface JobKind<J extends StepJob<S>, S extends string, R> {
  /** Stable name (registry, logs). */
  readonly kind: string;
  /** Names one job in messages, e.g. `Rotation`. */
  readonly label: string;
  /** The log field carrying the job's id, e.g. `rotationId`. */
  readonly idKey: string;
  readonly store: JobStore<J>;
  readonly leaseMs: number;
  decide(job: J, now: Date, owner: string): Decision<S, string, string>;
  claim(job: J, claim: Claim, now: Date): J;
  /** The steps: each runs its side effect and returns what to record. */
  readonly steps: Record<S, (run: StepRun<J, S>) => Promise<R>>;
  /** The document after a step returned `result`. */
  record(run: StepRun<J, S>, result: R): Promise<Outcome<J>>;
  /** The document after the step threw `error` (never a crash or a lapsing lease). */
  failed(run: StepRun<J, S>, error: unknown): Promise<Outcome<J>>;
  /** An ended job whose clean-up is pending: clean up, and the document recording it. */
  cleanup(job: J, now: Date): Promise<Outcome<J>>;
  /** The record of `result` lost the race: remove what only it would have referenced. */
  lost?(run: StepRun<J, S>, result: R): Promise<void>;
}

export interface RunnerDeps {
  clock: Clock;
  faults: FaultPoints;
  log: Logger;
  /** This process's identity; each `advance` call holds leases as `{owner}:{random}`. */
  owner: string;
  newToken?: () => string;
}

const MAX_ROUNDS = 40;

export type ResumeReport = { due: number; advanced: number; errors: number };

/** One resume run over several batches: the ids it took so far, and whether its budget ended. */
export interface ResumeRound {
  readonly taken: Set<string>;
  ended(): boolean;
}

export class StepRunner {
  private readonly newToken: () => string;

  constructor(private readonly deps: RunnerDeps) {
    this.newToken = deps.newToken ?? randomUUID;
  }

  /**
   * Runs the job until it waits (lease, backoff, a hold) or ends. Each call holds its
   * leases under its own holder id and performs only a step it claimed itself: two
   * calls in one process (an event's kick and the resume timer) never run the same
   * step's side effect.
   */
  async advance<J extends StepJob<S>, S extends string, R>(kind: JobKind<J, S, R>, id: string): Promise<J> {
    const { faults, log, owner, clock } = this.deps;
    const holder = `${owner}:${randomUUID().slice(0, 8)}`;
    const claimed = new Set<string>();
    // What this call's last write returned; read again only when a write lost its race.
    let stored: Versioned<J> | undefined;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      stored ??= await kind.store.read(id);
      if (!stored) throw notFound(`${kind.label} '${id}'`, { [kind.idKey]: id });
      const job = stored.doc;
      const now = await clock.now();
      const decision = kind.decide(job, now, holder);
      if (decision.action === 'none' || decision.action === 'wait') return job;

      if (decision.action === 'cleanup') {
        stored = await this.write(kind, await kind.cleanup(job, now), stored.etag);
        continue;
      }

      if (decision.action === 'claim') {
        faults.hit(`${decision.step}:before`);
        const token = this.newToken();
        const next = kind.claim(job, { owner: holder, token, leaseMs: kind.leaseMs }, now);
        stored = await this.write(kind, { next, written: () => claimed.add(token) }, stored.etag);
        continue;
      }

      const { step, token } = decision;
      if (!claimed.has(token)) return job; // not this call's claim (cannot happen with a unique holder): never perform it
      faults.hit(`${step}:claimed`);
      const run: StepRun<J, S> = { job, step, token, now, check: leaseCheck(job.lease!.expiresAt, kind.leaseMs, step, clock) };
      let result: R;
      try {
        result = await kind.steps[step](run);
      } catch (e) {
        if (isInjectedCrash(e)) throw e;
        if (e instanceof LeaseLapsing) {
          // Another worker may own the step by now: leave everything as it is (what this claim
          // made carries its token, so the next holder adopts or removes it) and record nothing.
          log.warn(`${kind.label} step abandoned: its lease is about to lapse; the resume timer takes it over`, {
            [kind.idKey]: job.id,
            step,
            leftSeconds: Math.max(0, Math.round(e.leftMs / 1000)),
            before: e.before,
          });
          return job;
        }
        stored = await this.write(kind, await kind.failed(run, e), stored.etag);
        continue;
      }
      faults.hit(`${step}:after`);
      const recorded: Versioned<J> | undefined = await this.write(kind, await kind.record(run, result), stored.etag);
      if (!recorded) await kind.lost?.(run, result);
      stored = recorded;
    }
    throw new Error(`${kind.label} ${id} did not settle after ${MAX_ROUNDS} rounds`);
  }

  /**
   * Advances up to `limit` due jobs of `kind`; one failing does not stop the others. Within a
   * longer run (`round`), jobs it already took are skipped (a job that stays due after its try,
   * e.g. a store read failing, is not taken again), and it stops before the next job once the
   * round's budget has ended.
   */
  async resumeDue<J extends StepJob<S>, S extends string, R>(kind: JobKind<J, S, R>, limit = 50, round?: ResumeRound): Promise<ResumeReport> {
    const taken = round?.taken;
    // Ask for as many more as this run already took: those may still be due and are skipped.
    const found = await kind.store.due(await this.deps.clock.now(), limit + (taken?.size ?? 0));
    const due = (taken ? found.filter((j) => !taken.has(j.id)) : found).slice(0, limit);
    let advanced = 0;
    let errors = 0;
    let tried = 0;
    for (const job of due) {
      if (round?.ended()) break;
      tried++;
      taken?.add(job.id);
      try {
        await this.advance(kind, job.id);
        advanced++;
      } catch (e) {
        if (isInjectedCrash(e)) throw e;
        errors++;
        this.deps.log.error(`${kind.label} could not be advanced`, { [kind.idKey]: job.id, error: describeError(e) });
      }
    }
    return { due: tried, advanced, errors };
  }

  /** ETag-guarded write: the document as stored, or undefined when another worker changed it first (re-read and re-decide). */
  private async write<J>(kind: { store: JobStore<J> }, outcome: Outcome<J>, etag: string): Promise<Versioned<J> | undefined> {
    let written: Versioned<J>;
    try {
      written = await kind.store.replace(outcome.next, etag);
    } catch (e) {
      if (e instanceof ConcurrencyConflict) return undefined;
      throw e;
    }
    outcome.written();
    return written;
  }
}
