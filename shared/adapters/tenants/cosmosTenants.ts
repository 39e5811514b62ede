/** Tenants and the key policy in Cosmos DB (ETag-guarded documents, create-only where a race is possible). */
import { DEFAULT_KEY_POLICY, type KeyPolicy, keyPolicySchema } from '../../domain/tenantKeyPolicy';
import type { Tenant } from '../../domain/tenantKeys';
import type { Rekey } from '../../domain/tenantRekey';
import type { KeyPolicyStore, RekeyStore, TenantStore } from '../../services/tenants/ports';
import { type ContainerRef, DocumentStore } from '../cosmos';

export function cosmosTenantStore(container: ContainerRef, ready: () => Promise<void>): TenantStore {
  const docs = new DocumentStore<Tenant>(container, (t) => t.tenantId);
  return {
    async read(tenantId) {
      await ready();
      return docs.read(tenantId, tenantId);
    },
    async createOnly(tenant) {
      await ready();
      return docs.createOnly(tenant);
    },
    async replace(tenant, etag) {
      await ready();
      return docs.replace(tenant, etag);
    },
  };
}

interface PolicyDoc extends KeyPolicy {
  id: string;
  kind: 'keys';
}

/** One document `keys` in partition `keys`; the default is stored on first read so its version is real. */
export function cosmosKeyPolicyStore(container: ContainerRef, ready: () => Promise<void>): KeyPolicyStore {
  const docs = new DocumentStore<PolicyDoc>(container, (d) => d.kind);
  return {
    async current() {
      await ready();
      const stored = await docs.read('keys', 'keys');
      if (!stored) {
        await docs.createOnly({ id: 'keys', kind: 'keys', ...DEFAULT_KEY_POLICY });
        const again = await docs.read('keys', 'keys');
        if (!again) return DEFAULT_KEY_POLICY;
        return parsePolicy(again.doc);
      }
      return parsePolicy(stored.doc);
    },
  };
}

function parsePolicy(doc: PolicyDoc): KeyPolicy {
  const { version, rsaMinBits, forbiddenAlgorithms } = doc;
  return keyPolicySchema.parse({ version, rsaMinBits, forbiddenAlgorithms });
}

/** Rekey jobs in `tenantJobs`; the due query is the kernel's due rule (`dueAt <= now`, in due order). */
export function cosmosRekeyStore(container: ContainerRef, ready: () => Promise<void>): RekeyStore {
  const docs = new DocumentStore<Rekey>(container, (j) => j.tenantId);
  // The id carries the tenant: `rekey-{tenantId}-{hash}`; the partition is the tenant.
  const tenantOf = (id: string) => id.slice('rekey-'.length, id.lastIndexOf('-'));
  return {
    async read(id) {
      await ready();
      return docs.read(id, tenantOf(id));
    },
    async replace(job, etag) {
      await ready();
      return docs.replace(job, etag);
    },
    async createOnly(job) {
      await ready();
      return (await docs.createOnly(job)).created;
    },
    async due(now, limit) {
      await ready();
      const page = await docs.queryPage('SELECT * FROM c WHERE c.dueAt <= @now ORDER BY c.dueAt', [{ name: '@now', value: now.toISOString() }], { maxItems: limit });
      return page.items.map((i) => i.doc);
    },
  };
}
