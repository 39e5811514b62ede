/**
 * Cosmos DB adapters of the renewal ports: rotations (ETag-guarded, partitioned by
 * credential) and dead letters. Documents are plain domain data; no values ever.
 */
import { type Rotation, credentialKey, credentialKeyOf } from '../../domain/rotation';
import type { DeadLetter, DeadLetterStore } from '../../services/events/ports';
import type { RotationStore } from '../../services/renewal/ports';
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
  };
}

export function cosmosDeadLetterStore(container: ContainerRef, ready: () => Promise<void>): DeadLetterStore {
  const store = new DocumentStore<DeadLetter>(container, (d) => d.source);
  return {
    async record(letter) {
      await ready();
      try {
        await store.create(letter);
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e; // the same bad event again: already recorded
      }
    },
  };
}
