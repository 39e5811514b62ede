/** Helpers shared by the key and secret handlers: validation, attributes, backups. */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { badParameter, deletedButRecoverable, notFound } from './errors';
import type { VaultClock } from './clock';
import type { Attributes, Deletion, Store } from './store';
import type { ObjectKind } from './events';

export interface VaultRequest {
  method: string;
  /** `https://{Host}`: ids echo the host the client used. */
  baseUrl: string;
  query: URLSearchParams;
  body: unknown;
  /** What the vault's objects report (`Recoverable` under purge protection: no purge before the retention ends). */
  recoveryLevel: RecoveryLevel;
}

export type RecoveryLevel = 'Recoverable' | 'Recoverable+Purgeable';

/** What an object's JSON needs from the request: the host it echoes and the vault's recovery level. */
export type Shown = Pick<VaultRequest, 'baseUrl' | 'recoveryLevel'>;

/** Key Vault's deletion recovery level: 90 days of soft delete, purgeable unless purge protection is on. */
export const recoveryLevelOf = (purgeProtection: boolean): RecoveryLevel => (purgeProtection ? 'Recoverable' : 'Recoverable+Purgeable');

export interface VaultResponse {
  status: number;
  body?: unknown;
}

export interface VaultContext {
  store: Store;
  clock: VaultClock;
  /** Publishes NewVersionCreated (at the emulator's current time). */
  newVersion(kind: ObjectKind, name: string, version: string, attributes: Attributes): void;
  /** Seals/unseals backup blobs. */
  backupKey: Buffer;
  /** Purge refused while protected (as in `infra/`); soft-deleted objects stay recoverable. */
  purgeProtection: boolean;
  vaultName: string;
}

export const RECOVERABLE_DAYS = 90;
const NAME = /^[0-9a-zA-Z-]{1,127}$/;

export function validName(name: string | undefined): string {
  if (name === undefined || !NAME.test(name)) {
    throw badParameter(`The request URI contains an invalid name: ${name ?? ''}. Follow this rule when naming: ^[0-9a-zA-Z-]+$ (1-127 characters).`);
  }
  return name;
}

export function newVersionId(): string {
  return randomBytes(16).toString('hex');
}

export function body(req: VaultRequest): Record<string, unknown> {
  if (req.body === undefined || req.body === null) return {};
  if (typeof req.body !== 'object' || Array.isArray(req.body)) throw badParameter('The request body must be a JSON object.');
  return req.body as Record<string, unknown>;
}

function time(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw badParameter(`attributes.${field} must be Unix seconds.`);
  return Math.floor(v);
}

/** The settable attributes; created/updated are the emulator's. */
export function parseAttributes(raw: unknown): { enabled?: boolean; nbf?: number; exp?: number } {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw badParameter('attributes must be an object.');
  const a = raw as Record<string, unknown>;
  if (a.enabled !== undefined && a.enabled !== null && typeof a.enabled !== 'boolean') throw badParameter('attributes.enabled must be a boolean.');
  const out: { enabled?: boolean; nbf?: number; exp?: number } = {};
  if (typeof a.enabled === 'boolean') out.enabled = a.enabled;
  const nbf = time(a.nbf, 'nbf');
  const exp = time(a.exp, 'exp');
  if (nbf !== undefined) out.nbf = nbf;
  if (exp !== undefined) out.exp = exp;
  return out;
}

export function newAttributes(raw: unknown, now: number): Attributes {
  const a = parseAttributes(raw);
  return { enabled: a.enabled ?? true, ...(a.nbf !== undefined ? { nbf: a.nbf } : {}), ...(a.exp !== undefined ? { exp: a.exp } : {}), created: now, updated: now };
}

export function applyAttributes(target: Attributes, raw: unknown, now: number): void {
  const a = parseAttributes(raw);
  if (a.enabled !== undefined) target.enabled = a.enabled;
  if (a.nbf !== undefined) target.nbf = a.nbf;
  if (a.exp !== undefined) target.exp = a.exp;
  // An update sending `"exp": null` removes the expiry (the portal's "no expiration date").
  if (typeof raw === 'object' && raw !== null && (raw as Record<string, unknown>).exp === null) delete target.exp;
  target.updated = now;
}

export function parseTags(raw: unknown): Record<string, string> | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw badParameter('tags must be an object of strings.');
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length > 15) throw badParameter('At most 15 tags are allowed.');
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw badParameter(`Tag '${k}' must have a string value.`);
    if (k.length > 512 || v.length > 512) throw badParameter(`Tag '${k}' is too long.`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

export function attributesOut(a: Attributes, recoveryLevel: RecoveryLevel, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    enabled: a.enabled,
    ...(a.nbf !== undefined ? { nbf: a.nbf } : {}),
    ...(a.exp !== undefined ? { exp: a.exp } : {}),
    created: a.created,
    updated: a.updated,
    recoveryLevel,
    recoverableDays: RECOVERABLE_DAYS,
    ...extra,
  };
}

export function deletion(now: number): Deletion {
  return { deletedDate: now, scheduledPurgeDate: now + RECOVERABLE_DAYS * 86400 };
}

export function deletedFields(baseUrl: string, collection: 'deletedkeys' | 'deletedsecrets', name: string, d: Deletion): Record<string, unknown> {
  return { recoveryId: `${baseUrl}/${collection}/${name}`, deletedDate: d.deletedDate, scheduledPurgeDate: d.scheduledPurgeDate };
}

/** Finds a live entry (case-insensitively); a soft-deleted one reads as not found. */
export function live<E extends { deleted?: Deletion }>(map: Record<string, E>, kind: ObjectKind, name: string): E {
  const entry = map[validName(name).toLowerCase()];
  if (!entry || entry.deleted) throw notFound(kind, name);
  return entry;
}

export function deletedEntry<E extends { deleted?: Deletion }>(map: Record<string, E>, kind: ObjectKind, name: string): E & { deleted: Deletion } {
  const entry = map[validName(name).toLowerCase()];
  if (!entry || !entry.deleted) throw notFound(kind, name, true);
  return entry as E & { deleted: Deletion };
}

/** A new version may be added unless the name is soft-deleted. */
export function assertWritable(entry: { deleted?: Deletion; name: string } | undefined, kind: ObjectKind, name: string): void {
  if (entry?.deleted) throw deletedButRecoverable(kind, entry.name ?? name);
}

export function findVersion<V extends { version: string }>(versions: V[], version: string | undefined, kind: ObjectKind, name: string): V {
  if (!version) {
    const last = versions[versions.length - 1];
    if (!last) throw notFound(kind, name);
    return last;
  }
  const v = versions.find((x) => x.version === version.toLowerCase());
  if (!v) throw notFound(kind, `${name}/${version}`);
  return v;
}

export function b64(v: unknown, field: string, required = true): Buffer | undefined {
  if (v === undefined || v === null) {
    if (required) throw badParameter(`The '${field}' field is required.`);
    return undefined;
  }
  if (typeof v !== 'string') throw badParameter(`The '${field}' field must be a base64url string.`);
  return Buffer.from(v, 'base64url');
}

// ---------------------------------------------------------------- backups

const MAGIC = Buffer.from('KTKV1');

/** Same key for every emulator of one subscription, as backups restore within a subscription. */
export function backupKeyFor(subscriptionId: string): Buffer {
  return createHash('sha256').update(`keyturn-keyvault-backup|${subscriptionId}`).digest();
}

export function seal(key: Buffer, payload: unknown): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([c.update(JSON.stringify(payload), 'utf8'), c.final()]);
  return Buffer.concat([MAGIC, iv, c.getAuthTag(), ct]).toString('base64url');
}

export function unseal(key: Buffer, blob: unknown): unknown {
  if (typeof blob !== 'string' || !blob) throw badParameter('The backup blob (value) is required.');
  const raw = Buffer.from(blob, 'base64url');
  try {
    if (!raw.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('magic');
    const iv = raw.subarray(5, 17);
    const tag = raw.subarray(17, 33);
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(tag);
    return JSON.parse(Buffer.concat([d.update(raw.subarray(33)), d.final()]).toString('utf8'));
  } catch {
    throw badParameter('Backup blob contains invalid or corrupt version.');
  }
}
