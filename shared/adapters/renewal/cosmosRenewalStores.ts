/**
 * Cosmos DB adapters of the renewal ports: rotations (ETag-guarded, partitioned by
 * credential) and dead letters. Documents are plain domain data; no values ever.
 */
import type { Container } from '@azure/cosmos';
import type { Rotation } from '../../domain/rotation';
import { type DeadLetter, type DeadLetterStore, type RotationStore } from '../../services/renewal/ports';
import { ConcurrencyConflict, DocumentStore } from '../cosmos';

export function cosmosRotationStore(container: Container, ready: () => Promise<void>): RotationStore {
  const store = new DocumentStore<Rotation>(container, (r) => r.credentialId);
  /** `{vault}:{name}:{version}:{attempt}` → `{vault}:{name}` (the partition key). */
  const partitionOf = (id: string) => id.split(':').slice(0, 2).join(':');
  return {
    async create(rotation) {
      await ready();
      return store.create(rotation);
    },
    async read(id) {
      await ready();
      return store.read(id, partitionOf(id));
    },
    async replace(rotation, etag) {
      await ready();
      return store.replace(rotation, etag);
    },
    async due(now, limit) {
      await ready();
      const found = await store.query(
        // Active rotations, and failed or superseded ones whose clean-up is to be retried.
        "SELECT * FROM c WHERE (c.status = 'active' OR c.cleanup.state = 'pending') AND c.dueAt <= @now",
        [{ name: '@now', value: now.toISOString() }],
      );
      return found
        .map((v) => v.doc)
        .sort((a, b) => (a.dueAt ?? '').localeCompare(b.dueAt ?? ''))
        .slice(0, limit);
    },
    async forCredential(vault, name) {
      await ready();
      const found = await store.query('SELECT * FROM c WHERE c.credentialId = @id', [
        { name: '@id', value: `${vault.toLowerCase()}:${name.toLowerCase()}` },
      ]);
      return found.map((v) => v.doc);
    },
  };
}

export function cosmosDeadLetterStore(container: Container, ready: () => Promise<void>): DeadLetterStore {
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
