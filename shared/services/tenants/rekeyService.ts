/**
 * Starting a rekey: one job per (tenant, version being replaced), so a retry naming
 * `fromKid`, a second host or a redelivered KeyNearExpiry is a no-op. The request
 * answers once the new version is active; the archive of the previous one waits for
 * the changeover's end (the resume timer advances it).
 */
import { KeyturnError, ValidationError } from '../../errors';
import { type Rekey, type RekeyResult, type RekeyStep, newRekey, rekeyId } from '../../domain/tenantRekey';
import { type Tenant, versionOf } from '../../domain/tenantKeys';
import type { Clock, Logger } from '../../ports';
import type { JobKind, StepRunner } from '../jobs/runner';
import type { RekeyStore } from './ports';
import type { TenantService } from './tenantService';

export interface RekeyRequest {
  reason: string;
  /** The version to replace; a rekey naming one that is no longer in use is a no-op. */
  fromKid?: string;
  compromised?: boolean;
  /** BYOK's new key; a service-managed rekey makes its own. */
  keyUrl?: string;
  requestedBy: string;
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
    },
  ) {}

  async rekey(tenantId: string, request: RekeyRequest): Promise<{ tenant: Tenant; rekeyId?: string; started: boolean }> {
    const { tenants, rekeys, runner, kind, clock, log } = this.deps;
    const tenant = await tenants.get(tenantId);
    if (tenant.topology === 'byok') throw new ValidationError('keyUrl', 'keyUrl: BYOK rekeys are not available in this version yet');
    if (request.keyUrl !== undefined) throw new ValidationError('keyUrl', 'keyUrl: a service-managed tenant\'s rekey makes its own key');
    const fromKid = request.fromKid ?? tenant.activeKid;
    if (request.fromKid !== undefined && !versionOf(tenant, request.fromKid)) {
      throw new ValidationError('fromKid', "fromKid: not one of this tenant's key versions");
    }
    const id = fromKid ? rekeyId(tenantId, fromKid) : undefined;
    // Already replaced (a retry, a redelivered event): nothing to do, but a started job is still driven.
    if (!fromKid || fromKid !== tenant.activeKid) {
      if (id && (await rekeys.read(id))) await runner.advance(kind, id);
      return { tenant: await tenants.get(tenantId), ...(id ? { rekeyId: id } : {}), started: false };
    }
    const job = newRekey({ tenantId, fromKid, reason: request.reason, compromised: request.compromised ?? false, requestedBy: request.requestedBy }, await clock.now());
    const started = await rekeys.createOnly(job);
    if (started) log.info('Rekey started', { tenantId, rekeyId: job.id, fromKid, compromised: job.compromised });
    const after = await runner.advance(kind, job.id);
    if (after.status === 'failed') throw new KeyturnError('DEPENDENCY_FAILED', 'The rekey failed after its retries; a new request starts it again', { rekeyId: job.id });
    return { tenant: await tenants.get(tenantId), rekeyId: job.id, started };
  }
}
