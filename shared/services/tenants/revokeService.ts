/**
 * Revoke: all use stops at once, then the revoke job (`revokeJob.ts`) finishes the rest.
 * Idempotent: posting it again drives the same job and answers `{complete, remaining}`,
 * so a caller polls it until `complete` (BYOK: once the customer vault answers 403).
 */
import { ValidationError, notFound } from '../../errors';
import { type Revoke, type RevokeResult, type RevokeStep, isComplete, newRevoke, pokeVerify, revokeId } from '../../domain/tenantRevoke';
import type { Tenant } from '../../domain/tenantKeys';
import type { Clock, Logger } from '../../ports';
import type { JobKind, StepRunner } from '../jobs/runner';
import type { RevokeStore, TenantStore } from './ports';
import { revokeRemaining } from './revokeJob';

export interface RevokeRequest {
  confirm: string;
  reason: string;
  requestedBy: string;
}

export interface RevokeDeps {
  tenants: TenantStore;
  revokes: RevokeStore;
  runner: StepRunner;
  kind: JobKind<Revoke, RevokeStep, RevokeResult>;
  clock: Clock;
  log: Logger;
  verifyMs: number;
}

export async function revokeTenantKeys(deps: RevokeDeps, tenantId: string, request: RevokeRequest): Promise<{ tenant: Tenant; complete: boolean; remaining: string[] }> {
  const { tenants, revokes, runner, kind, clock } = deps;
  if (request.confirm !== tenantId) throw new ValidationError('confirm', 'confirm: must equal the tenant id');
  const stored = await tenants.read(tenantId);
  if (!stored) throw notFound(`Tenant '${tenantId}'`, { tenantId });
  const t = stored.doc;
  // One job per revoke round: derived from the version in use; a revoked tenant names its job.
  const round = t.state === 'revoked' ? `legacy:${t.revocation?.at}` : `active:${t.activeKid ?? ''}`;
  const id = (t.state === 'revoked' && t.revocation?.revokeId) || revokeId(tenantId, round);
  const found = await revokes.read(id);
  if (!found) {
    await revokes.createOnly(newRevoke({ tenantId, topology: t.topology, round, reason: request.reason, requestedBy: request.requestedBy }, await clock.now()));
  } else {
    const poked = pokeVerify(found.doc, await clock.now(), deps.verifyMs);
    if (poked) await revokes.replace(poked, found.etag).catch(() => undefined); // a lost race: another caller moved it
  }
  const job = await runner.advance(kind, id);
  const tenant = (await tenants.read(tenantId))!.doc;
  return { tenant, complete: isComplete(job), remaining: revokeRemaining(job, tenant) };
}
