/**
 * A tenant revoke as a job of the step kernel (`stepKernel.ts`), one per revoke round:
 *   stop    — the tenant document is `revoked`: all use stops at once (the request
 *             answers from here on);
 *   notify  — `Keyturn.TenantKeyRevoked` to the admins (BYOK: asking the customer to
 *             remove Keyturn's role assignment, unless Keyturn removes its own);
 *   disable — service-managed: every version disabled in Key Vault; BYOK: Keyturn's own
 *             assignment removed where it was given the right (never the customer's key);
 *   verify  — BYOK: probes until the vault answers 403 (retried with backoff within a
 *             bounded window; after it the job fails and `remaining` says what is left);
 *   retain  — service-managed: held for the retention period, then the keys are
 *             deleted (soft delete; purge protection does the rest).
 * `complete` is true once `verify` is recorded.
 */
import { createHash } from 'node:crypto';
import { invalidTransition } from '../errors';
import { type FailurePolicy, type StepJob, type StepRecord, stepKernel } from './stepKernel';
import type { Topology } from './tenantKeys';

export const REVOKE_STEPS = ['stop', 'notify', 'disable', 'verify', 'retain'] as const;
export type RevokeStep = (typeof REVOKE_STEPS)[number];

export interface Revoke extends StepJob<RevokeStep> {
  tenantId: string;
  topology: Topology;
  reason: string;
  requestedBy: string;
  createdAt: string;
  /** Recorded by `stop`. */
  revokedAt?: string;
  /** Recorded by `disable`: versions disabled (service-managed) or assignments removed (BYOK). */
  disabled?: string[];
  /** BYOK: verification gives up after this (the job fails; `remaining` names the key). */
  verifyUntil?: string;
  /** Service-managed: when the revoked keys are deleted. */
  deleteAfter?: string;
}

/** One revoke per round: derived from the version in use when it was asked for. */
export const revokeId = (tenantId: string, round: string): string =>
  `revoke-${tenantId}-${createHash('sha256').update(round).digest('hex').slice(0, 32)}`;

const kernel = stepKernel<Revoke, RevokeStep, 'completed' | 'failed', 'retention'>({
  steps: REVOKE_STEPS,
  hold: (job) => (job.status === 'active' && job.step === 'retain' && job.deleteAfter ? { until: job.deleteAfter, reason: 'retention' } : undefined),
  refuse: (message) => invalidTransition(message),
  label: 'Revoke',
});

export const revokeKernel = kernel;

export function newRevoke(input: { tenantId: string; topology: Topology; round: string; reason: string; requestedBy: string }, now: Date): Revoke {
  const at = now.toISOString();
  const { round, ...rest } = input;
  return kernel.touched({ id: revokeId(input.tenantId, round), ...rest, status: 'active', step: 'stop', steps: {}, createdAt: at, updatedAt: at }, now);
}

export type RevokeResult =
  | { step: 'stop'; revokedAt: string }
  | { step: 'notify' }
  | { step: 'disable'; disabled: string[] }
  | { step: 'verify' }
  | { step: 'retain' };

export function completeRevokeStep(job: Revoke, token: string, result: RevokeResult, now: Date, settings: { verifyMs: number; retentionMs: number }): Revoke {
  const record: StepRecord = kernel.requireLease(job, result.step, token);
  let next: Revoke = job;
  if (result.step === 'stop') {
    next = { ...job, revokedAt: result.revokedAt, verifyUntil: new Date(Date.parse(result.revokedAt) + settings.verifyMs).toISOString() };
    if (job.topology === 'service-managed') next.deleteAfter = new Date(Date.parse(result.revokedAt) + settings.retentionMs).toISOString();
  }
  if (result.step === 'disable') next = { ...job, disabled: result.disabled };
  return kernel.complete(next, result.step, record, now);
}

/** Use stopped at `stop`; only verification may give up, once its window has passed. */
export const revokeFailurePolicy = (job: Revoke, now: Date, jitter: number): FailurePolicy => ({
  maxAttempts: job.step === 'verify' && job.verifyUntil && now.toISOString() >= job.verifyUntil ? 1 : Number.MAX_SAFE_INTEGER,
  jitter,
  mayFail: job.step === 'verify',
});

export const isComplete = (job: Revoke): boolean => Boolean(job.steps.verify?.completedAt);

/**
 * A caller polling the revoke asks for the verification now rather than at its next
 * backoff (the customer may just have removed the assignment); a verification that
 * gave up gets a new window. Undefined: nothing to move.
 */
export function pokeVerify(job: Revoke, now: Date, verifyMs: number): Revoke | undefined {
  if (job.step !== 'verify' || job.steps.verify?.completedAt) return undefined;
  if (job.status === 'failed') {
    const record = job.steps.verify;
    const next: Revoke = { ...job, status: 'active', verifyUntil: new Date(now.getTime() + verifyMs).toISOString(), ...(record ? { steps: { ...job.steps, verify: { ...record, failures: 0 } } } : {}) };
    delete next.endedAt;
    delete next.nextAttemptAt;
    return kernel.touched(next, now);
  }
  if (job.status !== 'active' || !job.nextAttemptAt || job.lease) return undefined;
  const next: Revoke = { ...job };
  delete next.nextAttemptAt;
  return kernel.touched(next, now);
}
