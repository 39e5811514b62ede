/**
 * Ports of the credential-renewal service. Adapters live in `shared/adapters/renewal`;
 * unit tests hand in in-memory fakes. No SDK types cross these interfaces.
 */
import { inspect } from 'node:util';
import type { ManagedCredential, ProviderKind, Tags } from '../../domain/managedCredential';
import type { Rotation } from '../../domain/rotation';
import type { Versioned } from '../../ports';

/**
 * A secret value in memory. It prints as `[secret]` in logs, JSON and inspection, so
 * a value can only leave through `reveal()` (into Key Vault or the provider).
 */
export class SecretValue {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
  [inspect.custom](): string {
    return '[secret]';
  }
}

/** The store of rotations; a JobStore of the step runner (read, replace, due). */
export interface RotationStore {
  /** Throws ConcurrencyConflict('exists') when the id is taken. */
  create(rotation: Rotation): Promise<Versioned<Rotation>>;
  read(id: string): Promise<Versioned<Rotation> | undefined>;
  /** Throws ConcurrencyConflict('changed') when the ETag no longer matches. */
  replace(rotation: Rotation, etag: string): Promise<Versioned<Rotation>>;
  /** Rotations whose `dueAt` has come (the kernel's due rule), in due order, at most `limit`. */
  due(now: Date, limit: number): Promise<Rotation[]>;
  /** Every rotation of one credential (all versions and attempts). */
  forCredential(vault: string, name: string): Promise<Rotation[]>;
  /** Every rotation of any of these credentials of one vault, in one query (a listing page's). */
  forCredentials(vault: string, names: string[]): Promise<Rotation[]>;
}

export interface SecretProps {
  name: string;
  version: string;
  enabled: boolean;
  expiresOn?: Date;
  createdOn?: Date;
  contentType?: string;
  tags: Tags;
}

/**
 * The version a write made, and how many times the SDK sent the write: an SDK retry
 * after a lost answer can land the value twice, so only `attempts: 1` proves that one
 * version was made. Absent when that is not known (then assume it may be more).
 */
export interface WrittenSecret extends SecretProps {
  attempts?: number;
}

/** The most recently created of `versions` (what Key Vault serves as the latest), or undefined. */
export const newestVersion = (versions: SecretProps[]): SecretProps | undefined =>
  [...versions].sort((a, b) => (a.createdOn?.getTime() ?? 0) - (b.createdOn?.getTime() ?? 0)).at(-1);

/**
 * A secret as Key Vault lists it: the latest version's attributes and tags. Key Vault's
 * listing ids carry no version, so the version is only known by reading the secret.
 */
export interface SecretListing {
  name: string;
  enabled: boolean;
  expiresOn?: Date;
  createdOn?: Date;
  contentType?: string;
  tags: Tags;
}

/** One page of Key Vault's listing; `continuation` (opaque) fetches the next, absent after the last. */
export interface SecretListingPage {
  items: SecretListing[];
  continuation?: string;
}

export interface SecretStore {
  /** The latest version's properties (what consumers read), or undefined when absent. */
  latest(vault: string, name: string): Promise<SecretProps | undefined>;
  versions(vault: string, name: string): Promise<SecretProps[]>;
  /** Every secret's name and latest tags (for the sweep and the listing). */
  list(vault: string): Promise<{ name: string; tags: Tags }[]>;
  /** One page of the listing, at most `maxItems` (Key Vault caps a page at 25) secrets. */
  listPage(vault: string, page: { maxItems: number; continuation?: string }): Promise<SecretListingPage>;
  read(vault: string, name: string, version: string): Promise<SecretValue>;
  write(vault: string, name: string, value: SecretValue, options: { tags: Tags; expiresOn?: Date; contentType?: string }): Promise<WrittenSecret>;
  update(vault: string, name: string, version: string, changes: { enabled?: boolean; tags?: Tags }): Promise<void>;
}

export interface ProviderContext {
  vault: string;
  name: string;
  rotationId: string;
  credential: Pick<ManagedCredential, 'provider' | 'appObjectId'>;
}

/** A credential at its provider: the value is returned once, at creation. */
export interface CredentialProvider {
  readonly kind: ProviderKind;
  /** Creates a credential tagged with `token`; `ref` is the provider's (non-secret) id for it. */
  create(ctx: ProviderContext, token: string, expiresOn: Date): Promise<{ value: SecretValue; ref?: string }>;
  /** Credentials at the provider carrying one of the tokens (for adoption or clean-up). */
  findTagged(ctx: ProviderContext, tokens: string[]): Promise<{ ref: string; token: string }[]>;
  /** Throws when the value is not (yet) a working credential. */
  verify(ctx: ProviderContext, value: SecretValue, ref: string | undefined, now: Date): Promise<void>;
  /** Removes the credential at the provider; a missing one counts as removed. */
  remove(ctx: ProviderContext, ref: string): Promise<void>;
}

/**
 * A renew request's remembered answer, under its `Idempotency-Key`. `id` is a hash of
 * the key; `fingerprint` one of the request (route and body). No values, ever.
 */
export interface IdempotencyRecord {
  id: string;
  fingerprint: string;
  /** After this the key is free again (the store's TTL removes it some time later). */
  expiresAt: string;
  /** While there is no answer: after this the first request counts as dead (a crashed host). */
  heldUntil?: string;
  /** Absent while the first request with the key is still running. */
  answer?: { status: number; body: Record<string, unknown> };
}

export interface IdempotencyStore {
  /** Throws ConcurrencyConflict('exists') when the id is taken. */
  create(record: IdempotencyRecord): Promise<Versioned<IdempotencyRecord>>;
  read(id: string): Promise<Versioned<IdempotencyRecord> | undefined>;
  /** Throws ConcurrencyConflict('changed') when the ETag no longer matches. */
  replace(record: IdempotencyRecord, etag: string): Promise<Versioned<IdempotencyRecord>>;
}
