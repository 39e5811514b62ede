/**
 * Ports of the signing life cycle. Production adapter: `shared/adapters/signing/`
 * (Cosmos DB); Key Vault keys go through the shared `VaultKeys` port (see
 * `signingVault.ts`). Unit tests hand in in-memory fakes.
 */
import type { KeySet, RolloverRecord } from '../../domain/signingKeys';

export interface StoredKeySet {
  set: KeySet;
  etag: string;
}

/** The key set document, ETag-guarded, and rollover records in the same partition. */
export interface KeySetStore {
  read(issuer: string): Promise<StoredKeySet | undefined>;
  /** Creates the set (`etag` undefined) or replaces it if `etag` still matches; a lost race throws `ConcurrencyConflict`. */
  write(set: KeySet, etag: string | undefined): Promise<StoredKeySet>;
  /** Stores a record from the set's outbox under its deterministic id; an existing one is left as is. */
  saveRollover(record: RolloverRecord): Promise<void>;
  rollovers(issuer: string, limit: number): Promise<RolloverRecord[]>;
}

