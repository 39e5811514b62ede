/**
 * Ports of the signing life cycle. Production adapters: `shared/adapters/signing/`
 * (Key Vault keys, Cosmos DB); unit tests hand in in-memory fakes.
 */
import type {
  KeySet,
  KeyState,
  PublicJwk,
  RolloverRecord,
  SigningAlg,
  SigningKeyType,
  VaultKeyRef,
} from '../../domain/signingKeys';

/** Key Vault keys: one per generation; the private key never leaves the vault. */
export interface SigningKeyStore {
  /** Creates a key (no `nbf`; `exp` as given), tagged with its state (and the adapter's issuer); returns its public half. */
  create(input: {
    name: string;
    keyType: SigningKeyType;
    expiresAt: Date;
    state: KeyState;
  }): Promise<{ vaultKey: VaultKeyRef; publicJwk: PublicJwk; createdAt: Date }>;
  /** Writes the state tag; `retired` also disables the key version. Idempotent. */
  setState(ref: VaultKeyRef, state: KeyState): Promise<void>;
  /** Signs the SHA-256 digest of `data` (a JWS signing input); ES256 comes back as r‖s. */
  sign(ref: VaultKeyRef, alg: SigningAlg, data: Uint8Array): Promise<Uint8Array>;
}

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

