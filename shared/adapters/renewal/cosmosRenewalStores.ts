/**
 * Cosmos DB adapters of the renewal ports: rotations (ETag-guarded, partitioned by
 * credential), dead letters and renew's idempotency keys. Documents are plain domain data; no values ever.
 */
import { type Rotation, credentialKey, credentialKeyOf } from '../../domain/rotation';
import { summarisingDeadLetters } from '../../services/events/deadLetterBatch';
import type { DeadLetterRecord, DeadLetterStore } from '../../services/events/ports';
import type { Clock } from '../../ports';
import type { IdempotencyRecord, IdempotencyStore, RotationStore } from '../../services/renewal/ports';
import { ConcurrencyConflict, type ContainerRef, DocumentStore } from '../cosmos';

/**
 * The kernel's due rule (`domain/stepKernel.ts`): `dueAt` is absent once nothing is left
 * to do, so "due" is `dueAt <= now`; Cosmos DB orders and pages the result.
 */
const DUE_QUERY = 'SELECT * FROM c WHERE c.dueAt <= @now ORDER BY c.dueAt';
const DUE_PAGE = 50;

export interface RotationDocuments extends RotationStore {
  /** One page of due rotations in due order, paged by Cosmos DB (continuation tokens). */
  duePage(now: Date, page: { maxItems: number; continuation?: string }): Promise<{ items: Rotation[]; continuation?: string }>;
}

export function cosmosRotationStore(container: ContainerRef, ready: () => Promise<void>): RotationDocuments {
  const store = new DocumentStore<Rotation>(container, (r) => r.credentialId);
  const duePage: RotationDocuments['duePage'] = async (now, page) => {
    await ready();
    const found = await store.queryPage(DUE_QUERY, [{ name: '@now', value: now.toISOString() }], page);
    return { items: found.items.map((v) => v.doc), ...(found.continuation ? { continuation: found.continuation } : {}) };
  };
  return {
    async create(rotation) {
      await ready();
      return store.create(rotation);
    },
    async read(id) {
      const partition = credentialKeyOf(id);
      if (partition === undefined) return undefined; // not a rotation id: no such rotation
      await ready();
      return store.read(id, partition);
    },
    async replace(rotation, etag) {
      await ready();
      return store.replace(rotation, etag);
    },
    duePage,
    async due(now, limit) {
      const out: Rotation[] = [];
      let continuation: string | undefined;
      do {
        const page = await duePage(now, { maxItems: Math.min(DUE_PAGE, limit - out.length), ...(continuation ? { continuation } : {}) });
        out.push(...page.items);
        continuation = page.continuation;
      } while (continuation && out.length < limit);
      return out.slice(0, limit);
    },
    async forCredential(vault, name) {
      await ready();
      const found = await store.query('SELECT * FROM c WHERE c.credentialId = @id', [{ name: '@id', value: credentialKey(vault, name) }]);
      return found.map((v) => v.doc);
    },
    async forCredentials(vault, names) {
      if (names.length === 0) return [];
      await ready();
      // One query for a listing page: `IN` over the page's credential ids (at most a page's worth).
      const keys = [...new Set(names.map((n) => credentialKey(vault, n)))];
      const params = keys.map((value, i) => ({ name: `@k${i}`, value }));
      const found = await store.query(`SELECT * FROM c WHERE c.credentialId IN (${params.map((p) => p.name).join(', ')})`, params);
      return found.map((v) => v.doc);
    },
  };
}

/**
 * Idempotency keys, partitioned by their id. Each document carries a Cosmos DB `ttl`
 * (the container has TTL on, `defaultTtl: -1`), so keys disappear on their own; until
 * then the service treats a record past `expiresAt` as free.
 */
export function cosmosIdempotencyStore(container: ContainerRef, ready: () => Promise<void>): IdempotencyStore {
  type Doc = IdempotencyRecord & { ttl?: number };
  const store = new DocumentStore<Doc>(container, (d) => d.id);
  const withTtl = (r: IdempotencyRecord): Doc => ({ ...r, ttl: Math.max(1, Math.ceil((Date.parse(r.expiresAt) - Date.now()) / 1000) + 60) });
  const plain = ({ doc, etag }: { doc: Doc; etag: string }) => {
    const { ttl, ...record } = doc;
    void ttl;
    return { doc: record, etag };
  };
  return {
    async create(record) {
      await ready();
      return plain(await store.create(withTtl(record)));
    },
    async read(id) {
      await ready();
      const found = await store.read(id, id);
      return found ? plain(found) : undefined;
    },
    async replace(record, etag) {
      await ready();
      return plain(await store.replace(withTtl(record), etag));
    },
  };
}

/** Dead letters, one document per burst from one source (`services/events/deadLetterBatch.ts`). */
export function cosmosDeadLetterStore(container: ContainerRef, ready: () => Promise<void>, clock: Clock): DeadLetterStore {
  const store = new DocumentStore<DeadLetterRecord>(container, (d) => d.source);
  return summarisingDeadLetters(async (record) => {
    await ready();
    try {
      await store.create(record);
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e; // the same bad events again: already recorded
    }
  }, clock);
}
