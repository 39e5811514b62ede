/** Backup records, restore jobs and export jobs in Cosmos DB (ETag-guarded, create-only by id; the tenant is the partition). */
import { ConcurrencyConflict } from '../../errors';
import { type TenantBackup, type TenantRestore, tenantOfJobId } from '../../domain/tenantBackups';
import type { TenantExport } from '../../domain/tenantExports';
import type { BackupStore, ExportStore, RestoreStore } from '../../services/tenants/opsPorts';
import { type ContainerRef, DocumentStore, type Ready } from '../cosmos';
import { cosmosJobStore } from '../cosmosJobStore';

export function cosmosBackupStore(container: ContainerRef, ready: Ready): BackupStore {
  const docs = new DocumentStore<TenantBackup>(container, (b) => b.tenantId, ready);
  return {
    async create(backup) {
      if (!(await docs.createOnly(backup)).created) throw new ConcurrencyConflict('exists', backup.id);
    },
    read: async (tenantId, backupId) => (await docs.read(backupId, tenantId))?.doc,
    async list(tenantId, limit) {
      const page = await docs.queryPage('SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.createdAt DESC', [{ name: '@t', value: tenantId }], { maxItems: limit });
      return page.items.map((i) => i.doc);
    },
  };
}

/** A job store whose ids carry the tenant (`{prefix}-{tenantId}-{random}`). */
const tenantJobs = <J extends { id: string; tenantId: string }>(prefix: string, container: ContainerRef, ready: Ready) =>
  cosmosJobStore<J>(container, { partitionOf: (j) => j.tenantId, partitionOfId: (id) => tenantOfJobId(prefix, id), ready });

export function cosmosRestoreStore(container: ContainerRef, ready: Ready): RestoreStore {
  const docs = new DocumentStore<TenantRestore>(container, (j) => j.tenantId, ready);
  return {
    ...tenantJobs<TenantRestore>('restore', container, ready),
    async running(tenantId) {
      const page = await docs.queryPage("SELECT * FROM c WHERE c.tenantId = @t AND c.status = 'active'", [{ name: '@t', value: tenantId }], { maxItems: 10 });
      return page.items.map((i) => i.doc);
    },
  };
}

export const cosmosExportStore = (container: ContainerRef, ready: Ready): ExportStore => tenantJobs<TenantExport>('export', container, ready);
