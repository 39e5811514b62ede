/** Tenants and the key policy in Cosmos DB (ETag-guarded documents, create-only where a race is possible). */
import { ConcurrencyConflict, ValidationError } from '../../errors';
import { type KeyClaim, claimId } from '../../domain/tenantByok';
import { DEFAULT_KEY_POLICY, type KeyPolicy, keyPolicySchema } from '../../domain/tenantKeyPolicy';
import type { Tenant } from '../../domain/tenantKeys';
import type { TenantNotice } from '../../domain/tenantNotice';
import type { Rekey } from '../../domain/tenantRekey';
import type { Revoke } from '../../domain/tenantRevoke';
import type { TenantCreate } from '../../domain/tenantCreate';
import { tenantOfJobId } from '../../domain/tenantBackups';
import type { CreateStore, KeyClaimStore, KeyPolicyStore, NoticeStore, RekeyStore, RevokeStore, TenantStore } from '../../services/tenants/ports';
import { type ContainerRef, DocumentStore, type Ready } from '../cosmos';
import { cosmosJobStore } from '../cosmosJobStore';

export function cosmosTenantStore(container: ContainerRef, ready: Ready): TenantStore {
  const docs = new DocumentStore<Tenant>(container, (t) => t.tenantId, ready);
  const pageOf = async (query: string, page: { maxItems: number; continuation?: string }) => {
    const found = await docs.queryPage(query, [], page);
    return { items: found.items.map((i) => i.doc), ...(found.continuation ? { continuation: found.continuation } : {}) };
  };
  return {
    read: (tenantId) => docs.read(tenantId, tenantId),
    createOnly: (tenant) => docs.createOnly(tenant),
    replace: (tenant, etag) => docs.replace(tenant, etag),
    byokPage: (page) => pageOf("SELECT * FROM c WHERE c.topology = 'byok' AND c.state != 'revoked'", page),
    livePage: (page) => pageOf("SELECT * FROM c WHERE c.state != 'revoked'", page),
  };
}

interface PolicyDoc extends KeyPolicy {
  id: string;
  kind: 'keys';
}

/** One document `keys` in partition `keys`; the default is stored on first read so its version is real. */
export function cosmosKeyPolicyStore(container: ContainerRef, ready: Ready): KeyPolicyStore {
  const docs = new DocumentStore<PolicyDoc>(container, (d) => d.kind, ready);
  const store: KeyPolicyStore = {
    async current() {
      const stored = await docs.read('keys', 'keys');
      if (!stored) {
        await docs.createOnly({ id: 'keys', kind: 'keys', ...DEFAULT_KEY_POLICY });
        const again = await docs.read('keys', 'keys');
        if (!again) return DEFAULT_KEY_POLICY;
        return parsePolicy(again.doc);
      }
      return parsePolicy(stored.doc);
    },
    async raise(to) {
      await store.current(); // the default document exists
      for (let attempt = 0; attempt < 5; attempt++) {
        const stored = await docs.read('keys', 'keys');
        if (!stored) continue;
        const now = parsePolicy(stored.doc);
        if (to.rsaMinBits < now.rsaMinBits) {
          throw new ValidationError('rsaMinBits', `rsaMinBits: ${to.rsaMinBits} would lower the key policy's minimum (${now.rsaMinBits})`);
        }
        const forbidden = [...new Set([...now.forbiddenAlgorithms, ...to.forbiddenAlgorithms])];
        if (to.rsaMinBits === now.rsaMinBits && forbidden.length === now.forbiddenAlgorithms.length) return now;
        const next = { ...stored.doc, version: now.version + 1, rsaMinBits: to.rsaMinBits, forbiddenAlgorithms: forbidden };
        try {
          return parsePolicy((await docs.replace(next, stored.etag)).doc);
        } catch (e) {
          if (!(e instanceof ConcurrencyConflict)) throw e;
        }
      }
      throw new ConcurrencyConflict('changed', 'keys');
    },
  };
  return store;
}

function parsePolicy(doc: PolicyDoc): KeyPolicy {
  const { version, rsaMinBits, forbiddenAlgorithms } = doc;
  return keyPolicySchema.parse({ version, rsaMinBits, forbiddenAlgorithms });
}

/**
 * Tenant jobs in `tenantJobs` (creates, rekeys, revokes, notices), in the tenant's partition. Ids
 * carry their kind and tenant (`{prefix}-{tenantId}-{hash}`); each kind's due query is
 * the kernel's due rule (`dueAt <= now`, in due order) over its own prefix.
 */
function tenantJobStore<J extends { id: string; tenantId: string }>(prefix: string, container: ContainerRef, ready: Ready) {
  return cosmosJobStore<J>(container, {
    partitionOf: (j) => j.tenantId,
    partitionOfId: (id) => tenantOfJobId(prefix, id),
    dueFilter: { where: 'STARTSWITH(c.id, @prefix)', params: [{ name: '@prefix', value: `${prefix}-` }] },
    ready,
  });
}

export const cosmosRekeyStore = (container: ContainerRef, ready: Ready): RekeyStore => tenantJobStore<Rekey>('rekey', container, ready);
export const cosmosRevokeStore = (container: ContainerRef, ready: Ready): RevokeStore => tenantJobStore<Revoke>('revoke', container, ready);
export const cosmosCreateStore = (container: ContainerRef, ready: Ready): CreateStore => tenantJobStore<TenantCreate>('create', container, ready);
export const cosmosNoticeStore = (container: ContainerRef, ready: Ready): NoticeStore => tenantJobStore<TenantNotice>('notice', container, ready);

/** One claim document per BYOK key in `tenantKeyClaims` (partition `/id`): create-only, released by a write. */
export function cosmosKeyClaimStore(container: ContainerRef, ready: Ready): KeyClaimStore {
  const docs = new DocumentStore<KeyClaim>(container, (c) => c.id, ready);
  return {
    async claim(key, tenantId, now, by) {
      const id = claimId(key);
      const claim: KeyClaim = { id, vaultUrl: key.vaultUrl, name: key.name, tenantId, claimedAt: now.toISOString(), by };
      for (let attempt = 0; attempt < 5; attempt++) {
        if ((await docs.createOnly(claim)).created) return true;
        const stored = await docs.read(id, id);
        if (!stored) continue;
        if (!stored.doc.releasedAt) return stored.doc.tenantId === tenantId;
        try {
          await docs.replace(claim, stored.etag); // released: free to claim again (ETag: one winner)
          return true;
        } catch (e) {
          if (!(e instanceof ConcurrencyConflict)) throw e;
        }
      }
      return false;
    },
    async holder(key) {
      const id = claimId(key);
      const stored = await docs.read(id, id);
      return stored && !stored.doc.releasedAt ? stored.doc.tenantId : undefined;
    },
    async release(key, tenantId, now, by) {
      const id = claimId(key);
      const stored = await docs.read(id, id);
      if (!stored || stored.doc.tenantId !== tenantId || stored.doc.by !== by || stored.doc.releasedAt) return;
      await docs.replace({ ...stored.doc, releasedAt: now.toISOString() }, stored.etag).catch((e: unknown) => {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      });
    },
  };
}
