/**
 * Encryption key sets (life cycle 5): the pure rules. A set holds data keys (256-bit
 * AES keys, stored only wrapped by the set's key-encryption key, KEK); one key is
 * `primary` (encrypts new data), the others `active` (decrypt only) or `retired`.
 * Items are credentials stored as AES-256-GCM ciphertexts that name their key and are
 * bound by associated data to the set's uid, the item id and the key id.
 * Not the signing JWKS "key set" (`shared/services/signing`): unrelated.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { KeyturnError, ValidationError } from '../errors';
import { lazySchema } from './lazySchema';

/** Set and item ids. */
export const KEYSET_ID = /^[A-Za-z0-9._-]{1,128}$/;
export const idSchema = lazySchema(() => z.string().regex(KEYSET_ID, 'expected 1–128 of A-Z a-z 0-9 . _ -'));
/** The largest value stored, in UTF-8 bytes. */
export const MAX_VALUE_BYTES = 16 * 1024;
/** Encryptions per data key stay well below 2^32 (AES-GCM with random 96-bit nonces). */
export const MAX_USES_PER_KEY = 2 ** 32 - 2 ** 24;

export type DataKeyState = 'primary' | 'active' | 'retired';
/** What a key document stores: the primary is the set's `primaryKeyId`, shown as `primary`. */
export type StoredKeyState = 'active' | 'retired';

/** Where the KEK lives; `owned` when Keyturn created it (then it may rotate it itself). */
export interface KekRef {
  vaultUrl: string;
  name: string;
  /** The version data keys are wrapped under now. */
  version: string;
  owned: boolean;
}

export interface KeySet {
  /** `set`: the one set document of the set's partition. */
  id: 'set';
  setId: string;
  /** Stable random id, bound into every ciphertext (a set deleted and re-created is another set). */
  uid: string;
  kek: KekRef;
  primaryKeyId: string;
  /** When the primary last changed (writers elsewhere see it within the primary TTL). */
  primarySince: string;
  /** Raised by abandon: items of older generations are deleted. */
  generation: number;
  /** Key ids are `k{n}`; the next n. */
  nextKeyNumber: number;
  /** Bumped whenever the set's keys change (add, retire, rewrap, import): the export compares it. */
  keysVersion: number;
  /** keysVersion at the last completed export (absent: never exported). */
  exportedKeysVersion?: number;
  state: 'available' | 'unavailable';
  /** The set's latest batch job (re-encryption, abandon): one at a time. */
  activeJobId?: string;
  /** Keyturn-owned KEKs this set replaced when they were gone (latest last, at most 10): data keys may still be wrapped under them. */
  replacedKeks?: { vaultUrl: string; name: string; version: string; replacedAt: string }[];
  /** Consecutive KEK failures: since when (absent: the last unwrap worked). */
  kekFailingSince?: string;
  createdAt: string;
  updatedAt: string;
}

/** A data key document (one per key, in the set's partition): uses are reserved in blocks on it. */
export interface DataKey {
  /** `key:{keyId}`. */
  id: string;
  setId: string;
  keyId: string;
  state: StoredKeyState;
  /** The data key wrapped by the KEK (RSA-OAEP-256), base64url. Never the key itself. */
  wrapped: string;
  /** The KEK version it is wrapped under (a rewrap moves it; an import names the current one). */
  kek: { vaultUrl: string; name: string; version: string };
  generation: number;
  /** Encryptions reserved so far by all processes together. */
  reservedUses: number;
  createdAt: string;
  updatedAt: string;
}

export type ItemState = 'ok' | 'needs-reentry';

export interface Item {
  /** The item id (unique in the set's partition). */
  id: string;
  setId: string;
  owner: string;
  state: ItemState;
  /** `kt1.{keyId}.{nonce}.{ciphertext+tag}`; absent once abandoned. */
  ciphertext?: string;
  keyId?: string;
  generation: number;
  updatedAt: string;
}

export const keyIdOf = (n: number) => `k${n}`;
export const dataKeyDocId = (keyId: string) => `key:${keyId}`;

/** The associated data of a ciphertext: set uid, item id and key id, unambiguous (ids cannot hold a newline). */
export const associatedData = (setUid: string, itemId: string, keyId: string): string => `keyturn-keyset-v1\n${setUid}\n${itemId}\n${keyId}`;

export interface SealedValue {
  keyId: string;
  nonce: Uint8Array;
  /** Ciphertext followed by the 16-byte GCM tag. */
  sealed: Uint8Array;
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

export function formatCiphertext(v: SealedValue): string {
  return `kt1.${v.keyId}.${b64u(v.nonce)}.${b64u(v.sealed)}`;
}

/** A stored ciphertext's parts; CIPHERTEXT_INVALID when it is not in the format. */
export function parseCiphertext(text: string): SealedValue {
  const m = /^kt1\.(k[0-9]{1,9})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$/.exec(text);
  if (!m) throw ciphertextInvalid();
  return { keyId: m[1]!, nonce: Buffer.from(m[2]!, 'base64url'), sealed: Buffer.from(m[3]!, 'base64url') };
}

export const ciphertextInvalid = (details: Record<string, unknown> = {}) =>
  new KeyturnError('CIPHERTEXT_INVALID', 'The stored ciphertext does not open under its set, item and key (moved or tampered with)', details);

export const keySetUnavailable = (setId: string) =>
  new KeyturnError('KEYSET_UNAVAILABLE', `Key set '${setId}' cannot open its data keys: its KEK is lost. Import the keys from an export (POST /api/keysets/${setId}/import) or abandon the set (POST /api/keysets/${setId}/abandon)`, {
    setId,
    waysOut: ['import', 'abandon'],
  });

/** GET …/kek (and a replace refused on a 403): the KEK cannot be read; what to do, by cause. */
export function kekUnavailable(set: KeySet, status: { state: 'deleted'; recoverable?: boolean } | { state: 'access-denied' }): KeyturnError {
  const kid = `${set.kek.vaultUrl}/keys/${set.kek.name}/${set.kek.version}`;
  const base = `/api/keysets/${set.setId}`;
  // undefined: Keyturn could not tell whether the key is soft-deleted (reading deleted keys needs a right it may lack).
  const recoverable = status.state === 'deleted' ? status.recoverable : undefined;
  const recover = recoverable === true ? 'It is soft-deleted: recover it' : 'If it is soft-deleted, recover it';
  const todo =
    status.state === 'access-denied'
      ? 'Keyturn is refused access to it: restore its role on the key (Key Vault Crypto Service Encryption User); a replacement would not help'
      : set.kek.owned
        ? `${recoverable === false ? 'It is purged' : `${recover} in Key Vault (az keyvault key recover) and every data key opens again`}; or replace it (POST ${base}/kek/replace), then import the data keys from an export (POST ${base}/import) or abandon the set (POST ${base}/abandon)`
        : `${recoverable === false ? 'It is gone from the customer\'s vault: the customer restores it from a backup' : `${recover} in the customer's vault`}, or abandon the set (POST ${base}/abandon)`;
  const waysOut =
    status.state === 'access-denied'
      ? ['restore-access']
      : [...(recoverable === false ? (set.kek.owned ? [] : ['restore']) : ['recover']), ...(set.kek.owned ? ['replace', 'import'] : []), 'abandon'];
  return new KeyturnError('KEK_UNAVAILABLE', `Key set '${set.setId}': its KEK ${kid} cannot be read. ${todo}`, {
    setId: set.setId,
    kid,
    kekState: status.state,
    recoverable: recoverable ?? null,
    waysOut,
  });
}

/** The value's UTF-8 bytes, checked for size (400 naming `value`). */
export function valueBytes(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > MAX_VALUE_BYTES) throw new ValidationError('value', `value: at most ${MAX_VALUE_BYTES} bytes (UTF-8)`);
  return bytes;
}

export const stateOf = (set: KeySet, key: DataKey): DataKeyState => (set.primaryKeyId === key.keyId ? 'primary' : key.state);

/**
 * Writes sealed under a host's copy of the primary are issued within the primary TTL of
 * the read (the writer re-reads past it); this much more lets such a write land.
 */
export const PRIMARY_WRITE_GRACE_MS = 1000;

/**
 * When no host encrypts with a key demoted at the set's last primary change any more,
 * and their last writes have landed: the re-encryption's final pass starts then, and a
 * retire waits for it. Every non-primary key left `primary` at or before `primarySince`.
 */
export const primarySettledAt = (set: KeySet, primaryTtlMs: number): number => Date.parse(set.primarySince) + primaryTtlMs + PRIMARY_WRITE_GRACE_MS;

/**
 * Retire rule: only an `active` key no item uses (the primary never), and not before
 * every host stopped encrypting with it (the primary TTL since it was demoted).
 */
export function retireRefusal(set: KeySet, key: DataKey, itemsUsingIt: number, now: Date, primaryTtlMs: number): KeyturnError | undefined {
  if (stateOf(set, key) === 'primary') return new KeyturnError('KEY_IN_USE', `Key '${key.keyId}' is the primary; add a key first`, { keyId: key.keyId, items: itemsUsingIt });
  if (itemsUsingIt > 0) {
    return new KeyturnError('KEY_IN_USE', `Key '${key.keyId}' is still used by ${itemsUsingIt} item(s); re-encrypt first`, { keyId: key.keyId, items: itemsUsingIt });
  }
  const settled = primarySettledAt(set, primaryTtlMs);
  if (now.getTime() < settled) {
    const retryAfterSeconds = Math.ceil((settled - now.getTime()) / 1000);
    return new KeyturnError(
      'KEY_RETIRE_TOO_SOON',
      `Key '${key.keyId}' left primary at ${set.primarySince}; other hosts may still encrypt with it until ${new Date(settled).toISOString()}: retry in ${retryAfterSeconds} s (re-encrypt first if items were written on it meanwhile)`,
      { keyId: key.keyId, retryAfterSeconds, settledAt: new Date(settled).toISOString() },
    );
  }
  return undefined;
}

/**
 * Whether the KEK is lost: consecutive failures spanning at least `windowMs` (a single
 * 403 while an RBAC change settles is not a loss).
 */
export const kekLost = (failingSince: string | undefined, now: Date, windowMs: number): boolean =>
  failingSince !== undefined && now.getTime() - Date.parse(failingSince) >= windowMs;

/** What GET /api/keysets/{set} shows: never wrapped keys or values. */
export function keySetView(set: KeySet, keys: DataKey[], counts: Record<string, number>) {
  return {
    setId: set.setId,
    uid: set.uid,
    state: set.state,
    kek: { vaultUrl: set.kek.vaultUrl, name: set.kek.name, version: set.kek.version, owned: set.kek.owned },
    replacedKeks: set.replacedKeks ?? [],
    primaryKeyId: set.primaryKeyId,
    generation: set.generation,
    keys: keys
      .slice()
      .sort((a, b) => Number(a.keyId.slice(1)) - Number(b.keyId.slice(1)))
      .map((k) => ({ keyId: k.keyId, state: stateOf(set, k), kekVersion: k.kek.version, generation: k.generation, createdAt: k.createdAt, items: counts[k.keyId] ?? 0 })),
    exportStale: set.exportedKeysVersion !== set.keysVersion,
    createdAt: set.createdAt,
    updatedAt: set.updatedAt,
  };
}

export const itemView = (item: Item) => ({ itemId: item.id, owner: item.owner, keyId: item.keyId ?? null, state: item.state, updatedAt: item.updatedAt });

/** Listing pages resume after the last item id; the token is checked so a changed one is a 400. */
const pageCheck = (payload: string) => createHash('sha256').update(`keyturn-keyset-items:${payload}`).digest('base64url').slice(0, 16);

export function encodeItemCursor(afterItemId: string): string {
  const payload = Buffer.from(afterItemId, 'utf8').toString('base64url');
  return `${payload}.${pageCheck(payload)}`;
}

export function decodeItemCursor(token: string): string {
  const [payload, sum, ...rest] = token.split('.');
  const after = payload ? Buffer.from(payload, 'base64url').toString('utf8') : '';
  if (!payload || !sum || rest.length > 0 || pageCheck(payload) !== sum || !KEYSET_ID.test(after)) {
    throw new ValidationError('query.continuationToken', 'query.continuationToken: not a token this listing issued');
  }
  return after;
}

/** A Key Vault key URL `https://{vault}/keys/{name}[/{version}]` → its parts (the vault URL is checked by the caller). */
export function parseKekUrl(raw: string): { vaultUrl: string; name: string; version?: string } {
  const m = /^(https:\/\/[^/?#@\s]+)\/keys\/([0-9a-zA-Z-]{1,127})(?:\/([0-9a-zA-Z]{1,64}))?\/?$/.exec(raw);
  if (!m) throw new ValidationError('kekUrl', 'kekUrl: expected https://{vault}/keys/{name}[/{version}]');
  return { vaultUrl: m[1]!, name: m[2]!, ...(m[3] ? { version: m[3] } : {}) };
}

/** Keyturn's own KEK of a set: a Key Vault name from the set id and uid. */
export const ownedKekName = (setId: string, uid: string) => `keyset-${setId.replace(/[^0-9a-zA-Z-]/g, '-').slice(0, 96)}-${uid.slice(0, 8)}`;

/** An export request and, once approved, the file written (`keyset-exports/{set}/{timestamp}`). */
export interface KeySetExport {
  /** `export:{exportId}`. */
  id: string;
  setId: string;
  exportId: string;
  state: 'awaiting-approval' | 'completed';
  reason: string;
  requestedBy: string;
  requestedAt: string;
  /** The recipient's public key (PEM SPKI) and the SHA-256 of its DER, which the approver names. */
  recipientPublicKey: string;
  recipientSha256: string;
  approvedBy?: string;
  approvedAt?: string;
  blobName?: string;
  /** SHA-256 (hex) of the file. */
  checksum?: string;
  keysVersion?: number;
}

export const exportView = (e: KeySetExport) => ({
  exportId: e.exportId,
  setId: e.setId,
  state: e.state,
  reason: e.reason,
  requestedBy: e.requestedBy,
  requestedAt: e.requestedAt,
  recipientSha256: e.recipientSha256,
  approvedBy: e.approvedBy ?? null,
  approvedAt: e.approvedAt ?? null,
  blobName: e.blobName ?? null,
  checksum: e.checksum ?? null,
});

export const EXPORT_CONTAINER = 'keyset-exports';
export const REENTRY_EVENT = 'Keyturn.CredentialReentryRequired';
