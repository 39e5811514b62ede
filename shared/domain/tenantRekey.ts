/**
 * A tenant rekey as a job of the step kernel (`stepKernel.ts`): `create` makes the new
 * key version (tagged with the step's token, so a crash adopts it instead of making a
 * second), `activate` writes it into the tenant (the previous version enters its
 * changeover), `archive` waits until the changeover ends (a hold: the resume timer
 * picks it up when due) and narrows the previous version to unwrap/decrypt.
 *
 * The job's id is deterministic (tenant + the version being replaced), so two hosts,
 * a retried request or a redelivered KeyNearExpiry start at most one rekey.
 */
import { createHash } from 'node:crypto';
import { invalidTransition } from '../errors';
import { type FailurePolicy, type StepJob, type StepRecord, stepKernel } from './stepKernel';
import type { NewVersion, Topology } from './tenantKeys';

export const REKEY_STEPS = ['create', 'activate', 'archive'] as const;
export type RekeyStep = (typeof REKEY_STEPS)[number];

export interface Rekey extends StepJob<RekeyStep> {
  tenantId: string;
  /** The version being replaced (the one in use when the rekey started), or `revoked:{at}` for a new key after a revoke. */
  fromKid: string;
  /** BYOK: the customer's key version to pin (onboarding checks passed when the rekey was asked for). */
  byokKey?: { vaultUrl: string; name: string; version: string };
  /** A new key for a revoked tenant (it protects again; revoked versions stay revoked). */
  afterRevoke?: boolean;
  /** A topology switch (tenant keys part 2, `tenantTopology.ts`): the tenant's topology once the new version is active. */
  toTopology?: Topology;
  reason: string;
  compromised: boolean;
  requestedBy: string;
  createdAt: string;
  /** Recorded by `create`: the new version. */
  created?: NewVersion;
  /** Recorded by `activate`: when the previous version is archived (the changeover's end). */
  archiveAfter?: string;
  /** 1 (or absent) at first; a failed rekey asked for again starts over as the next attempt (same id). */
  attempt?: number;
}

export const rekeyId = (tenantId: string, fromKid: string): string =>
  `rekey-${tenantId}-${createHash('sha256').update(fromKid).digest('hex').slice(0, 32)}`;

const kernel = stepKernel<Rekey, RekeyStep, 'completed' | 'failed' | 'superseded', 'changeover'>({
  steps: REKEY_STEPS,
  hold: (job) => (job.status === 'active' && job.step === 'archive' && job.archiveAfter ? { until: job.archiveAfter, reason: 'changeover' } : undefined),
  refuse: (message) => invalidTransition(message),
  label: 'Rekey',
});

export const rekeyKernel = kernel;

export function newRekey(
  input: { tenantId: string; fromKid: string; reason: string; compromised: boolean; requestedBy: string; byokKey?: Rekey['byokKey']; afterRevoke?: boolean; toTopology?: Topology },
  now: Date,
): Rekey {
  const at = now.toISOString();
  return kernel.touched(
    { id: rekeyId(input.tenantId, input.fromKid), ...input, status: 'active', step: 'create', steps: {}, createdAt: at, updatedAt: at },
    now,
  );
}

/** What a step found or did, for its record. */
export type RekeyResult =
  | { step: 'create'; created: NewVersion; adoptedToken?: string }
  | { step: 'activate'; archiveAfter: string }
  | { step: 'archive' }
  /** The tenant was revoked meanwhile: the rekey stops cleanly (what it made is cleaned up). */
  | { step: RekeyStep; superseded: true };

export const rekeyAfterRevokeId = (tenantId: string, revokedAt: string): string => rekeyId(tenantId, `revoked:${revokedAt}`);

/** Records the held step's result and moves on (the archive step then waits for its hold). */
export function completeRekeyStep(job: Rekey, token: string, result: RekeyResult, now: Date): Rekey {
  if ('superseded' in result) {
    const ended = kernel.end(job, token, 'superseded', now);
    // A service-managed version it made is nobody's (the clean-up disables it); a BYOK claim it took is released.
    return job.created || job.byokKey ? withCleanup(ended, now) : ended;
  }
  const record: StepRecord = kernel.requireLease(job, result.step, token);
  const withResult: Rekey =
    result.step === 'create'
      ? { ...job, created: result.created }
      : result.step === 'activate'
        ? { ...job, archiveAfter: result.archiveAfter }
        : job;
  return kernel.complete(withResult, result.step, { ...record, ...(result.step === 'create' && result.adoptedToken ? { adoptedToken: result.adoptedToken } : {}) }, now);
}

const withCleanup = (job: Rekey, now: Date): Rekey => kernel.touched({ ...job, cleanup: { state: 'pending', at: now.toISOString(), tries: 0 } }, now);

/** A failed try; a rekey that has failed cleans up (what it imported is disabled, the claim it took released). */
export function failRekeyStep(job: Rekey, token: string, now: Date, policy: FailurePolicy): Rekey {
  const next = kernel.fail(job, token, now, policy);
  return next.status === 'failed' ? withCleanup(next, now) : next;
}

/**
 * A failed rekey asked for again (its clean-up done): the same id starts over as `fresh`
 * (the request's new pin, fresh step tokens), the next attempt.
 */
export function restartRekey(failed: Rekey, fresh: Rekey, now: Date): Rekey {
  if (failed.status !== 'failed' || failed.cleanup?.state === 'pending' || fresh.id !== failed.id) {
    throw invalidTransition(`Rekey ${failed.id}: only a failed rekey whose clean-up is done starts again`);
  }
  return kernel.touched({ ...fresh, attempt: (failed.attempt ?? 1) + 1, createdAt: failed.createdAt }, now);
}

/** Before the new version is active a rekey may fail; after, it only goes forward. */
export const rekeyFailurePolicy = (job: Rekey, maxAttempts: number, jitter: number): FailurePolicy => ({
  maxAttempts,
  jitter,
  mayFail: job.step === 'create',
});
