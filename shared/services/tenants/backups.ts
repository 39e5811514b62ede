/**
 * Tenant-key backups: Key Vault's backup of the tenant's key (every version) into Blob
 * storage (`tenant-backups/{tenantId}/{timestamp}`), its SHA-256 in the blob's metadata
 * and in a record. BYOK: the customer owns backup; Keyturn takes one only where the
 * customer granted it the right (Key Vault answers 403 otherwise → BACKUP_NOT_PERMITTED,
 * naming the command the customer runs).
 */
import { randomBytes } from 'node:crypto';
import { KeyturnError, isKeyturnError, notFound } from '../../errors';
import { BACKUP_CONTAINER, type TenantBackup, backupBlobName, backupNotPermitted, blobTimestamp, sha256Hex } from '../../domain/tenantBackups';
import type { Tenant, TenantKeyVersion } from '../../domain/tenantKeys';
import type { Clock, Logger, Notifier, VaultKeys } from '../../ports';
import type { BackupStore, BlobObjects } from './opsPorts';
import { publishTenantEvent } from './opsNotify';
import type { TenantStore } from './ports';

export interface BackupDeps {
  tenants: TenantStore;
  keys: VaultKeys;
  blobs: BlobObjects;
  backups: BackupStore;
  notifier: Notifier;
  clock: Clock;
  log: Logger;
  /** A known customer vault's Key Vault name by its URL (KEYTURN_CUSTOMER_VAULTS), for the command BYOK customers run. */
  vaultNameOf?: (vaultUrl: string) => string | undefined;
}

/** The key a backup covers: the one of the version in use (else the newest version's). */
export function backedUpKey(tenant: Tenant): TenantKeyVersion | undefined {
  return tenant.versions.find((v) => v.kid === tenant.activeKid) ?? tenant.versions.at(-1);
}

export async function readTenant(tenants: TenantStore, tenantId: string): Promise<Tenant> {
  const stored = await tenants.read(tenantId);
  if (!stored) throw notFound(`Tenant '${tenantId}'`, { tenantId });
  return stored.doc;
}

export class BackupService {
  constructor(private readonly deps: BackupDeps) {}

  async create(tenantId: string, requestedBy: string): Promise<TenantBackup> {
    const { keys, blobs, backups, clock, log } = this.deps;
    const tenant = await readTenant(this.deps.tenants, tenantId);
    const key = backedUpKey(tenant);
    if (!key) throw notFound(`A key of tenant '${tenantId}'`, { tenantId });
    let bytes: Uint8Array;
    try {
      bytes = await keys.backup(key.vaultUrl, key.name);
    } catch (e) {
      if (tenant.topology === 'byok' && isKeyturnError(e, 'ACCESS_DENIED')) throw backupNotPermitted(tenantId, key.vaultUrl, key.name, this.deps.vaultNameOf?.(key.vaultUrl));
      throw e;
    }
    const now = await clock.now();
    const sha256 = sha256Hex(bytes);
    const blob = backupBlobName(tenantId, now);
    if (!(await blobs.putOnly(BACKUP_CONTAINER, blob, bytes, { sha256, tenantid: tenantId, keyname: key.name }))) {
      throw new KeyturnError('DEPENDENCY_FAILED', 'A backup of that instant exists already; retry', { tenantId });
    }
    const backup: TenantBackup = {
      id: `backup-${blobTimestamp(now)}-${randomBytes(4).toString('hex')}`,
      tenantId,
      blob,
      sha256,
      createdAt: now.toISOString(),
      vaultUrl: key.vaultUrl,
      keyName: key.name,
      versions: tenant.versions.filter((v) => v.vaultUrl === key.vaultUrl && v.name === key.name).map((v) => v.kid),
      requestedBy,
    };
    await backups.create(backup);
    log.info('Tenant key backed up', { tenantId, backupId: backup.id, keyName: key.name, versions: backup.versions.length });
    await publishTenantEvent(this.deps.notifier, tenant, 'backedUp', backup.id, { backupId: backup.id, sha256, versions: backup.versions, createdAt: backup.createdAt });
    return backup;
  }

  async list(tenantId: string): Promise<TenantBackup[]> {
    await readTenant(this.deps.tenants, tenantId);
    return this.deps.backups.list(tenantId, 100);
  }
}
