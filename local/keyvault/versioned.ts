/**
 * What keys and secrets share: named objects with versions, soft delete and backups.
 * One implementation of list, versions, delete, recover, purge, backup and restore,
 * parameterised by the kind's JSON (`keys.ts`, `secrets.ts`).
 */
import { badParameter, conflict, purgeProtected } from './errors';
import { body, deletedEntry, deletedFields, deletion, live, seal, unseal, type Shown, type VaultContext, type VaultRequest, type VaultResponse } from './common';
import type { ObjectKind } from './events';
import { pageOf } from './paging';
import type { Deletion } from './store';

export interface VersionedEntry<V extends { version: string } = { version: string }> {
  /** Name with the casing it was created with (names are case-insensitive). */
  name: string;
  versions: V[];
  deleted?: Deletion;
}

/** One kind of versioned object: where it lives and how it is shown. */
export interface VersionedKind<E extends VersionedEntry> {
  kind: ObjectKind;
  collection: 'keys' | 'secrets';
  deletedCollection: 'deletedkeys' | 'deletedsecrets';
  entries(ctx: VaultContext): Record<string, E>;
  /** The object's JSON without any secret value (a KeyBundle, or a SecretBundle without `value`). */
  bundle(at: Shown, entry: E, version: E['versions'][number]): Record<string, unknown>;
  /** A list item: the object (`withVersion` false) or one of its versions. */
  item(at: Shown, entry: E, version: E['versions'][number], withVersion: boolean): Record<string, unknown>;
  /** What a backup blob carries of the entry (every version). */
  backupOf(entry: E): Record<string, unknown>;
  /** The entry a backup restores. */
  restored(entry: E): E;
}

type Deleted<E> = E & { deleted: Deletion };

export const latest = <E extends VersionedEntry>(entry: E): E['versions'][number] => entry.versions[entry.versions.length - 1] as E['versions'][number];

function sorted<E extends VersionedEntry>(map: Record<string, E>, deleted: boolean): E[] {
  return Object.keys(map)
    .sort()
    .map((k) => map[k] as E)
    .filter((e) => Boolean(e.deleted) === deleted && e.versions.length > 0);
}

function deletedBundle<E extends VersionedEntry>(k: VersionedKind<E>, at: Shown, entry: Deleted<E>): Record<string, unknown> {
  return { ...k.bundle(at, entry, latest(entry)), ...deletedFields(at.baseUrl, k.deletedCollection, entry.name, entry.deleted) };
}

export function list<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, req: VaultRequest): VaultResponse {
  const items = sorted(k.entries(ctx), false).map((e) => k.item(req, e, latest(e), false));
  return { status: 200, body: pageOf(items, req.baseUrl, `/${k.collection}`, req.query) };
}

/** A deleted or unknown name lists no versions (as the service does). */
export function versions<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, req: VaultRequest, name: string): VaultResponse {
  const entry = k.entries(ctx)[name.toLowerCase()];
  const items = entry && !entry.deleted ? entry.versions.map((v) => k.item(req, entry, v, true)) : [];
  return { status: 200, body: pageOf(items, req.baseUrl, `/${k.collection}/${encodeURIComponent(name)}/versions`, req.query) };
}

export function softDelete<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, req: VaultRequest, name: string): VaultResponse {
  const entry = live(k.entries(ctx), k.kind, name);
  entry.deleted = deletion(ctx.clock.nowSeconds());
  return { status: 200, body: deletedBundle(k, req, entry as Deleted<E>) };
}

export function listDeleted<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, req: VaultRequest): VaultResponse {
  const items = sorted(k.entries(ctx), true).map((e) => ({
    ...k.item(req, e, latest(e), false),
    ...deletedFields(req.baseUrl, k.deletedCollection, e.name, e.deleted!),
  }));
  return { status: 200, body: pageOf(items, req.baseUrl, `/${k.deletedCollection}`, req.query) };
}

export function getDeleted<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, req: VaultRequest, name: string): VaultResponse {
  return { status: 200, body: deletedBundle(k, req, deletedEntry(k.entries(ctx), k.kind, name)) };
}

export function recover<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, req: VaultRequest, name: string): VaultResponse {
  const entry = deletedEntry(k.entries(ctx), k.kind, name);
  delete (entry as E).deleted;
  return { status: 200, body: k.bundle(req, entry, latest(entry)) };
}

/** Refused while the vault has purge protection (as in `infra/`). */
export function purge<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, name: string): VaultResponse {
  const map = k.entries(ctx);
  const entry = deletedEntry(map, k.kind, name);
  if (ctx.purgeProtection) throw purgeProtected(k.kind, entry.name, ctx.vaultName);
  delete map[name.toLowerCase()];
  return { status: 204 };
}

export function backup<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, name: string): VaultResponse {
  const entry = live(k.entries(ctx), k.kind, name);
  return { status: 200, body: { value: seal(ctx.backupKey, { kind: k.kind, entry: k.backupOf(entry) }) } };
}

/** Only under an unused name (a soft-deleted one must be purged first), as the service does. */
export function restore<E extends VersionedEntry>(k: VersionedKind<E>, ctx: VaultContext, req: VaultRequest): VaultResponse {
  const payload = unseal(ctx.backupKey, body(req).value) as { kind?: string; entry?: E };
  if (payload.kind !== k.kind || !payload.entry) throw badParameter(`The backup blob is not a ${k.kind.toLowerCase()} backup.`);
  const map = k.entries(ctx);
  const key = payload.entry.name.toLowerCase();
  const existing = map[key];
  if (existing?.deleted) throw conflict(`${k.kind} ${existing.name} is currently in a deleted but recoverable state; it must be purged before a backup can be restored.`);
  if (existing) throw conflict(`${k.kind} ${existing.name} already exists in this vault; a backup can only be restored under an unused name.`);
  const entry = k.restored(payload.entry);
  map[key] = entry;
  return { status: 200, body: k.bundle(req, entry, latest(entry)) };
}
