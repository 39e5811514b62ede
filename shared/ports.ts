/**
 * Ports shared by every life cycle. Each has one production adapter in
 * `shared/adapters`; tests hand in plain objects. Domain-specific ports live next to
 * their service (e.g. `shared/services/renewal/ports.ts`).
 */
import type { PublicJwk } from './domain/signingKeys';

/** A stored document and the ETag that guards its next write. */
export interface Versioned<T> {
  doc: T;
  etag: string;
}

/** Time as the app sees it; in local mode it follows the Key Vault emulator's movable clock. */
export interface Clock {
  now(): Promise<Date>;
}

/** Structured log lines; never pass secret values or key material. */
export interface Logger {
  info(message: string, props?: Record<string, unknown>): void;
  warn(message: string, props?: Record<string, unknown>): void;
  error(message: string, props?: Record<string, unknown>): void;
}

/** Keyturn's own notifications (an Event Grid custom topic). */
export interface Notifier {
  publish(event: { eventType: string; subject: string; data: Record<string, unknown>; id?: string }): Promise<void>;
}

/** Test-only fault points: throws when `point` is armed (setting KEYTURN_FAULTS). */
export interface FaultPoints {
  hit(point: string): void;
}

export const noFaults: FaultPoints = { hit() {} };

// ---------------------------------------------------------------------------------
// Key Vault keys, for every life cycle (signing keys, tenant keys, key sets).

export type KeyOperation = 'encrypt' | 'decrypt' | 'sign' | 'verify' | 'wrapKey' | 'unwrapKey' | 'import' | 'export';
export type KeySignAlg = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';
export type KeyWrapAlg = 'RSA-OAEP' | 'RSA-OAEP-256' | 'RSA1_5' | 'A128KW' | 'A192KW' | 'A256KW';

/** A Key Vault key by its vault's URL; without `version`, the latest version. */
export interface KeyRef {
  vaultUrl: string;
  name: string;
  version?: string;
}

/** What to create: Key Vault's software-protected key types (`hsm` for the -HSM variants). */
export type KeySpec =
  | { kty: 'RSA'; size?: 2048 | 3072 | 4096; hsm?: boolean }
  | { kty: 'EC'; curve: 'P-256' | 'P-384' | 'P-521' | 'P-256K'; hsm?: boolean };

/**
 * Attributes a caller sets. No `notBefore`: the SDK checks it on the client against
 * the machine clock (which the local emulator's movable clock runs ahead of).
 * `expiresOn` and `keyOps` are checked on the client too: see `VaultKeys`.
 */
export interface KeyAttributes {
  enabled?: boolean;
  /** `null` (updates only) removes the expiry. */
  expiresOn?: Date | null;
  keyOps?: KeyOperation[];
  tags?: Record<string, string>;
}

export interface KeyProperties {
  vaultUrl: string;
  name: string;
  version: string;
  /** `RSA`, `EC`, `RSA-HSM`, …, as Key Vault says. */
  keyType?: string;
  enabled: boolean;
  /** Absent in version listings (Key Vault lists no operations there). */
  keyOps?: KeyOperation[];
  tags: Record<string, string>;
  expiresOn?: Date;
  createdOn?: Date;
  updatedOn?: Date;
}

/** A public JWK (base64url members): never private members. One shape for every life cycle. */
export type PublicKeyJwk = PublicJwk;

export interface VaultKey {
  properties: KeyProperties;
  publicJwk?: PublicKeyJwk;
}

/** A private key to import, as a JWK with base64url members (RFC 7517). Never logged. */
export interface ImportedJwk {
  kty: 'RSA' | 'EC';
  [member: string]: string | undefined;
}

/** A soft-deleted key as Key Vault reports it. */
export interface DeletedKey {
  name: string;
  deletedOn?: Date;
  scheduledPurgeDate?: Date;
}

/**
 * Key Vault keys: the private key never leaves the vault. Failures are KeyturnErrors
 * with fixed messages (`NOT_FOUND`, `CONFLICT`, `ACCESS_DENIED` or `DEPENDENCY_FAILED`;
 * the SDK's error stays as `cause`, for logs only). Cryptography addresses a version.
 *
 * Client-side checks: the JS `CryptographyClient` reads the key first and refuses, on
 * the client, any operation past the key's `expiresOn` or outside its `keyOps` (no
 * request reaches the vault). So a key that must keep decrypting or unwrapping (a
 * key-encryption key whose data outlives it) carries no `exp`, and `keyOps` must list
 * every operation still needed.
 */
export interface VaultKeys {
  create(vaultUrl: string, name: string, spec: KeySpec, attributes?: KeyAttributes): Promise<VaultKey>;
  import(vaultUrl: string, name: string, jwk: ImportedJwk, attributes?: KeyAttributes): Promise<VaultKey>;
  /** A new version now (Key Vault's rotate: same type and attributes as the latest). */
  rotate(vaultUrl: string, name: string): Promise<VaultKey>;
  /** Undefined when the key (or version) does not exist or is deleted. */
  get(ref: KeyRef): Promise<VaultKey | undefined>;
  /** Every version's properties, in the vault's order. Empty when the key does not exist. */
  versions(vaultUrl: string, name: string): Promise<KeyProperties[]>;
  /** Changes only what `changes` names; without a version, the latest. */
  update(ref: KeyRef, changes: KeyAttributes): Promise<KeyProperties>;
  /** An opaque blob only Key Vault (same geography/subscription) can restore. */
  backup(vaultUrl: string, name: string): Promise<Uint8Array>;
  restore(vaultUrl: string, backup: Uint8Array): Promise<VaultKey>;
  /** Soft delete; resolves once the key is deleted (recoverable until purged). */
  delete(vaultUrl: string, name: string): Promise<void>;
  /** A soft-deleted key (recoverable until purged); undefined when it is live, purged or never was. */
  getDeleted(vaultUrl: string, name: string): Promise<DeletedKey | undefined>;
  /** Undoes a soft delete; resolves once the key is back. */
  recover(vaultUrl: string, name: string): Promise<VaultKey>;
  /** Erases a soft-deleted key for good (refused while the vault has purge protection). */
  purge(vaultUrl: string, name: string): Promise<void>;
  wrap(ref: KeyRef & { version: string }, alg: KeyWrapAlg, key: Uint8Array): Promise<Uint8Array>;
  unwrap(ref: KeyRef & { version: string }, alg: KeyWrapAlg, wrapped: Uint8Array): Promise<Uint8Array>;
  /** Signs a digest the caller made (Key Vault never sees the data); ES* come back as r‖s. */
  sign(ref: KeyRef & { version: string }, alg: KeySignAlg, digest: Uint8Array): Promise<Uint8Array>;
}

/**
 * Work for queue-triggered functions (long jobs run as idempotent batches). A job is
 * delivered at least once; the trigger retries a failing one and then poisons it.
 */
export interface JobQueue {
  enqueue(queue: string, job: Record<string, unknown>, options?: { visibleAfterSeconds?: number }): Promise<void>;
}

// ---------------------------------------------------------------------------------
// Azure RBAC role assignments (ARM): how Keyturn removes a principal's access to a
// vault, a key or a secret (tenant-key revoke, the breach playbooks).

/** One role assignment as ARM reports it; ids are ARM resource ids, principals object ids. */
export interface RoleAssignment {
  /** `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`. */
  id: string;
  /** The assignment's GUID. */
  name: string;
  scope: string;
  /** `/subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions/{guid}`. */
  roleDefinitionId: string;
  principalId: string;
}

/**
 * Role assignments at ARM scopes (`/subscriptions/…[/resourceGroups/…[/providers/…]]`).
 * Failures are KeyturnErrors: `VALIDATION_FAILED` (a malformed scope or id),
 * `ACCESS_DENIED` (Keyturn's identity may not read or write assignments there),
 * `CONFLICT` (the principal already holds that role at that scope) or `DEPENDENCY_FAILED`.
 */
export interface RoleAssignments {
  /** Assignments that apply at `scope` (at it, above it and, as ARM lists, below it); `assignedTo` keeps one principal's (groups included, as ARM's filter). */
  listForScope(scope: string, filter?: { assignedTo?: string }): Promise<RoleAssignment[]>;
  /** Idempotent for the same `name` (a caller-chosen GUID; a random one when absent). */
  create(scope: string, assignment: { roleDefinitionId: string; principalId: string; name?: string }): Promise<RoleAssignment>;
  /** By the assignment's name at its scope; resolves also when there was none. */
  delete(scope: string, name: string): Promise<void>;
}
