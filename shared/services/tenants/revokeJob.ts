/**
 * The revoke as a job kind of the step runner (`domain/tenantRevoke.ts` has the steps).
 * Every step is idempotent and re-reads what it needs, so a crash at any boundary
 * resumes and completes once: `stop` re-applies a revoke that is already there as a
 * no-op, `notify` emits a notice under a deterministic id, `disable` disables (or
 * removes assignments) again harmlessly, `verify` only probes, `retain` deletes what
 * is still there.
 */
import { ConcurrencyConflict, KeyturnError, describeError, isKeyturnError } from '../../errors';
import { type Revoke, type RevokeResult, type RevokeStep, completeRevokeStep, revokeFailurePolicy, revokeKernel } from '../../domain/tenantRevoke';
import { type Tenant, revokeTenant } from '../../domain/tenantKeys';
import type { RoleAssignments } from '../../ports';
import type { JobKind, StepRun } from '../jobs/runner';
import { probeKey } from './byok';
import type { RevokeStore } from './ports';
import type { TenantDeps, TenantService } from './tenantService';

export const REVOKE_KIND = 'tenant-revoke';

/** Where Keyturn may remove its own role assignment on a customer's key (same Entra tenant, by setting). */
export interface SelfUnassign {
  roleAssignments: () => RoleAssignments;
  /** Keyturn's principal (object id). */
  principalId: string;
  /** The ARM resource id of a customer vault Keyturn may unassign itself in; undefined: not allowed there. */
  vaultScopeOf(vaultUrl: string): string | undefined;
}

export interface RevokeContext {
  deps: TenantDeps;
  service: TenantService;
  revokes: RevokeStore;
  leaseMs: number;
  settings: { verifyMs: number; retentionMs: number };
  selfUnassign?: SelfUnassign;
}

/** Roles that manage access (Owner, User Access Administrator, Role Based Access Control Administrator): removed last, they allow the other removals. */
const ACCESS_ADMIN_ROLES = ['8e3af657-a8ff-443c-a75c-2fe8c4bcb635', '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9', 'f58310d9-a9f6-439a-9e8d-f62e7b41a168'];
const managesAccess = (roleDefinitionId: string) => ACCESS_ADMIN_ROLES.some((id) => roleDefinitionId.toLowerCase().endsWith(id));

/** Not revoked in the vault yet: the verify step fails and is retried with backoff. */
class StillReachable extends KeyturnError {
  constructor(keys: string[]) {
    super('CONFLICT', `Keyturn can still use ${keys.join(', ')}: waiting for the customer to remove its role assignment`, { keys });
  }
}

/** The distinct Key Vault keys of the tenant's revoked versions. */
const keysOf = (tenant: Tenant) => [...new Map(tenant.versions.filter((v) => v.state === 'revoked').map((v) => [`${v.vaultUrl}/keys/${v.name}`, v])).values()];

export function revokeJob(c: RevokeContext): JobKind<Revoke, RevokeStep, RevokeResult> {
  const { log } = c.deps;
  return {
    kind: REVOKE_KIND,
    label: 'Revoke',
    idKey: 'revokeId',
    store: c.revokes,
    leaseMs: c.leaseMs,
    decide: (job, now, owner) => revokeKernel.decide(job, now, owner),
    claim: revokeKernel.claim,
    steps: { stop: (run) => stop(c, run), notify: (run) => notify(c, run), disable: (run) => disable(c, run), verify: (run) => verify(c, run), retain: (run) => retain(c, run) },
    async record({ job, token, step, now }, result) {
      return { next: completeRevokeStep(job, token, result, now, c.settings), written: () => log.info(`Revoke step ${step} done`, { revokeId: job.id, tenantId: job.tenantId }) };
    },
    async failed({ job, token, step, now }, error) {
      const next = revokeKernel.fail(job, token, now, revokeFailurePolicy(job, now, Math.random()));
      return {
        next,
        written: () =>
          log.warn(`Revoke step ${step} not done${next.status === 'failed' ? '; its window has passed' : '; will retry'}`, { revokeId: job.id, error: describeError(error) }),
      };
    },
    async cleanup(job, now) {
      return { next: revokeKernel.recordCleanup(job, true, now, 0), written: () => undefined };
    },
  };
}

async function stop(c: RevokeContext, { job, now }: StepRun<Revoke, RevokeStep>): Promise<RevokeResult> {
  const { tenants, log } = c.deps;
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = await tenants.read(job.tenantId);
    if (!stored) throw new Error(`revoke ${job.id}: tenant ${job.tenantId} is gone`);
    if (stored.doc.state === 'revoked') return { step: 'stop', revokedAt: stored.doc.revocation?.at ?? now.toISOString() };
    const next = revokeTenant(stored.doc, now, { reason: job.reason, requestedBy: job.requestedBy, revokeId: job.id });
    try {
      await tenants.replace(next, stored.etag);
      log.warn('Tenant revoked: all use stopped', { tenantId: job.tenantId, revokeId: job.id, requestedBy: job.requestedBy });
      return { step: 'stop', revokedAt: next.revocation!.at };
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  throw new Error(`revoke ${job.id}: the tenant kept changing`);
}

async function notify(c: RevokeContext, { job }: StepRun<Revoke, RevokeStep>): Promise<RevokeResult> {
  const tenant = await c.service.get(job.tenantId);
  const keys = keysOf(tenant).map((v) => `${v.vaultUrl}/keys/${v.name}`);
  const selfUnassigns = keys.length > 0 && keysOf(tenant).every((v) => c.selfUnassign?.vaultScopeOf(v.vaultUrl) !== undefined);
  await c.deps.notices?.emit({
    tenantId: job.tenantId,
    transition: 'revoked',
    version: job.id,
    data: {
      topology: tenant.topology,
      kids: tenant.versions.filter((v) => v.state === 'revoked').map((v) => v.kid),
      reason: job.reason,
      revokedAt: job.revokedAt,
      adminContacts: tenant.adminContacts,
      // BYOK: what the customer is asked to do (unless Keyturn removes its own assignment).
      ...(tenant.topology === 'byok' ? { customerAction: selfUnassigns ? null : `remove Keyturn's role assignments on ${keys.join(', ')}`, keys } : {}),
    },
  });
  return { step: 'notify' };
}

async function disable(c: RevokeContext, { job, check }: StepRun<Revoke, RevokeStep>): Promise<RevokeResult> {
  const tenant = await c.service.get(job.tenantId);
  const done: string[] = [];
  if (tenant.topology === 'service-managed') {
    for (const v of tenant.versions.filter((x) => x.state === 'revoked')) {
      await check('disable a revoked version');
      await c.deps.keys.update({ vaultUrl: v.vaultUrl, name: v.name, version: v.version }, { enabled: false }).catch((e: unknown) => {
        if (!isKeyturnError(e, 'NOT_FOUND')) throw e;
      });
      done.push(v.kid);
    }
    return { step: 'disable', disabled: done };
  }
  // BYOK: only Keyturn's own assignment exactly on the key, and only where it was given the right.
  const self = c.selfUnassign;
  for (const v of keysOf(tenant)) {
    const vaultScope = self?.vaultScopeOf(v.vaultUrl);
    if (!self || !vaultScope) continue;
    const scope = `${vaultScope}/keys/${v.name}`;
    const arm = self.roleAssignments();
    const mine = (await arm.listForScope(scope, { assignedTo: self.principalId }))
      .filter((a) => a.scope.toLowerCase() === scope.toLowerCase() && a.principalId.toLowerCase() === self.principalId.toLowerCase())
      .sort((a, b) => Number(managesAccess(a.roleDefinitionId)) - Number(managesAccess(b.roleDefinitionId)));
    for (const a of mine) {
      await check('remove Keyturn’s role assignment');
      await arm.delete(a.scope, a.name);
      done.push(a.id);
    }
    c.deps.log.warn('Revoke: Keyturn removed its own role assignments on the key', { tenantId: job.tenantId, key: `${v.vaultUrl}/keys/${v.name}`, removed: mine.length });
  }
  return { step: 'disable', disabled: done };
}

async function verify(c: RevokeContext, { job }: StepRun<Revoke, RevokeStep>): Promise<RevokeResult> {
  const tenant = await c.service.get(job.tenantId);
  if (tenant.topology === 'service-managed') return { step: 'verify' };
  const keys = c.service.keysOf(tenant);
  const reachable: string[] = [];
  for (const v of keysOf(tenant)) {
    // The newest revoked version of each key: what Keyturn last used.
    const newest = tenant.versions.filter((x) => x.vaultUrl === v.vaultUrl && x.name === v.name).at(-1)!;
    const outcome = await probeKey(keys, { vaultUrl: newest.vaultUrl, name: newest.name, version: newest.version });
    if (outcome !== 'forbidden') reachable.push(`${v.vaultUrl}/keys/${v.name}`);
  }
  if (reachable.length > 0) throw new StillReachable(reachable);
  c.deps.log.info('Revoke verified: the customer vault refuses Keyturn', { tenantId: job.tenantId, revokeId: job.id });
  return { step: 'verify' };
}

async function retain(c: RevokeContext, { job, check }: StepRun<Revoke, RevokeStep>): Promise<RevokeResult> {
  const tenant = await c.service.get(job.tenantId);
  if (tenant.topology !== 'service-managed') return { step: 'retain' };
  // Revoked keys only, by name (a key configured after the revoke has another name).
  const live = new Set(tenant.versions.filter((v) => v.state !== 'revoked').map((v) => `${v.vaultUrl}/keys/${v.name}`));
  for (const v of keysOf(tenant).filter((x) => !live.has(`${x.vaultUrl}/keys/${x.name}`))) {
    await check('delete a revoked key');
    await c.deps.keys.delete(v.vaultUrl, v.name).catch((e: unknown) => {
      if (!isKeyturnError(e, 'NOT_FOUND')) throw e;
    });
    for (const x of tenant.versions.filter((y) => y.vaultUrl === v.vaultUrl && y.name === v.name)) await c.deps.escrow?.destroy(job.tenantId, x.version); // the escrow goes with the key
    c.deps.log.warn('Revoked tenant key deleted after its retention (soft delete; purge protection keeps it recoverable)', { tenantId: job.tenantId, name: v.name });
  }
  return { step: 'retain' };
}

/** What a revoke still has to do, for `remaining`. */
export function revokeRemaining(job: Revoke, tenant: Tenant): string[] {
  if (job.steps.verify?.completedAt) return [];
  if (tenant.topology === 'service-managed') {
    const done = new Set(job.disabled ?? []);
    return tenant.versions.filter((v) => v.state === 'revoked' && !done.has(v.kid)).map((v) => `disable ${v.kid}`);
  }
  const keys = keysOf(tenant).map((v) => `${v.vaultUrl}/keys/${v.name}`);
  if (job.status === 'failed') return keys.map((k) => `not verified within the window: remove Keyturn's access to ${k}, then post revoke again`);
  return keys.map((k) => `the customer removes Keyturn's role assignment on ${k} (verified by probing until the vault answers 403)`);
}
