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
import { createHash } from 'node:crypto';
import { withTopology } from '../../domain/tenantTopology';
import { ConcurrencyConflict, describeError, isKeyturnError } from '../../errors';
import { type Rekey, type RekeyResult, type RekeyStep, completeRekeyStep, failRekeyStep, rekeyFailurePolicy, rekeyKernel } from '../../domain/tenantRekey';
import { type Tenant, archiveVersion, reinstateTenant, rekeyTenant, versionOf as tenantVersion } from '../../domain/tenantKeys';
import type { KeyOperation } from '../../ports';
import type { JobKind, StepRun } from '../jobs/runner';
import { releaseJobClaim } from './byok';
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
        written: () => log.info('superseded' in result ? 'Rekey stopped: the tenant was revoked' : `Rekey step ${step} done`, { rekeyId: job.id, tenantId: job.tenantId }),
      };
    },
    async failed({ job, token, step, now }, error) {
      const next = failRekeyStep(job, token, now, rekeyFailurePolicy(job, c.maxAttempts, Math.random()));
      return {
        next,
        written: () => log.warn(`Rekey step ${step} failed${next.status === 'failed' ? '; the rekey has failed' : '; will retry'}`, { rekeyId: job.id, error: describeError(error) }),
      };
    },
    async cleanup(job, now) {
      // A rekey fails (or is superseded) only before its version is in use: what it made or took is nobody's.
      const ok = await cleanUp(c, job, now).then(
        () => true,
        (e: unknown) => {
          log.warn('Rekey clean-up failed; retried', { rekeyId: job.id, error: describeError(e) });
          return false;
        },
      );
      return { next: rekeyKernel.recordCleanup(job, ok, now, Math.random()), written: () => undefined };
    },
  };
}

/**
 * BYOK: the claim this rekey took is released (never the claim of a key the tenant has a
 * version on, e.g. the key in use when the rekey named its new version). Service-managed:
 * the version it recorded, and any its create step imported under its tokens, are disabled
 * unless the tenant holds them.
 */
async function cleanUp(c: RekeyContext, job: Rekey, now: Date): Promise<void> {
  const tenant = (await c.deps.tenants.read(job.tenantId))?.doc;
  if (job.byokKey) {
    const claims = c.deps.byok?.claims;
    if (claims) await releaseJobClaim(claims, { ref: { vaultUrl: job.byokKey.vaultUrl, name: job.byokKey.name }, tenantId: job.tenantId, by: job.id, ...(tenant ? { tenant } : {}) }, now);
    return;
  }
  const kept = new Set(tenant?.versions.map((v) => v.kid) ?? []);
  const { keys } = c.deps;
  const made: { vaultUrl: string; name: string; version: string; kid: string }[] = job.created ? [job.created] : [];
  const tokens = job.steps.create?.tokens ?? [];
  const where = tenant && tokens.length > 0 ? keyOf(c, job, tenant) : undefined;
  if (where) {
    for (const p of await keys.versions(where.vaultUrl, where.name)) {
      if (p.enabled && tokens.includes(p.tags[STEP_TOKEN_TAG] ?? '')) made.push({ vaultUrl: p.vaultUrl, name: p.name, version: p.version, kid: `${p.vaultUrl}/keys/${p.name}/${p.version}` });
    }
  }
  for (const v of new Map(made.map((m) => [m.kid, m])).values()) {
    if (kept.has(v.kid)) continue;
    await keys.update({ vaultUrl: v.vaultUrl, name: v.name, version: v.version }, { enabled: false }).catch((e: unknown) => {
      if (!isKeyturnError(e, 'NOT_FOUND')) throw e;
    });
  }
}

/** The Key Vault key a service-managed rekey makes its version of (a fresh name after a revoke or a switch from BYOK). */
function keyOf(c: RekeyContext, job: Rekey, tenant: Tenant): { vaultUrl: string; name: string } {
  const from = tenantVersion(tenant, job.fromKid);
  const fresh = !from || (job.toTopology === 'service-managed' && from.vaultUrl !== c.deps.settings.vaultUrl);
  return !fresh && from ? { vaultUrl: from.vaultUrl, name: from.name } : { vaultUrl: c.deps.settings.vaultUrl, name: `tenant-${job.tenantId}-${createHash('sha256').update(job.id).digest('hex').slice(0, 8)}` };
}

async function create(c: RekeyContext, { job, step, now, check }: StepRun<Rekey, RekeyStep>): Promise<RekeyResult> {
  const tenant = await c.service.get(job.tenantId);
  if (tenant.state === 'revoked' && !job.afterRevoke) return { step: 'create', superseded: true };
  if (job.byokKey) {
    // BYOK: the customer's key version, pinned (never created or changed by Keyturn).
    const key = await c.service.keysOf(tenant).get(job.byokKey);
    if (!key) throw new Error(`rekey ${job.id}: the customer's key version is gone`);
    return { step: 'create', created: versionOf(key, job.requestedBy, job.reason) };
  }
  const { keys } = c.deps;
  const from = tenantVersion(tenant, job.fromKid);
  if (!from && !job.afterRevoke) throw new Error(`rekey ${job.id}: the version it replaces is not the tenant's`);
  // After a revoke: a fresh key under a name derived from the job (the revoked key is deleted later).
  // A switch from BYOK (tenantTopology.ts) also makes a fresh key in Keyturn's vault.
  const { vaultUrl, name } = keyOf(c, job, tenant);
  // A version an earlier claim of this step imported is adopted, never made twice.
  const tokens = job.steps[step]?.tokens ?? [];
  const earlier = (await keys.versions(vaultUrl, name)).find((p) => tokens.includes(p.tags[STEP_TOKEN_TAG] ?? ''));
  if (earlier) {
    const adopted = await keys.get({ vaultUrl, name, version: earlier.version });
    if (adopted) return { step: 'create', created: versionOf(adopted, job.requestedBy, job.reason), adoptedToken: earlier.tags[STEP_TOKEN_TAG]! };
  }
  await check('import the new tenant key version');
  const token = job.lease!.token;
  const key = await c.service.generateTenantKey(job.tenantId, now, name, { [STEP_TOKEN_TAG]: token });
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
    if (tenantVersion(tenant, created.kid)) {
      await rekeyed(c, job, tenant); // a crash after the write: the notice is (re)emitted, once
      return { step: 'activate', archiveAfter: archiveAfter(tenant.changeoverUntil, now) };
    }
    // A revoke came first: this rekey stops (no retry against a revoked tenant).
    if (tenant.state === 'revoked' && !job.afterRevoke) return { step: 'activate', superseded: true };
    const next = withTopology(job.afterRevoke
      ? reinstateTenant(tenant, created, now)
      : rekeyTenant(tenant, created, { fromKid: job.fromKid, compromised: job.compromised }, now, settings.changeoverMs), job.toTopology);
    try {
      await tenants.replace(next, stored.etag);
      c.deps.log.info('Tenant rekeyed', { tenantId: job.tenantId, kid: created.kid, fromKid: job.fromKid, compromised: job.compromised });
      await rekeyed(c, job, next);
      return { step: 'activate', archiveAfter: archiveAfter(next.changeoverUntil, now) };
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  throw new Error(`rekey ${job.id}: the tenant kept changing`);
}

const archiveAfter = (changeoverUntil: string | undefined, now: Date) => changeoverUntil ?? now.toISOString();

/** Keyturn.TenantKeyRekeyed, one per new version (its id derives from the kid). */
function rekeyed(c: RekeyContext, job: Rekey, tenant: Tenant): Promise<void> | undefined {
  const kid = job.created!.kid;
  return c.deps.notices?.emit({
    tenantId: job.tenantId,
    transition: 'rekeyed',
    version: kid,
    data: {
      topology: tenant.topology,
      kid,
      previousKid: job.afterRevoke ? null : job.fromKid,
      compromised: job.compromised,
      afterRevoke: job.afterRevoke ?? false,
      changeoverUntil: tenant.changeoverUntil ?? null,
      adminContacts: tenant.adminContacts,
    },
  });
}

function archived(c: RekeyContext, job: Rekey, tenant: Tenant): Promise<void> | undefined {
  return c.deps.notices?.emit({
    tenantId: job.tenantId,
    transition: 'archived',
    version: job.fromKid,
    data: { topology: tenant.topology, kid: job.fromKid, compromised: job.compromised, activeKid: tenant.activeKid ?? null, adminContacts: tenant.adminContacts },
  });
}

async function archive(c: RekeyContext, { job, now, check }: StepRun<Rekey, RekeyStep>): Promise<RekeyResult> {
  const { tenants } = c.deps;
  const stored = await tenants.read(job.tenantId);
  const from = stored && tenantVersion(stored.doc, job.fromKid);
  if (!stored || !from || from.state === 'revoked') return { step: 'archive' };
  // Keyturn's own key is narrowed; a customer's is not (after a topology switch the tenant's topology is the new one's).
  if (job.toTopology === undefined ? stored.doc.topology === 'service-managed' : from.vaultUrl === c.deps.settings.vaultUrl) {
    await check('narrow the archived version');
    // `exp` cleared: the JS CryptographyClient refuses an expired key on the client side,
    // and an archived version must keep unwrapping old content keys after its expiry.
    await c.deps.keys.update({ vaultUrl: from.vaultUrl, name: from.name, version: from.version }, { keyOps: ARCHIVED_OPS, expiresOn: null });
  } // BYOK: archiving is Keyturn no longer wrapping with it; the customer's key is not changed.
  if (from.state !== 'active') {
    await archived(c, job, stored.doc); // compromised: archived at activation
    return { step: 'archive' };
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = attempt === 0 ? stored : await tenants.read(job.tenantId);
    const v = current && tenantVersion(current.doc, job.fromKid);
    if (!current || !v || v.state === 'revoked' || current.doc.activeKid === job.fromKid) return { step: 'archive' };
    if (v.state === 'archived') {
      await archived(c, job, current.doc);
      return { step: 'archive' };
    }
    try {
      const next = (await tenants.replace(archiveVersion(current.doc, job.fromKid, now), current.etag)).doc;
      c.deps.log.info('Tenant key version archived', { tenantId: job.tenantId, kid: job.fromKid });
      await archived(c, job, next);
      return { step: 'archive' };
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  throw new Error(`rekey ${job.id}: the tenant kept changing`);
}
