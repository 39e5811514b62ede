/** Secret operations: set, get, list, update, backup and soft delete. */
import {
  applyAttributes,
  assertWritable,
  attributesOut,
  body,
  deletedEntry,
  deletedFields,
  deletion,
  findVersion,
  live,
  newAttributes,
  newVersionId,
  parseTags,
  seal,
  unseal,
  validName,
  type VaultContext,
  type VaultRequest,
  type VaultResponse,
  type Shown,
} from './common';
import { badParameter, conflict, forbidden, notImplemented, purgeProtected } from './errors';
import { pageOf } from './paging';
import type { Deletion, SecretEntry, SecretVersion } from './store';

/** The service's limit on a secret value. */
const MAX_VALUE_BYTES = 25 * 1024;

const sid = (base: string, e: SecretEntry, v: SecretVersion): string => `${base}/secrets/${e.name}/${v.version}`;

function meta(at: Shown, v: SecretVersion): Record<string, unknown> {
  return {
    attributes: attributesOut(v.attributes, at.recoveryLevel),
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags ? { tags: v.tags } : {}),
  };
}

function bundle(at: Shown, e: SecretEntry, v: SecretVersion, withValue: boolean): Record<string, unknown> {
  return { ...(withValue ? { value: v.value } : {}), id: sid(at.baseUrl, e, v), ...meta(at, v) };
}

function item(at: Shown, e: SecretEntry, v: SecretVersion, withVersion: boolean): Record<string, unknown> {
  return { id: withVersion ? sid(at.baseUrl, e, v) : `${at.baseUrl}/secrets/${e.name}`, ...meta(at, v) };
}

const latest = (e: SecretEntry): SecretVersion => e.versions[e.versions.length - 1] as SecretVersion;

function sorted(map: Record<string, SecretEntry>, deleted: boolean): SecretEntry[] {
  return Object.keys(map)
    .sort()
    .map((k) => map[k] as SecretEntry)
    .filter((e) => Boolean(e.deleted) === deleted && e.versions.length > 0);
}

function set(ctx: VaultContext, name: string, req: VaultRequest): VaultResponse {
  const b = body(req);
  if (typeof b.value !== 'string') throw badParameter('The value field is required and must be a string.');
  if (Buffer.byteLength(b.value, 'utf8') > MAX_VALUE_BYTES) throw badParameter('The secret value exceeds 25 KB.');
  if (b.contentType !== undefined && b.contentType !== null && typeof b.contentType !== 'string') throw badParameter('contentType must be a string.');
  const tags = parseTags(b.tags);
  const map = ctx.store.state.secrets;
  const key = name.toLowerCase();
  assertWritable(map[key], 'Secret', name);
  const v: SecretVersion = {
    version: newVersionId(),
    value: b.value,
    ...(typeof b.contentType === 'string' ? { contentType: b.contentType } : {}),
    attributes: newAttributes(b.attributes, ctx.clock.nowSeconds()),
    ...(tags ? { tags } : {}),
  };
  const entry = map[key] ?? { name, versions: [] };
  entry.versions.push(v);
  map[key] = entry;
  ctx.newVersion('Secret', entry.name, v.version, v.attributes);
  return { status: 200, body: bundle(req, entry, v, true) };
}

function get(ctx: VaultContext, name: string, version: string | undefined, req: VaultRequest): VaultResponse {
  const entry = live(ctx.store.state.secrets, 'Secret', name);
  const v = findVersion(entry.versions, version, 'Secret', name);
  // The service still returns expired and not-yet-valid secrets; only disabled ones are refused.
  if (!v.attributes.enabled) throw forbidden('Operation get is not allowed on a disabled secret.', 'SecretDisabled');
  return { status: 200, body: bundle(req, entry, v, true) };
}

function update(ctx: VaultContext, name: string, version: string | undefined, req: VaultRequest): VaultResponse {
  const entry = live(ctx.store.state.secrets, 'Secret', name);
  const v = findVersion(entry.versions, version, 'Secret', name);
  const b = body(req);
  if (b.value !== undefined) throw badParameter('The value of a secret version cannot be updated; set a new version instead.');
  const tags = parseTags(b.tags);
  if (b.contentType !== undefined && b.contentType !== null && typeof b.contentType !== 'string') throw badParameter('contentType must be a string.');
  applyAttributes(v.attributes, b.attributes, ctx.clock.nowSeconds());
  if (typeof b.contentType === 'string') v.contentType = b.contentType;
  if (tags) v.tags = tags;
  return { status: 200, body: bundle(req, entry, v, false) };
}

function deletedBundle(at: Shown, e: SecretEntry, d: Deletion): Record<string, unknown> {
  // The deleted bundle carries no value (the service omits it too).
  return { ...bundle(at, e, latest(e), false), ...deletedFields(at.baseUrl, 'deletedsecrets', e.name, d) };
}

function backup(ctx: VaultContext, name: string): VaultResponse {
  const e = live(ctx.store.state.secrets, 'Secret', name);
  return { status: 200, body: { value: seal(ctx.backupKey, { kind: 'Secret', entry: { name: e.name, versions: e.versions } }) } };
}

function restore(ctx: VaultContext, req: VaultRequest): VaultResponse {
  const payload = unseal(ctx.backupKey, body(req).value) as { kind?: string; entry?: SecretEntry };
  if (payload.kind !== 'Secret' || !payload.entry) throw badParameter('The backup blob is not a secret backup.');
  const { name, versions } = payload.entry;
  const key = name.toLowerCase();
  const existing = ctx.store.state.secrets[key];
  if (existing?.deleted) throw conflict(`Secret ${existing.name} is currently in a deleted but recoverable state; it must be purged before a backup can be restored.`);
  if (existing) throw conflict(`Secret ${existing.name} already exists in this vault; a backup can only be restored under an unused name.`);
  const entry: SecretEntry = { name, versions };
  ctx.store.state.secrets[key] = entry;
  return { status: 200, body: bundle(req, entry, latest(entry), false) };
}

export function handleSecrets(ctx: VaultContext, req: VaultRequest, segs: string[]): VaultResponse {
  const m = req.method;
  const [a, b] = segs;
  const map = ctx.store.state.secrets;
  if (segs.length === 0 || (segs.length === 1 && a === '')) {
    if (m !== 'GET') throw notImplemented(`${m} /secrets`);
    const items = sorted(map, false).map((e) => item(req, e, latest(e), false));
    return { status: 200, body: pageOf(items, req.baseUrl, '/secrets', req.query) };
  }
  if (a === 'restore' && segs.length === 1 && m === 'POST') return restore(ctx, req);
  const name = validName(a);
  if (segs.length === 1 || (segs.length === 2 && b === '')) {
    if (m === 'GET') return get(ctx, name, undefined, req);
    if (m === 'PATCH') return update(ctx, name, undefined, req);
    if (m === 'PUT' && segs.length === 1) return set(ctx, name, req);
    if (m === 'DELETE' && segs.length === 1) {
      const e = live(map, 'Secret', name);
      e.deleted = deletion(ctx.clock.nowSeconds());
      return { status: 200, body: deletedBundle(req, e, e.deleted) };
    }
  }
  if (segs.length === 2 || (segs.length === 3 && segs[2] === '')) {
    const op = (b as string).toLowerCase();
    if (m === 'GET' && op === 'versions') {
      const e = map[name.toLowerCase()];
      const items = e && !e.deleted ? e.versions.map((v) => item(req, e, v, true)) : [];
      return { status: 200, body: pageOf(items, req.baseUrl, `/secrets/${encodeURIComponent(name)}/versions`, req.query) };
    }
    if (m === 'POST' && op === 'backup') return backup(ctx, name);
    if (m === 'GET') return get(ctx, name, b, req);
    if (m === 'PATCH') return update(ctx, name, b, req);
  }
  throw notImplemented(`${m} /secrets/${segs.map((s, i) => (i === 0 ? '{name}' : s)).join('/')}`);
}

export function handleDeletedSecrets(ctx: VaultContext, req: VaultRequest, segs: string[]): VaultResponse {
  const m = req.method;
  const [a, b] = segs;
  const map = ctx.store.state.secrets;
  if (segs.length === 0 || (segs.length === 1 && a === '')) {
    if (m !== 'GET') throw notImplemented(`${m} /deletedsecrets`);
    const items = sorted(map, true).map((e) => ({
      ...item(req, e, latest(e), false),
      ...deletedFields(req.baseUrl, 'deletedsecrets', e.name, e.deleted!),
    }));
    return { status: 200, body: pageOf(items, req.baseUrl, '/deletedsecrets', req.query) };
  }
  const name = validName(a);
  if (segs.length === 1 || (segs.length === 2 && b === '')) {
    const e = deletedEntry(map, 'Secret', name);
    if (m === 'GET') return { status: 200, body: deletedBundle(req, e, e.deleted) };
    if (m === 'DELETE') {
      if (ctx.purgeProtection) throw purgeProtected('Secret', e.name, ctx.vaultName);
      delete map[name.toLowerCase()];
      return { status: 204 };
    }
  }
  if (segs.length === 2 && b === 'recover' && m === 'POST') {
    const e = deletedEntry(map, 'Secret', name);
    delete (e as SecretEntry).deleted;
    return { status: 200, body: bundle(req, e, latest(e), false) };
  }
  throw notImplemented(`${m} /deletedsecrets/${segs.slice(1).join('/')}`);
}
