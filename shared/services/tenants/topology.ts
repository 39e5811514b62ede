/**
 * The topology switch: a rekey to a key of the other kind (`domain/tenantTopology.ts`).
 * It runs as the tenant's rekey of the version in use, so a retried request, a second
 * host or a crash drives the same job; once switched, the same request is a no-op.
 */
import { type TopologyRequest, switchStarts } from '../../domain/tenantTopology';
import type { Tenant } from '../../domain/tenantKeys';
import type { RekeyService } from './rekeyService';
import type { TenantService } from './tenantService';

export async function switchTopology(
  deps: { tenants: TenantService; rekeys: RekeyService },
  tenantId: string,
  request: Pick<TopologyRequest, 'to' | 'keyUrl' | 'reason'>,
  requestedBy: string,
): Promise<Tenant> {
  const tenant = await deps.tenants.get(tenantId);
  if (!switchStarts(tenant, request)) return tenant;
  const { tenant: after } = await deps.rekeys.rekey(tenantId, {
    reason: request.reason,
    ...(request.keyUrl !== undefined ? { keyUrl: request.keyUrl } : {}),
    toTopology: request.to,
    requestedBy,
  });
  return after;
}
