/**
 * The tenant rekey as a job kind of the step runner (service-managed keys):
 *   create   — a new version of the tenant's key, imported and tagged with the step's
 *              token; a crash after the import adopts the tagged version (no second one);
 *   activate — the tenant document (ETag-guarded) gets the new version in use; the
 *              previous one enters its changeover (or is archived at once if compromised);
 *   archive  — held until the changeover ends (the resume timer advances it when due):
 *              the previous version's keyOps are narrowed to unwrapKey/decrypt and its
 *              `exp` cleared in Key Vault, then it is archived in the tenant document.
 */
import { ConcurrencyConflict, describeError } from '../../errors';
import { type Rekey, type RekeyResult, type RekeyStep, completeRekeyStep, rekeyFailurePolicy, rekeyKernel } from '../../domain/tenantRekey';
import { archiveVersion, rekeyTenant, versionOf as tenantVersion } from '../../domain/tenantKeys';
import type { KeyOperation } from '../../ports';
import type { JobKind, StepRun } from '../jobs/runner';
import type { RekeyStore } from './ports';
import { type TenantDeps, type TenantService, versionOf } from './tenantService';

export const REKEY_KIND = 'tenant-rekey';
/** The tag carrying the create step's token: what a resumed step adopts. */
export const STEP_TOKEN_TAG = 'keyturn-step-token';
/** An archived version only opens old content. */
export const ARCHIVED_OPS: KeyOperation[] = ['unwrapKey', 'decrypt'];

export interface RekeyContext {
  deps: TenantDeps;
  service: TenantService;
  rekeys: RekeyStore;
  leaseMs: number;
  maxAttempts: number;
}

export function rekeyJob(c: RekeyContext): JobKind<Rekey, RekeyStep, RekeyResult> {
  const { log } = c.deps;
  return {
    kind: REKEY_KIND,
    label: 'Rekey',
    idKey: 'rekeyId',
    store: c.rekeys,
    leaseMs: c.leaseMs,
    decide: (job, now, owner) => rekeyKernel.decide(job, now, owner),
    claim: rekeyKernel.claim,
    steps: { create: (run) => create(c, run), activate: (run) => activate(c, run), archive: (run) => archive(c, run) },
    async record({ job, token, step, now }, result) {
      return {
        next: completeRekeyStep(job, token, result, now),
        written: () => log.info(`Rekey step ${step} done`, { rekeyId: job.id, tenantId: job.tenantId }),
      };
    },
    async failed({ job, token, step, now }, error) {
      const next = rekeyKernel.fail(job, token, now, rekeyFailurePolicy(job, c.maxAttempts, Math.random()));
      return {
        next,
        written: () => log.warn(`Rekey step ${step} failed${next.status === 'failed' ? '; the rekey has failed' : '; will retry'}`, { rekeyId: job.id, error: describeError(error) }),
      };
    },
    async cleanup(job, now) {
      // A rekey fails only before its version is in use: that version is nobody's, so it is disabled.
      let ok = true;
      if (job.created) {
        ok = await c.deps.keys.update(job.created, { enabled: false }).then(() => true, () => false);
      }
      return { next: rekeyKernel.recordCleanup(job, ok, now, Math.random()), written: () => undefined };
    },
  };
}

async function create(c: RekeyContext, { job, step, now, check }: StepRun<Rekey, RekeyStep>): Promise<RekeyResult> {
  const { keys } = c.deps;
  const tenant = await c.service.get(job.tenantId);
  const from = tenantVersion(tenant, job.fromKid);
  if (!from) throw new Error(`rekey ${job.id}: the version it replaces is not the tenant's`);
  // A version an earlier claim of this step imported is adopted, never made twice.
  const tokens = job.steps[step]?.tokens ?? [];
  const earlier = (await keys.versions(from.vaultUrl, from.name)).find((p) => tokens.includes(p.tags[STEP_TOKEN_TAG] ?? ''));
  if (earlier) {
    const adopted = await keys.get({ vaultUrl: from.vaultUrl, name: from.name, version: earlier.version });
    if (adopted) return { step: 'create', created: versionOf(adopted, job.requestedBy, job.reason), adoptedToken: earlier.tags[STEP_TOKEN_TAG]! };
  }
  await check('import the new tenant key version');
  const token = job.lease!.token;
  const key = await c.service.newServiceManagedKey(job.tenantId, now, from.name, { [STEP_TOKEN_TAG]: token });
  return { step: 'create', created: versionOf(key, job.requestedBy, job.reason) };
}

async function activate(c: RekeyContext, { job, now }: StepRun<Rekey, RekeyStep>): Promise<RekeyResult> {
  const { tenants, settings } = c.deps;
  const created = job.created!;
  // ETag-guarded; a lost race re-reads and re-decides (the version may already be in).
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = await tenants.read(job.tenantId);
    if (!stored) throw new Error(`rekey ${job.id}: tenant ${job.tenantId} is gone`);
    const tenant = stored.doc;
    if (tenantVersion(tenant, created.kid)) return { step: 'activate', archiveAfter: archiveAfter(tenant.changeoverUntil, now) };
    const next = rekeyTenant(tenant, created, { fromKid: job.fromKid, compromised: job.compromised }, now, settings.changeoverMs);
    try {
      await tenants.replace(next, stored.etag);
      c.deps.log.info('Tenant rekeyed', { tenantId: job.tenantId, kid: created.kid, fromKid: job.fromKid, compromised: job.compromised });
      return { step: 'activate', archiveAfter: archiveAfter(next.changeoverUntil, now) };
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  throw new Error(`rekey ${job.id}: the tenant kept changing`);
}

const archiveAfter = (changeoverUntil: string | undefined, now: Date) => changeoverUntil ?? now.toISOString();

async function archive(c: RekeyContext, { job, now, check }: StepRun<Rekey, RekeyStep>): Promise<RekeyResult> {
  const { tenants, keys } = c.deps;
  const stored = await tenants.read(job.tenantId);
  const from = stored && tenantVersion(stored.doc, job.fromKid);
  if (!stored || !from || from.state === 'revoked') return { step: 'archive' };
  await check('narrow the archived version');
  // `exp` cleared: the JS CryptographyClient refuses an expired key on the client side,
  // and an archived version must keep unwrapping old content keys after its expiry.
  await keys.update({ vaultUrl: from.vaultUrl, name: from.name, version: from.version }, { keyOps: ARCHIVED_OPS, expiresOn: null });
  if (from.state !== 'active') return { step: 'archive' }; // compromised: archived at activation
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = attempt === 0 ? stored : await tenants.read(job.tenantId);
    const v = current && tenantVersion(current.doc, job.fromKid);
    if (!current || !v || v.state !== 'active' || current.doc.activeKid === job.fromKid) return { step: 'archive' };
    try {
      await tenants.replace(archiveVersion(current.doc, job.fromKid, now), current.etag);
      c.deps.log.info('Tenant key version archived', { tenantId: job.tenantId, kid: job.fromKid });
      return { step: 'archive' };
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  throw new Error(`rekey ${job.id}: the tenant kept changing`);
}
