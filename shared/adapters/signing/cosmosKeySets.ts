/**
 * The key set document (`id: keyset`) and rollover records in the `signingKeys`
 * container, partitioned by issuer. A rollover record travels in the key set's outbox
 * (written with the transition) and is then stored under its deterministic id.
 */
import type { KeySet, RolloverRecord } from '../../domain/signingKeys';
import type { KeySetStore } from '../../services/signing/ports';
import { ConcurrencyConflict, type ContainerRef, DocumentStore, type Ready } from '../cosmos';

type SigningDoc = KeySet | RolloverRecord;

/** `ready` runs before the first operation (e.g. the idempotent schema creation). */
export function cosmosKeySets(container: ContainerRef, ready?: Ready): KeySetStore {
  const docs = new DocumentStore<SigningDoc>(container, (d) => d.issuer, ready);

  return {
    async read(issuer) {
      const found = await docs.read('keyset', issuer);
      return found ? { set: found.doc as KeySet, etag: found.etag } : undefined;
    },

    async write(set, etag) {
      const written = etag === undefined ? await docs.create(set) : await docs.replace(set, etag);
      return { set: written.doc as KeySet, etag: written.etag };
    },

    async saveRollover(record) {
      try {
        await docs.create(record);
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      }
    },

    async rollovers(issuer, limit) {
      const found = await docs.query(
        'SELECT TOP @limit * FROM c WHERE c.issuer = @issuer AND c.type = @type ORDER BY c.id DESC',
        [
          { name: '@issuer', value: issuer },
          { name: '@type', value: 'rollover' },
          { name: '@limit', value: limit },
        ],
      );
      return found.map((f) => f.doc as RolloverRecord);
    },
  };
}
