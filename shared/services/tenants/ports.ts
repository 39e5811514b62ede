/**
 * Ports of the tenant-key life cycle (Cosmos DB adapters in `shared/adapters/tenants`;
 * unit tests hand in plain objects).
 */
import type { Rekey } from '../../domain/tenantRekey';
import type { KeyPolicy } from '../../domain/tenantKeyPolicy';
import type { Tenant } from '../../domain/tenantKeys';
import type { Versioned } from '../../ports';
import type { JobStore } from '../jobs/runner';

export interface TenantStore {
  read(tenantId: string): Promise<Versioned<Tenant> | undefined>;
  /** Creates the tenant only if its id is free: two concurrent creates make one. */
  createOnly(tenant: Tenant): Promise<{ created: true; value: Versioned<Tenant> } | { created: false }>;
  /** ETag-guarded; throws ConcurrencyConflict('changed') when another writer came first. */
  replace(tenant: Tenant, etag: string): Promise<Versioned<Tenant>>;
}

/** The stored key policy; the default until one is stored. */
export interface KeyPolicyStore {
  current(): Promise<KeyPolicy>;
}

/** Rekey jobs (step kernel): create-only by their deterministic id. */
export interface RekeyStore extends JobStore<Rekey> {
  createOnly(job: Rekey): Promise<boolean>;
}
