/**
 * The topology switch (tenant keys part 2): a rekey to a key of the other kind. To
 * BYOK, the customer's `keyUrl` passes the onboarding rules; to service-managed,
 * Keyturn generates a fresh key (a new name in its own vault, with an escrow copy).
 * The old key stays archived where it is: a former BYOK key keeps opening old content
 * for as long as the customer leaves Keyturn its unwrap access.
 */
import { z } from 'zod';
import { lazySchema } from './lazySchema';
import { KeyturnError, ValidationError } from '../errors';
import { TOPOLOGIES, type Tenant, type Topology } from './tenantKeys';

export const topologySchema = lazySchema(() => z.strictObject({
  to: z.enum(TOPOLOGIES),
  /** To BYOK: the customer's key (no version). */
  keyUrl: z.string().url().max(2048).optional(),
  reason: z.string().trim().min(1).max(500),
  requestedBy: z.string().optional(),
}));

export type TopologyRequest = z.infer<typeof topologySchema>;

/** Whether the switch is to start; `false` when the tenant has that topology already (a retried switch). */
export function switchStarts(tenant: Tenant, request: Pick<TopologyRequest, 'to' | 'keyUrl'>): boolean {
  if (request.to === 'byok' && request.keyUrl === undefined) throw new ValidationError('keyUrl', "keyUrl: a switch to BYOK names the customer's key");
  if (request.to === 'service-managed' && request.keyUrl !== undefined) throw new ValidationError('keyUrl', 'keyUrl: a switch to service-managed makes its own key');
  if (tenant.state === 'revoked') throw new KeyturnError('TENANT_REVOKED', `Tenant '${tenant.tenantId}' is revoked`, { tenantId: tenant.tenantId });
  return tenant.topology !== request.to;
}

/** The tenant after the rekey's activation, with the topology the switch asked for. */
export const withTopology = (tenant: Tenant, to: Topology | undefined): Tenant => (to === undefined || tenant.topology === to ? tenant : { ...tenant, topology: to });
