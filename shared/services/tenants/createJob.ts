/**
 * Tenant creation as a job kind of the step runner (`domain/tenantCreate.ts` has the steps):
 *   create-key    — service-managed: the first key, imported under a name of this attempt
 *                   only, so a resumed step adopts the version an earlier claim imported
 *                   (never a second); BYOK: the onboarding checks, the claim taken by this
 *                   job (a resumed step finds it its own) and the probe;
 *   create-tenant — the tenant document, create-only; found already (a crash after the
 *                   write) it is adopted when it holds this job's version.
 * Clean-up of a failed or superseded create: its service-managed key disabled, the claim
 * it took released (never one a tenant's version is on).
 */
import { KeyturnError, ValidationError, dependencyError, describeError } from '../../errors';
import { parseByokKeyUrl } from '../../domain/tenantByok';
import {
  type CreateResult,
  type CreateStep,
  type TenantCreate,
  completeCreateStep,
  createKernel,
  createKeyName,
  failCreate,
  refuseCreate,
} from '../../domain/tenantCreate';
import { newTenant } from '../../domain/tenantKeys';
import type { KeyProperties } from '../../ports';
import type { JobKind, StepRun, StepRunner } from '../jobs/runner';
import { releaseJobClaim } from './byok';
import { createTenant } from './createService';
import type { CreateStore } from './ports';
import { type TenantCreator, type TenantDeps, type TenantService, versionOf } from './tenantService';

export const CREATE_KIND = 'tenant-create';

export interface CreateContext {
  deps: TenantDeps;
  service: TenantService;
  creates: CreateStore;
  leaseMs: number;
  maxAttempts: number;
}

export interface CreateJobs {
  store: CreateStore;
  runner: StepRunner;
  leaseMs: number;
  maxAttempts: number;
  /** How long a request waits for another holding the create's step (default 10 s). */
  waitMs?: number;
}

/** `TenantDeps.creates`: the create job on this store and runner. */
export function tenantCreator(jobs: CreateJobs): TenantCreator {
  return ({ deps, service }, tenantId, request) => {
    const kind = createJob({ deps, service, creates: jobs.store, leaseMs: jobs.leaseMs, maxAttempts: jobs.maxAttempts });
    const { tenants, clock, log } = deps;
    return createTenant({ tenants, creates: jobs.store, runner: jobs.runner, kind, clock, log, ...(jobs.waitMs !== undefined ? { waitMs: jobs.waitMs } : {}) }, tenantId, request);
  };
}

export function createJob(c: CreateContext): JobKind<TenantCreate, CreateStep, CreateResult> {
  const { log } = c.deps;
  return {
    kind: CREATE_KIND,
    label: 'Tenant create',
    idKey: 'createId',
    store: c.creates,
    leaseMs: c.leaseMs,
    decide: (job, now, owner) => createKernel.decide(job, now, owner),
    claim: createKernel.claim,
    steps: { 'create-key': (run) => createKey(c, run), 'create-tenant': (run) => writeTenant(c, run) },
    async record({ job, token, step, now }, result) {
      return {
        next: completeCreateStep(job, token, result, now),
        written: () =>
          'superseded' in result
            ? log.warn('Tenant create stopped: a tenant it did not make exists', { createId: job.id, tenantId: job.tenantId })
            : log.info(`Tenant create step ${step} done`, { createId: job.id, tenantId: job.tenantId }),
      };
    },
    async failed({ job, token, step, now }, error) {
      // A refused key (BYOK onboarding): no retry changes the answer, so the create ends now.
      if (error instanceof ValidationError) {
        return {
          next: refuseCreate(job, token, { field: error.field, message: error.message }, now),
          written: () => log.warn('Tenant create refused', { createId: job.id, tenantId: job.tenantId, field: error.field }),
        };
      }
      const told = error instanceof KeyturnError ? error : dependencyError('A dependency failed while the tenant was created', error);
      const next = failCreate(job, token, { code: told.code, message: told.message }, now, { maxAttempts: c.maxAttempts, jitter: Math.random() });
      return {
        next,
        written: () =>
          log.warn(`Tenant create step ${step} failed${next.status === 'failed' ? '; the create has failed' : '; will retry'}`, { createId: job.id, error: describeError(error) }),
      };
    },
    async cleanup(job, now) {
      const ok = await cleanUp(c, job, now).then(
        () => true,
        (e: unknown) => {
          log.warn('Tenant create clean-up failed; retried', { createId: job.id, error: describeError(e) });
          return false;
        },
      );
      return { next: createKernel.recordCleanup(job, ok, now, Math.random()), written: () => undefined };
    },
  };
}

/** Versions of this attempt's key name, the oldest first. */
const oldestFirst = (a: KeyProperties, b: KeyProperties) => (a.createdOn?.getTime() ?? 0) - (b.createdOn?.getTime() ?? 0);

async function createKey(c: CreateContext, { job, now, check }: StepRun<TenantCreate, CreateStep>): Promise<CreateResult> {
  const r = job.request;
  if (r.topology === 'byok') {
    // Re-run after a crash: the checks again, and the claim is found to be this job's own.
    const { key } = await c.service.onboard(job.tenantId, r.keyUrl!, r.customerTenantId, now, job.id);
    return { step: 'create-key', created: versionOf(key, r.requestedBy) };
  }
  const { keys, settings } = c.deps;
  const name = createKeyName(job);
  // The name is this attempt's only: an enabled version under it was imported by an earlier claim
  // of this step (one whose escrow failed was disabled by the escrow, and is not adopted).
  const [earlier, ...extra] = (await keys.versions(settings.vaultUrl, name)).filter((p) => p.enabled).sort(oldestFirst);
  if (earlier) {
    const adopted = await keys.get({ vaultUrl: settings.vaultUrl, name, version: earlier.version });
    if (adopted) {
      // Two imports (a claim taken over after its lease lapsed mid-import): the later ones are nobody's.
      for (const p of extra) await keys.update({ vaultUrl: settings.vaultUrl, name, version: p.version }, { enabled: false });
      return { step: 'create-key', created: versionOf(adopted, r.requestedBy) };
    }
  }
  await check('import the tenant key');
  const key = await c.service.generateTenantKey(job.tenantId, now, name);
  return { step: 'create-key', created: versionOf(key, r.requestedBy) };
}

async function writeTenant(c: CreateContext, { job, now, check }: StepRun<TenantCreate, CreateStep>): Promise<CreateResult> {
  const { tenants, log } = c.deps;
  const created = job.created!;
  const r = job.request;
  const found = async (): Promise<CreateResult | undefined> => {
    const stored = await tenants.read(job.tenantId);
    if (!stored) return undefined;
    // Written by an earlier claim of this step (a crash after the write): adopted.
    return stored.doc.versions.some((v) => v.kid === created.kid) ? { step: 'create-tenant' } : { step: 'create-tenant', superseded: true };
  };
  const before = await found();
  if (before) return before;
  await check('write the tenant');
  const tenant = newTenant(
    {
      tenantId: job.tenantId,
      topology: r.topology,
      adminContacts: r.adminContacts,
      allowedCallers: r.allowedCallers,
      requestedBy: r.requestedBy,
      ...(r.customerTenantId ? { customerTenantId: r.customerTenantId } : {}),
    },
    created,
    now,
  );
  const outcome = await tenants.createOnly(tenant);
  if (outcome.created) {
    log.info('Tenant created', { tenantId: job.tenantId, topology: r.topology, kid: created.kid, createId: job.id });
    return { step: 'create-tenant' };
  }
  const after = await found();
  if (!after) throw new Error(`tenant create ${job.id}: the tenant document was neither created nor found`);
  return after;
}

async function cleanUp(c: CreateContext, job: TenantCreate, now: Date): Promise<void> {
  const { tenants, keys, settings } = c.deps;
  const tenant = (await tenants.read(job.tenantId))?.doc;
  const r = job.request;
  if (r.topology === 'byok') {
    const byok = c.deps.byok;
    if (!byok || r.keyUrl === undefined) return;
    let ref;
    try {
      ref = parseByokKeyUrl(r.keyUrl, { local: byok.local, ownVaultUrls: byok.ownVaultUrls });
    } catch {
      return; // refused before any claim
    }
    await releaseJobClaim(byok.claims, { ref, tenantId: job.tenantId, by: job.id, ...(tenant ? { tenant } : {}) }, now);
    return;
  }
  // Service-managed: every version of this attempt's name is nobody's, unless the tenant holds it.
  const name = createKeyName(job);
  const kept = new Set(tenant?.versions.map((v) => v.kid) ?? []);
  for (const p of await keys.versions(settings.vaultUrl, name)) {
    if (!p.enabled || kept.has(`${p.vaultUrl}/keys/${p.name}/${p.version}`)) continue;
    await keys.update({ vaultUrl: settings.vaultUrl, name, version: p.version }, { enabled: false });
  }
}
