/**
 * `POST /api/tenants` on the create job (`createJob.ts`): one job per tenant, so a retried
 * request, a second host or the resume timer after a crash drive the same creation and
 * make one key. The same body again answers the same tenant; another body for a tenant
 * that exists (or is being created) is 409 TENANT_EXISTS. A create that failed (a refused
 * BYOK key, or its retries ran out) starts again when posted again, once its clean-up is done.
 */
import { ConcurrencyConflict, KeyturnError, ValidationError } from '../../errors';
import { type CreateRequest, type CreateResult, type CreateStep, type TenantCreate, createFingerprint, createId, newCreate, restartCreate } from '../../domain/tenantCreate';
import type { Tenant } from '../../domain/tenantKeys';
import type { Clock, Logger } from '../../ports';
import type { JobKind, StepRunner } from '../jobs/runner';
import type { CreateStore, TenantStore } from './ports';

export interface CreateDeps {
  tenants: TenantStore;
  creates: CreateStore;
  runner: StepRunner;
  kind: JobKind<TenantCreate, CreateStep, CreateResult>;
  clock: Clock;
  log: Logger;
  /** While another request holds the job's step: how long to wait for it (real time). */
  waitMs?: number;
}

const tenantExists = (tenantId: string) => new KeyturnError('TENANT_EXISTS', `Tenant '${tenantId}' exists already`, { tenantId });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const POLL_MS = 100;

/** The tenant `job` made, if it did and the request is the same body. */
function sameCreate(tenant: Tenant, job: TenantCreate | undefined, fingerprint: string): boolean {
  return job?.status === 'completed' && job.fingerprint === fingerprint && job.created !== undefined && tenant.versions.some((v) => v.kid === job.created!.kid);
}

export async function createTenant(deps: CreateDeps, tenantId: string, request: CreateRequest): Promise<Tenant> {
  const { tenants, creates, runner, kind, clock, log } = deps;
  const fingerprint = createFingerprint(request);
  const id = createId(tenantId);
  const existing = await tenants.read(tenantId);
  if (existing) {
    if (sameCreate(existing.doc, (await creates.read(id))?.doc, fingerprint)) return existing.doc;
    throw tenantExists(tenantId);
  }
  // Start the job, join the one running for the same body, or restart an ended one.
  for (let attempt = 0; ; attempt++) {
    if (attempt >= 5) throw new ConcurrencyConflict('changed', id);
    const stored = await creates.read(id);
    if (!stored) {
      if (await creates.createOnly(newCreate(tenantId, request, await clock.now()))) log.info('Tenant create started', { tenantId, createId: id, topology: request.topology });
      continue;
    }
    const job = stored.doc;
    if (job.status === 'active' || job.status === 'completed') {
      if (job.fingerprint !== fingerprint) throw tenantExists(tenantId);
      break;
    }
    if (job.cleanup?.state === 'pending') {
      const after = await runner.advance(kind, id); // its clean-up first: what it took is released
      if (after.cleanup?.state === 'pending') throw new KeyturnError('DEPENDENCY_FAILED', 'An earlier create of this tenant is still being cleaned up; retry later', { tenantId, createId: id });
      continue;
    }
    try {
      await creates.replace(restartCreate(job, request, await clock.now()), stored.etag);
      log.info('Tenant create started again', { tenantId, createId: id, attempt: job.attempt + 1 });
      break;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  const job = await settle(deps, id);
  if (job.fingerprint !== fingerprint) throw tenantExists(tenantId); // another body restarted it meanwhile
  return answer(deps, job);
}

/** Advances the job; while another request holds its step, waits (a bounded while) for it. */
async function settle(deps: CreateDeps, id: string): Promise<TenantCreate> {
  const until = Date.now() + (deps.waitMs ?? 10_000);
  for (;;) {
    const job = await deps.runner.advance(deps.kind, id);
    const held = job.status === 'active' && job.lease !== undefined;
    if (!held || Date.now() >= until) return job;
    await sleep(POLL_MS);
  }
}

async function answer(deps: CreateDeps, job: TenantCreate): Promise<Tenant> {
  const { tenantId } = job;
  if (job.status === 'completed') {
    const stored = await deps.tenants.read(tenantId);
    if (stored) return stored.doc;
  }
  if (job.status === 'superseded') throw tenantExists(tenantId);
  if (job.refusal) throw new ValidationError(job.refusal.field, job.refusal.message);
  if (job.status === 'failed') throw new KeyturnError('DEPENDENCY_FAILED', 'The tenant create failed after its retries; posting it again starts it again', { tenantId, createId: job.id });
  // Still running (a retry is due, or another request holds the step): the resume timer finishes it.
  throw new KeyturnError(job.lastError?.code === 'ACCESS_DENIED' ? 'ACCESS_DENIED' : 'DEPENDENCY_FAILED', `The tenant is not created yet (${job.lastError?.message ?? 'another request is creating it'}); it is retried, and posting the same body again answers it once it is`, {
    tenantId,
    createId: job.id,
    step: job.step,
  });
}
