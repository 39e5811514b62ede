/** Secret operations: set, get, update; the shared ones (list, versions, delete, recover, purge, backup, restore) are in `versioned.ts`. */
import {
  applyAttributes,
  assertWritable,
  attributesOut,
  body,
  findVersion,
  live,
  newAttributes,
  newVersionId,
  parseTags,
  type VaultContext,
  type VaultRequest,
  type VaultResponse,
  type Shown,
} from './common';
import type { VersionedKind } from './versioned';
import { badParameter, forbidden } from './errors';
import type { SecretEntry, SecretVersion } from './store';

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

/** Secrets as versioned objects (`versioned.ts`): list, versions, delete, recover, purge, backup, restore. */
export const SECRETS: VersionedKind<SecretEntry> = {
  kind: 'Secret',
  collection: 'secrets',
  deletedCollection: 'deletedsecrets',
  entries: (ctx) => ctx.store.state.secrets,
  // Only get and set answer with the value; every other answer (deleted ones too) omits it, as the service does.
  bundle: (at, e, v) => bundle(at, e, v, false),
  item,
  backupOf: (e) => ({ name: e.name, versions: e.versions }),
  restored: (e) => ({ name: e.name, versions: e.versions }),
};

export { get as getSecret, set as setSecret, update as updateSecret };
