/**
 * A tenant's creation as a job of the step kernel (`stepKernel.ts`), one per tenant:
 *   create-key    — service-managed: the first key, generated and imported under a name
 *                   derived from the job (a crash after the import adopts that version);
 *                   BYOK: the onboarding checks, the claim (taken by this job) and the probe;
 *   create-tenant — the tenant document, create-only, with that version active (a crash
 *                   after the write finds it and adopts it).
 * A refused BYOK key ends the job `failed` at once (the request answers 400 naming the
 * field); any other failure is retried with backoff. A failed or superseded job cleans up
 * what it made (the service-managed key disabled, the claim it took released), and a
 * request posted again restarts it (the next `attempt`, same id).
 */
import { createHash } from 'node:crypto';
import { invalidTransition } from '../errors';
import { type FailurePolicy, type StepJob, type StepRecord, stepKernel } from './stepKernel';
import type { NewVersion, Topology } from './tenantKeys';

export const CREATE_STEPS = ['create-key', 'create-tenant'] as const;
export type CreateStep = (typeof CREATE_STEPS)[number];

/** What the tenant is created with (the body of `POST /api/tenants`, normalised). */
export interface CreateRequest {
  topology: Topology;
  keyUrl?: string;
  customerTenantId?: string;
  adminContacts: string[];
  /** Lower-cased principal ids. */
  allowedCallers: string[];
  requestedBy: string;
}

export interface TenantCreate extends StepJob<CreateStep> {
  tenantId: string;
  request: CreateRequest;
  /** Of the request without `requestedBy`: the same body again is the same create. */
  fingerprint: string;
  /** 1 at first; a restart after a failure counts up (a fresh key name, fresh tokens). */
  attempt: number;
  createdAt: string;
  /** Recorded by `create-key`: the first version. */
  created?: NewVersion;
  /** Why a BYOK key was refused (the request's 400). */
  refusal?: { field: string; message: string };
  /** The last failed try, for the request's answer (a code and a message, never key material). */
  lastError?: { code: string; message: string };
}

/** One create job per tenant (tenants are never deleted). */
export const createId = (tenantId: string): string => `create-${tenantId}-${createHash('sha256').update(tenantId).digest('hex').slice(0, 32)}`;

/** A Key Vault name of this attempt only: versions under it are this attempt's, nobody else's. */
export const createKeyName = (job: Pick<TenantCreate, 'id' | 'tenantId' | 'attempt'>): string =>
  `tenant-${job.tenantId}-${createHash('sha256').update(`${job.id}#${job.attempt}`).digest('hex').slice(0, 8)}`;

export function createFingerprint(request: CreateRequest): string {
  const { requestedBy: _who, ...rest } = request;
  void _who;
  const canonical = JSON.stringify(Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b))));
  return createHash('sha256').update(canonical).digest('hex');
}

const kernel = stepKernel<TenantCreate, CreateStep, 'completed' | 'failed' | 'superseded'>({
  steps: CREATE_STEPS,
  refuse: (message) => invalidTransition(message),
  label: 'Tenant create',
});

export const createKernel = kernel;

export function newCreate(tenantId: string, request: CreateRequest, now: Date): TenantCreate {
  const at = now.toISOString();
  return kernel.touched(
    { id: createId(tenantId), tenantId, request, fingerprint: createFingerprint(request), attempt: 1, status: 'active', step: 'create-key', steps: {}, createdAt: at, updatedAt: at },
    now,
  );
}

/** A failed (or superseded) create whose clean-up is done, started again with `request`. */
export function restartCreate(job: TenantCreate, request: CreateRequest, now: Date): TenantCreate {
  if (job.status === 'active' || job.status === 'completed' || job.cleanup?.state === 'pending') {
    throw invalidTransition(`Tenant create ${job.id}: only an ended create whose clean-up is done starts again`);
  }
  const at = now.toISOString();
  const { created: _c, refusal: _r, lastError: _e, cleanup: _cl, endedAt: _end, nextAttemptAt: _n, lease: _l, ...rest } = job;
  void [_c, _r, _e, _cl, _end, _n, _l];
  return kernel.touched({ ...rest, request, fingerprint: createFingerprint(request), attempt: job.attempt + 1, status: 'active', step: 'create-key', steps: {}, updatedAt: at }, now);
}

export type CreateResult =
  | { step: 'create-key'; created: NewVersion }
  | { step: 'create-tenant' }
  /** A tenant this job did not make exists: it stops (what it made is cleaned up). */
  | { step: CreateStep; superseded: true };

const pendingCleanup = (job: TenantCreate, now: Date): TenantCreate => kernel.touched({ ...job, cleanup: { state: 'pending', at: now.toISOString(), tries: 0 } }, now);

export function completeCreateStep(job: TenantCreate, token: string, result: CreateResult, now: Date): TenantCreate {
  if ('superseded' in result) return pendingCleanup(kernel.end(job, token, 'superseded', now), now);
  const record: StepRecord = kernel.requireLease(job, result.step, token);
  const next: TenantCreate = result.step === 'create-key' ? { ...job, created: result.created } : job;
  return kernel.complete(next, result.step, record, now);
}

/** A refused BYOK key: the job ends at once (no retry can change the answer), and cleans up. */
export function refuseCreate(job: TenantCreate, token: string, refusal: { field: string; message: string }, now: Date): TenantCreate {
  return pendingCleanup({ ...kernel.end(job, token, 'failed', now), refusal }, now);
}

/** A failed try: retried with backoff; `create-key` may fail (then the job cleans up), `create-tenant` only goes forward. */
export function failCreate(job: TenantCreate, token: string, error: { code: string; message: string }, now: Date, policy: Omit<FailurePolicy, 'mayFail'>): TenantCreate {
  const next = kernel.fail({ ...job, lastError: error }, token, now, { ...policy, mayFail: job.step === 'create-key' });
  return next.status === 'failed' ? pendingCleanup(next, now) : next;
}
