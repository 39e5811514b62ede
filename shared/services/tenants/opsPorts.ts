/**
 * Ports of the tenant-key operations of part 2 (backup, restore, escrow, export):
 * Blob storage and their Cosmos DB records. Adapters in `shared/adapters/tenants`;
 * unit tests hand in plain objects.
 */
import type { KeyObject } from 'node:crypto';
import type { TenantBackup, TenantRestore } from '../../domain/tenantBackups';
import type { TenantExport } from '../../domain/tenantExports';
import type { VaultKey } from '../../ports';
import type { JobStore } from '../jobs/runner';

export interface StoredBlob {
  bytes: Uint8Array;
  metadata: Record<string, string>;
}

/** Blobs by container and name. */
export interface BlobObjects {
  /** Create-only: false (and nothing written) when the blob exists already. */
  putOnly(container: string, name: string, bytes: Uint8Array, metadata?: Record<string, string>): Promise<boolean>;
  /** Undefined when absent. */
  get(container: string, name: string): Promise<StoredBlob | undefined>;
  /** Resolves also when there was none. */
  delete(container: string, name: string): Promise<void>;
}

export interface BackupStore {
  create(backup: TenantBackup): Promise<void>;
  read(tenantId: string, backupId: string): Promise<TenantBackup | undefined>;
  /** Newest first. */
  list(tenantId: string, limit: number): Promise<TenantBackup[]>;
}

export interface RestoreStore extends JobStore<TenantRestore> {
  createOnly(job: TenantRestore): Promise<boolean>;
  /** The tenant's restores that are still running. */
  running(tenantId: string): Promise<TenantRestore[]>;
}

export interface ExportStore extends JobStore<TenantExport> {
  createOnly(job: TenantExport): Promise<boolean>;
}

/**
 * The escrow of generated service-managed tenant keys (for export only). `keep` runs
 * between the import and the moment the version is recorded in the tenant.
 */
export interface TenantKeyEscrow {
  keep(tenantId: string, key: VaultKey, privateKey: KeyObject): Promise<void>;
  /** Destroys a version's copy (when Keyturn deletes the version's key). */
  destroy(tenantId: string, version: string): Promise<void>;
}

