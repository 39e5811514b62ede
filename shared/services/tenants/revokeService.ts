/**
 * Revoke (service-managed): all use stops at once (the tenant document is `revoked`
 * before anything else), then every version is disabled in Key Vault. Idempotent:
 * posting it again finishes what is left and answers `{complete, remaining}`, so a
 * caller polls it until `complete`. (Deletion after the retention period is not built
 * yet; Key Vault's soft delete and purge protection would take it from there.)
 */
import { ConcurrencyConflict, ValidationError, describeError, notFound } from '../../errors';
import { type Tenant, recordDisabled, revocationRemaining, revokeTenant } from '../../domain/tenantKeys';
import type { TenantDeps } from './tenantService';

export interface RevokeRequest {
  confirm: string;
  reason: string;
  requestedBy: string;
}

export async function revokeTenantKeys(deps: TenantDeps, tenantId: string, request: RevokeRequest): Promise<{ tenant: Tenant; complete: boolean; remaining: string[] }> {
  const { tenants, keys, clock, log } = deps;
  if (request.confirm !== tenantId) throw new ValidationError('confirm', 'confirm: must equal the tenant id');
  const write = async (change: (t: Tenant, now: Date) => Tenant): Promise<Tenant> => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await tenants.read(tenantId);
      if (!stored) throw notFound(`Tenant '${tenantId}'`, { tenantId });
      const next = change(stored.doc, await clock.now());
      if (next === stored.doc) return next;
      try {
        return (await tenants.replace(next, stored.etag)).doc;
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      }
    }
    throw new ConcurrencyConflict('changed', tenantId);
  };
  const stored = await tenants.read(tenantId);
  if (!stored) throw notFound(`Tenant '${tenantId}'`, { tenantId });
  if (stored.doc.topology === 'byok') throw new ValidationError('tenantId', 'tenantId: BYOK revoke is not available in this version yet');
  let tenant = stored.doc.state === 'revoked' ? stored.doc : await write((t, now) => revokeTenant(t, now, request));
  if (stored.doc.state !== 'revoked') log.warn('Tenant revoked: all use stopped', { tenantId, requestedBy: request.requestedBy });

  const done = new Set(tenant.revocation?.disabledKids ?? []);
  const disabled: string[] = [];
  for (const v of tenant.versions.filter((x) => !done.has(x.kid))) {
    try {
      await keys.update({ vaultUrl: v.vaultUrl, name: v.name, version: v.version }, { enabled: false });
      disabled.push(v.kid);
    } catch (e) {
      log.warn('Revoke: a version could not be disabled yet; posting revoke again retries', { tenantId, kid: v.kid, error: describeError(e) });
    }
  }
  if (disabled.length > 0) tenant = await write((t, now) => recordDisabled(t, disabled, now));
  const remaining = revocationRemaining(tenant);
  return { tenant, complete: remaining.length === 0, remaining };
}
