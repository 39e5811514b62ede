/**
 * Ports of the tenant-key life cycle (Cosmos DB adapters in `shared/adapters/tenants`;
 * unit tests hand in plain objects).
 */
import type { ByokKeyRef } from '../../domain/tenantByok';
import type { Rekey } from '../../domain/tenantRekey';
import type { TenantCreate } from '../../domain/tenantCreate';
import type { Revoke } from '../../domain/tenantRevoke';
import type { KeyPolicy } from '../../domain/tenantKeyPolicy';
import type { TenantNotice } from '../../domain/tenantNotice';
import type { Tenant } from '../../domain/tenantKeys';
import type { Versioned } from '../../ports';
import type { JobStore } from '../jobs/runner';

export interface TenantStore {
  read(tenantId: string): Promise<Versioned<Tenant> | undefined>;
  /** Creates the tenant only if its id is free: two concurrent creates make one. */
  createOnly(tenant: Tenant): Promise<{ created: true; value: Versioned<Tenant> } | { created: false }>;
  /** ETag-guarded; throws ConcurrencyConflict('changed') when another writer came first. */
  replace(tenant: Tenant, etag: string): Promise<Versioned<Tenant>>;
  /** BYOK tenants that are not revoked, a page at a time (the access probes). */
  byokPage?(page: { maxItems: number; continuation?: string }): Promise<{ items: Tenant[]; continuation?: string }>;
  /** Every tenant that is not revoked, a page at a time (the rekey-after-days policy). */
  livePage?(page: { maxItems: number; continuation?: string }): Promise<{ items: Tenant[]; continuation?: string }>;
}

/** The stored key policy; the default until one is stored. */
export interface KeyPolicyStore {
  current(): Promise<KeyPolicy>;
  /**
   * A new policy version (ETag-guarded): never lower than the current minimum (400 naming
   * `rsaMinBits`); forbidden algorithms only grow. The same policy again is a no-op.
   */
  raise?(to: { rsaMinBits: number; forbiddenAlgorithms: string[] }): Promise<KeyPolicy>;
}

/** Rekey jobs (step kernel): create-only by their deterministic id. */
export interface RekeyStore extends JobStore<Rekey> {
  createOnly(job: Rekey): Promise<boolean>;
}

/** Tenant creations (step kernel): one per tenant, create-only by its deterministic id. */
export interface CreateStore extends JobStore<TenantCreate> {
  createOnly(job: TenantCreate): Promise<boolean>;
}

/** Revoke jobs (step kernel): create-only by their deterministic id. */
export interface RevokeStore extends JobStore<Revoke> {
  createOnly(job: Revoke): Promise<boolean>;
}

/** Notices (one-step jobs): create-only by their deterministic id. */
export interface NoticeStore extends JobStore<TenantNotice> {
  createOnly(job: TenantNotice): Promise<boolean>;
}

/** One create-only claim per BYOK key: no two tenants hold the same key. */
export interface KeyClaimStore {
  /**
   * True when `tenantId` holds the key now (newly, again after a release, or already).
   * `by` names the job taking it (a create or a rekey): recorded when the claim is taken,
   * so only that job's failure releases it.
   */
  claim(key: ByokKeyRef, tenantId: string, now: Date, by: string): Promise<boolean>;
  /** The tenant holding the key, if any (BYOK key events name a key, not a tenant). */
  holder(key: ByokKeyRef): Promise<string | undefined>;
  /**
   * Frees the key if `tenantId` holds it through a claim job `by` took (a failed onboarding,
   * create or rekey); never a claim taken by another job (e.g. the one of the key in use).
   * ETag-guarded and idempotent.
   */
  release(key: ByokKeyRef, tenantId: string, now: Date, by: string): Promise<void>;
}
