/**
 * Cosmos DB adapters of the renewal ports: rotations (the job store, partitioned by
 * credential), dead letters and renew's idempotency keys. Documents are plain domain data; no values ever.
 */
import { type Rotation, credentialKey, credentialKeyOf } from '../../domain/rotation';
import { summarisingDeadLetters } from '../../services/events/deadLetterBatch';
import type { DeadLetterRecord, DeadLetterStore } from '../../services/events/ports';
import type { Clock } from '../../ports';
import type { IdempotencyRecord, IdempotencyStore, RotationStore } from '../../services/renewal/ports';
import { ConcurrencyConflict, type ContainerRef, DocumentStore, type Ready } from '../cosmos';
import { cosmosJobStore } from '../cosmosJobStore';

/** Rotations page their due query by 50 (a resume pass may ask for more). */
const DUE_PAGE = 50;

export interface RotationDocuments extends RotationStore {
  /** One page of due rotations in due order, paged by Cosmos DB (continuation tokens). */
  duePage(now: Date, page: { maxItems: number; continuation?: string }): Promise<{ items: Rotation[]; continuation?: string }>;
}

export function cosmosRotationStore(container: ContainerRef, ready: Ready): RotationDocuments {
  const partitionOf = (r: Rotation) => r.credentialId;
  const store = new DocumentStore<Rotation>(container, partitionOf, ready);
  return {
    ...cosmosJobStore<Rotation>(container, { partitionOf, partitionOfId: credentialKeyOf, duePageSize: DUE_PAGE, ready }),
    async forCredential(vault, name) {
      const found = await store.query('SELECT * FROM c WHERE c.credentialId = @id', [{ name: '@id', value: credentialKey(vault, name) }]);
      return found.map((v) => v.doc);
    },
    async forCredentials(vault, names) {
      if (names.length === 0) return [];
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
export function cosmosIdempotencyStore(container: ContainerRef, ready: Ready): IdempotencyStore {
  type Doc = IdempotencyRecord & { ttl?: number };
  const store = new DocumentStore<Doc>(container, (d) => d.id, ready);
  const withTtl = (r: IdempotencyRecord): Doc => ({ ...r, ttl: Math.max(1, Math.ceil((Date.parse(r.expiresAt) - Date.now()) / 1000) + 60) });
  const plain = ({ doc, etag }: { doc: Doc; etag: string }) => {
    const { ttl, ...record } = doc;
    void ttl;
    return { doc: record, etag };
  };
  return {
    create: async (record) => plain(await store.create(withTtl(record))),
    async read(id) {
      const found = await store.read(id, id);
      return found ? plain(found) : undefined;
    },
    replace: async (record, etag) => plain(await store.replace(withTtl(record), etag)),
  };
}

/** Dead letters, one document per burst from one source (`services/events/deadLetterBatch.ts`). */
export function cosmosDeadLetterStore(container: ContainerRef, ready: Ready, clock: Clock): DeadLetterStore {
  const store = new DocumentStore<DeadLetterRecord>(container, (d) => d.source, ready);
  return summarisingDeadLetters(async (record) => {
    try {
      await store.create(record);
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e; // the same bad events again: already recorded
    }
  }, clock);
}
