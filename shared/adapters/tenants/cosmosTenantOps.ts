/** Backup records, restore jobs and export jobs in Cosmos DB (ETag-guarded, create-only by id; the tenant is the partition). */
import { ConcurrencyConflict } from '../../errors';
import { type TenantBackup, type TenantRestore, tenantOfJobId } from '../../domain/tenantBackups';
import type { TenantExport } from '../../domain/tenantExports';
import type { BackupStore, ExportStore, RestoreStore } from '../../services/tenants/opsPorts';
import { type ContainerRef, DocumentStore } from '../cosmos';

const DUE = 'SELECT * FROM c WHERE c.dueAt <= @now ORDER BY c.dueAt';

export function cosmosBackupStore(container: ContainerRef, ready: () => Promise<void>): BackupStore {
  const docs = new DocumentStore<TenantBackup>(container, (b) => b.tenantId);
  return {
    async create(backup) {
      await ready();
      if (!(await docs.createOnly(backup)).created) throw new ConcurrencyConflict('exists', backup.id);
    },
    async read(tenantId, backupId) {
      await ready();
      return (await docs.read(backupId, tenantId))?.doc;
    },
    async list(tenantId, limit) {
      await ready();
      const page = await docs.queryPage('SELECT * FROM c WHERE c.tenantId = @t ORDER BY c.createdAt DESC', [{ name: '@t', value: tenantId }], { maxItems: limit });
      return page.items.map((i) => i.doc);
    },
  };
}

/** A job store whose ids carry the tenant (`{prefix}-{tenantId}-{random}`). */
function jobDocs<J extends { id: string; tenantId: string; dueAt?: string }>(prefix: string, container: ContainerRef, ready: () => Promise<void>) {
  const docs = new DocumentStore<J>(container, (j) => j.tenantId);
  return {
    docs,
    async read(id: string) {
      await ready();
      return docs.read(id, tenantOfJobId(prefix, id));
    },
    async replace(job: J, etag: string) {
      await ready();
      return docs.replace(job, etag);
    },
    async createOnly(job: J) {
      await ready();
      return (await docs.createOnly(job)).created;
    },
    async due(now: Date, limit: number) {
      await ready();
      const page = await docs.queryPage(DUE, [{ name: '@now', value: now.toISOString() }], { maxItems: limit });
      return page.items.map((i) => i.doc);
    },
  };
}

export function cosmosRestoreStore(container: ContainerRef, ready: () => Promise<void>): RestoreStore {
  const { docs, ...store } = jobDocs<TenantRestore>('restore', container, ready);
  return {
    ...store,
    async running(tenantId) {
      await ready();
      const page = await docs.queryPage("SELECT * FROM c WHERE c.tenantId = @t AND c.status = 'active'", [{ name: '@t', value: tenantId }], { maxItems: 10 });
      return page.items.map((i) => i.doc);
    },
  };
}

export function cosmosExportStore(container: ContainerRef, ready: () => Promise<void>): ExportStore {
  const { docs: _docs, ...store } = jobDocs<TenantExport>('export', container, ready);
  void _docs;
  return store;
}
