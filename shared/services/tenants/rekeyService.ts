/**
 * Starting a rekey: one job per (tenant, version being replaced), so a retry naming
 * `fromKid`, a second host or a redelivered KeyNearExpiry is a no-op. The request
 * answers once the new version is active; the archive of the previous one waits for
 * the changeover's end (the resume timer advances it).
 *
 * BYOK: only the customer rekeys, by naming a key (`keyUrl`: another key, or the same
 * key whose current version is new), which passes the onboarding checks. A compromised
 * BYOK key without a new one makes the tenant `rekey-required`. After a revoke, a rekey
 * configures a new key (service-managed: a fresh generated one; BYOK: `keyUrl`).
 */
import { ConcurrencyConflict, KeyturnError, ValidationError } from '../../errors';
import { requireRekey } from '../../domain/tenantByok';
import { type Rekey, type RekeyResult, type RekeyStep, newRekey, rekeyAfterRevokeId, rekeyId, restartRekey } from '../../domain/tenantRekey';
import { type Tenant, type Topology, markCompromised, versionOf } from '../../domain/tenantKeys';
import type { Clock, Logger } from '../../ports';
import type { JobKind, StepRunner } from '../jobs/runner';
import type { RekeyStore, TenantStore } from './ports';
import type { TenantService } from './tenantService';

export interface RekeyRequest {
  reason: string;
  /** The version to replace; a rekey naming one that is no longer in use is a no-op. */
  fromKid?: string;
  compromised?: boolean;
  /** BYOK's new key; a service-managed rekey makes its own. */
  keyUrl?: string;
  requestedBy: string;
  /** A topology switch (`topology.ts`): a rekey to a key of the other kind. */
  toTopology?: Topology;
}

export interface RekeyOutcome {
  tenant: Tenant;
  rekeyId?: string;
  started: boolean;
}

export class RekeyService {
  constructor(
    private readonly deps: {
      tenants: TenantService;
      rekeys: RekeyStore;
      runner: StepRunner;
      kind: JobKind<Rekey, RekeyStep, RekeyResult>;
      clock: Clock;
      log: Logger;
      /** For the changes made without a job (compromise flags, rekey-required); absent in older unit tests. */
      store?: TenantStore;
    },
  ) {}

  async rekey(tenantId: string, request: RekeyRequest): Promise<RekeyOutcome> {
    const { tenants, clock } = this.deps;
    const tenant = await tenants.get(tenantId);
    const switching = request.toTopology !== undefined && request.toTopology !== tenant.topology;
    if (tenant.topology === 'service-managed' && request.keyUrl !== undefined && !switching) {
      throw new ValidationError('keyUrl', "keyUrl: a service-managed tenant's rekey makes its own key");
    }
    if (request.fromKid !== undefined && !versionOf(tenant, request.fromKid)) {
      throw new ValidationError('fromKid', "fromKid: not one of this tenant's key versions");
    }
    if (tenant.state === 'revoked') return this.afterRevoke(tenant, request);
    const fromKid = request.fromKid ?? tenant.activeKid;
    // A version in its changeover (or archived) named as compromised leaves /keys at once.
    if (request.compromised && fromKid && fromKid !== tenant.activeKid) {
      return { tenant: await this.change(tenantId, async (t) => markCompromised(t, fromKid, await clock.now())), rekeyId: rekeyId(tenantId, fromKid), started: false };
    }
    if (tenant.topology === 'byok' && request.keyUrl === undefined && !switching) {
      if (!request.compromised) throw new ValidationError('keyUrl', "keyUrl: a BYOK tenant is rekeyed by naming the customer's new key");
      // Compromised, no new key yet: no new content until the customer names one.
      return { tenant: await this.change(tenantId, async (t) => requireRekey(t, await clock.now())), started: false };
    }
    const id = fromKid ? rekeyId(tenantId, fromKid) : undefined;
    // Already replaced (a retry, a redelivered event): nothing to do, but a started job is still driven.
    if (!fromKid || fromKid !== tenant.activeKid) {
      if (id && (await this.deps.rekeys.read(id))) await this.deps.runner.advance(this.deps.kind, id);
      return { tenant: await tenants.get(tenantId), ...(id ? { rekeyId: id } : {}), started: false };
    }
    await this.settleEnded(id!); // a failed rekey asked for again: its clean-up first (its claim released)
    const byokKey = request.keyUrl !== undefined ? await this.pin(tenant, request.keyUrl, id!) : undefined;
    if (byokKey && `${byokKey.vaultUrl}/keys/${byokKey.name}/${byokKey.version}` === tenant.activeKid) {
      throw new ValidationError('keyUrl', 'keyUrl: names the key version in use; create a new version or name another key');
    }
    const compromised = request.compromised ?? tenant.state === 'rekey-required';
    const toTopology = switching ? { toTopology: request.toTopology } : {};
    return this.start(newRekey({ tenantId, fromKid, reason: request.reason, compromised, requestedBy: request.requestedBy, ...(byokKey ? { byokKey } : {}), ...toTopology }, await clock.now()));
  }

  /** A new key for a revoked tenant: one rekey per revoke (its id derives from the revocation). */
  private async afterRevoke(tenant: Tenant, request: RekeyRequest): Promise<RekeyOutcome> {
    if (tenant.topology === 'byok' && request.keyUrl === undefined) throw new ValidationError('keyUrl', 'keyUrl: a revoked BYOK tenant needs a new key from the customer');
    const id = rekeyAfterRevokeId(tenant.tenantId, tenant.revocation?.at ?? tenant.updatedAt);
    const found = await this.deps.rekeys.read(id);
    if (found && found.doc.status !== 'failed') {
      await this.deps.runner.advance(this.deps.kind, id);
      return { tenant: await this.deps.tenants.get(tenant.tenantId), rekeyId: id, started: false };
    }
    await this.settleEnded(id);
    const byokKey = request.keyUrl !== undefined ? await this.pin(tenant, request.keyUrl, id) : undefined;
    const job = newRekey(
      { tenantId: tenant.tenantId, fromKid: `revoked:${tenant.revocation?.at ?? tenant.updatedAt}`, reason: request.reason, compromised: false, requestedBy: request.requestedBy, afterRevoke: true, ...(byokKey ? { byokKey } : {}) },
      await this.deps.clock.now(),
    );
    return this.start(job);
  }

  /**
   * The onboarding checks of the customer's (new) key; its current version is what the rekey
   * pins. The claim is the rekey's (`by` its id): a retry of the same rekey finds it its own,
   * and only this rekey's failure releases it.
   */
  private async pin(tenant: Tenant, keyUrl: string, rekeyId: string): Promise<NonNullable<Rekey['byokKey']>> {
    const { key, ref } = await this.deps.tenants.onboard(tenant.tenantId, keyUrl, tenant.customerTenantId, await this.deps.clock.now(), rekeyId);
    return { ...ref, version: key.properties.version };
  }

  /** A failed rekey whose clean-up is pending is cleaned up now (before the retry claims again). */
  private async settleEnded(id: string): Promise<void> {
    const found = await this.deps.rekeys.read(id);
    if (found?.doc.status !== 'failed' || found.doc.cleanup?.state !== 'pending') return;
    const after = await this.deps.runner.advance(this.deps.kind, id);
    if (after.cleanup?.state === 'pending') throw new KeyturnError('DEPENDENCY_FAILED', 'The failed rekey is still being cleaned up; retry later', { rekeyId: id });
  }

  /** Creates the job, or starts a failed one again (same id, the next attempt); false when one is running or done. */
  private async open(job: Rekey): Promise<boolean> {
    const { rekeys, clock } = this.deps;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await rekeys.createOnly(job)) return true;
      const stored = await rekeys.read(job.id);
      if (!stored) continue;
      if (stored.doc.status !== 'failed') return false;
      try {
        await rekeys.replace(restartRekey(stored.doc, job, await clock.now()), stored.etag);
        return true;
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      }
    }
    return false;
  }

  private async start(job: Rekey): Promise<RekeyOutcome> {
    const { runner, kind, log, tenants } = this.deps;
    const started = await this.open(job);
    if (started) log.info('Rekey started', { tenantId: job.tenantId, rekeyId: job.id, fromKid: job.fromKid, compromised: job.compromised, byok: Boolean(job.byokKey) });
    const after = await runner.advance(kind, job.id);
    if (after.status === 'failed') throw new KeyturnError('DEPENDENCY_FAILED', 'The rekey failed after its retries; a new request starts it again', { rekeyId: job.id });
    if (after.status === 'superseded') throw new KeyturnError('TENANT_REVOKED', `Tenant '${job.tenantId}' was revoked while the rekey ran`, { tenantId: job.tenantId });
    return { tenant: await tenants.get(job.tenantId), rekeyId: job.id, started };
  }

  /** An ETag-guarded change of the tenant document (re-read and re-decided on a lost race). */
  private async change(tenantId: string, apply: (t: Tenant) => Promise<Tenant>): Promise<Tenant> {
    const store = this.deps.store;
    if (!store) throw new Error('RekeyService: no tenant store');
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await store.read(tenantId);
      if (!stored) return this.deps.tenants.get(tenantId);
      const next = await apply(stored.doc);
      if (next === stored.doc) return next;
      try {
        return (await store.replace(next, stored.etag)).doc;
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      }
    }
    throw new ConcurrencyConflict('changed', tenantId);
  }
}
