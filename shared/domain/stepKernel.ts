/**
 * The step-workflow kernel: what every resumable, multi-step, side-effecting job
 * (credential renewal today; tenant keys, key sets, incidents next) shares, as pure
 * functions over plain data. A job walks its steps in order; each step is claimed
 * (a lease with a fresh token and a holder unique to one run) before its side effect,
 * recorded after it, and retried with capped backoff and jitter when it fails.
 *
 * The job's own rules (what a step's result changes, ordering invariants, alerts,
 * extra waits such as a grace period) live beside its type, on top of this kernel
 * (e.g. `rotation.ts`). Written documents are ETag-guarded by the runner
 * (`services/jobs/runner.ts`).
 *
 * The due rule lives here, once: `dueAt` is the next time the job needs a worker
 * (now, a lease's expiry, a backoff's end, a hold's end) and is absent exactly when
 * nothing is left to do. A store's due query is `dueAt <= now`, ordered by `dueAt`.
 */

export interface StepRecord {
  /** Every claim's token, oldest first; artifacts tagged with any of them belong to this step. */
  tokens: string[];
  startedAt: string;
  completedAt?: string;
  failures: number;
  /** Token carried by the artifact that was recorded (may be an earlier claim's). */
  adoptedToken?: string;
}

export interface Lease<S extends string = string> {
  step: S;
  owner: string;
  token: string;
  expiresAt: string;
}

/** Clean-up of what an ended (failed, superseded…) job created; one that did not finish is retried. */
export interface Cleanup {
  state: 'done' | 'pending';
  at: string;
  tries: number;
  /** When `pending`: when the resume timer tries again. */
  nextAt?: string;
}

/** The fields the kernel reads and writes; a job type adds its own. */
export interface StepJob<S extends string = string> {
  id: string;
  /** `active` while steps remain; the kernel ends a job as `completed` or `failed`. */
  status: string;
  step: S;
  steps: Partial<Record<S, StepRecord>>;
  lease?: Lease<S>;
  nextAttemptAt?: string;
  /** When a worker should next look at it; absent when nothing is left to do. */
  dueAt?: string;
  cleanup?: Cleanup;
  updatedAt: string;
  endedAt?: string;
}

export type Decision<S extends string, End extends string = string, HoldReason extends string = never> =
  | { action: 'none'; reason: End }
  | { action: 'wait'; until: string; reason: 'leased' | 'backoff' | HoldReason }
  /** An ended job whose clean-up did not finish: try it again. */
  | { action: 'cleanup' }
  | { action: 'claim'; step: S }
  | { action: 'perform'; step: S; token: string };

export interface Hold<R extends string> {
  until: string;
  reason: R;
}

export interface StepRules<J extends StepJob<S>, S extends string, HoldReason extends string = never> {
  /** The steps, in order. */
  readonly steps: readonly S[];
  /** A wait of the job's own, after a lease and before a backoff (renewal: the grace before retire). */
  hold?(job: J, now: Date): Hold<HoldReason> | undefined;
  /** The error a refused transition throws (each job type names its own). */
  refuse(message: string): Error;
  /** Names the job in messages, e.g. `Rotation`. */
  readonly label: string;
}

export interface Claim {
  owner: string;
  token: string;
  leaseMs: number;
}

export interface FailurePolicy {
  maxAttempts: number;
  /** In [0, 1): spreads retries of many jobs failing together. */
  jitter: number;
  /** False once the job may only go forward (e.g. after renewal's promotion): it never fails, it keeps retrying. */
  mayFail: boolean;
}

const iso = (d: Date): string => d.toISOString();
const plus = (d: Date, ms: number): Date => new Date(d.getTime() + ms);

/** Exponential backoff with jitter: 30 s, 1 min, 2 min … capped at 30 min, each × [0.5, 1). */
export function backoffMs(failures: number, jitter: number): number {
  const base = Math.min(30_000 * 2 ** Math.max(0, failures - 1), 30 * 60_000);
  return Math.round(base * (0.5 + Math.min(Math.max(jitter, 0), 0.999) / 2));
}

/** The one due rule: a job needs a worker once its `dueAt` has come. */
export const isDue = (job: Pick<StepJob, 'dueAt'>, now: Date): boolean => job.dueAt !== undefined && job.dueAt <= iso(now);

/** Due order: the longest-waiting first (what the store's `ORDER BY dueAt` gives). */
export const byDueAt = (a: Pick<StepJob, 'dueAt'>, b: Pick<StepJob, 'dueAt'>): number => (a.dueAt ?? '').localeCompare(b.dueAt ?? '');

/** The kernel's transitions, bound to one job type's rules. */
export function stepKernel<J extends StepJob<S>, S extends string, End extends string = string, HoldReason extends string = never>(
  rules: StepRules<J, S, HoldReason>,
) {
  type D = Decision<S, End, HoldReason>;

  /**
   * What a worker should do with the job now. `owner` is the lease holder of one run
   * (unique per run, never just per process): two runs in one process must never both
   * perform a step under the same token.
   */
  function decide(job: J, now: Date, owner: string): D {
    const t = now.getTime();
    if (job.status !== 'active') {
      if (job.cleanup?.state !== 'pending') return { action: 'none', reason: job.status as End };
      const at = job.cleanup.nextAt;
      return at && Date.parse(at) > t ? { action: 'wait', until: at, reason: 'backoff' } : { action: 'cleanup' };
    }
    const lease = job.lease;
    if (lease && lease.step === job.step && Date.parse(lease.expiresAt) > t) {
      return lease.owner === owner ? { action: 'perform', step: job.step, token: lease.token } : { action: 'wait', until: lease.expiresAt, reason: 'leased' };
    }
    const hold = rules.hold?.(job, now);
    if (hold && Date.parse(hold.until) > t) return { action: 'wait', until: hold.until, reason: hold.reason };
    if (job.nextAttemptAt && Date.parse(job.nextAttemptAt) > t) return { action: 'wait', until: job.nextAttemptAt, reason: 'backoff' };
    return { action: 'claim', step: job.step };
  }

  /** Stamps `updatedAt` and the next due time (the due rule: see the file comment). */
  function touched(job: J, now: Date): J {
    const next = { ...job, updatedAt: iso(now) };
    const d = decide(next, now, '');
    if (d.action === 'none') delete next.dueAt;
    else next.dueAt = d.action === 'wait' ? d.until : iso(now);
    return next;
  }

  /** Takes the lease on the current step with a fresh token (the caller writes it under the ETag). */
  function claim(job: J, c: Claim, now: Date): J {
    const d = decide(job, now, c.owner);
    if (d.action !== 'claim') throw rules.refuse(`${rules.label} ${job.id}: cannot claim ${job.step} (${d.action})`);
    const previous = job.steps[job.step];
    const record: StepRecord = previous ? { ...previous, tokens: [...previous.tokens, c.token] } : { tokens: [c.token], startedAt: iso(now), failures: 0 };
    return touched(
      { ...job, steps: { ...job.steps, [job.step]: record }, lease: { step: job.step, owner: c.owner, token: c.token, expiresAt: iso(plus(now, c.leaseMs)) } },
      now,
    );
  }

  /** The step's record, when the job is active at `step` and `token` holds its lease; else refused. */
  function requireLease(job: J, step: S, token: string): StepRecord {
    if (job.status !== 'active' || job.step !== step || job.lease?.step !== step || job.lease.token !== token) {
      throw rules.refuse(`${rules.label} ${job.id}: step ${step} is not held with this token`);
    }
    return job.steps[step]!;
  }

  /**
   * Records the held step as done (`record`: its record from `requireLease`, with what the
   * job adds) and moves to the next step, or ends the job `completed` after the last.
   */
  function complete(job: J, step: S, record: StepRecord, now: Date): J {
    const next: J = { ...job, steps: { ...job.steps, [step]: { ...record, completedAt: iso(now) } } };
    delete next.lease;
    delete next.nextAttemptAt;
    const following = rules.steps[rules.steps.indexOf(step) + 1];
    if (following !== undefined) next.step = following;
    else {
      next.status = 'completed';
      next.endedAt = iso(now);
    }
    return touched(next, now);
  }

  /**
   * Records a failed try of the held step: after `maxAttempts` failures a job that may
   * fail ends `failed`; otherwise it retries after a capped backoff with jitter.
   */
  function fail(job: J, token: string, now: Date, policy: FailurePolicy): J {
    const record = requireLease(job, job.step, token);
    const failures = record.failures + 1;
    const next: J = { ...job, steps: { ...job.steps, [job.step]: { ...record, failures } } };
    delete next.lease;
    if (failures >= policy.maxAttempts && policy.mayFail) {
      next.status = 'failed';
      next.endedAt = iso(now);
      delete next.nextAttemptAt;
    } else {
      next.nextAttemptAt = iso(plus(now, backoffMs(failures, policy.jitter)));
    }
    return touched(next, now);
  }

  /** Ends the job with `status` (abandoning the held step); its clean-up is recorded separately. */
  function end(job: J, token: string, status: End, now: Date): J {
    requireLease(job, job.step, token);
    const next: J = { ...job, status, endedAt: iso(now) };
    delete next.lease;
    return touched(next, now);
  }

  /** Records the clean-up of an ended job; one that did not finish is retried with backoff. */
  function recordCleanup(job: J, ok: boolean, now: Date, jitter: number): J {
    if (job.status === 'active') throw rules.refuse(`${rules.label} ${job.id}: only an ended ${rules.label.toLowerCase()} is cleaned up`);
    const tries = (job.cleanup?.tries ?? 0) + 1;
    const cleanup: Cleanup = ok
      ? { state: 'done', at: iso(now), tries }
      : { state: 'pending', at: iso(now), tries, nextAt: iso(plus(now, backoffMs(tries, jitter))) };
    return touched({ ...job, cleanup }, now);
  }

  return { decide, touched, claim, requireLease, complete, fail, end, recordCleanup };
}

export type StepKernel<J extends StepJob<S>, S extends string, End extends string = string, HoldReason extends string = never> = ReturnType<
  typeof stepKernel<J, S, End, HoldReason>
>;
