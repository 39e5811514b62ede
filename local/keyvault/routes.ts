/**
 * The vault's one route table: every data-plane path the emulator answers, by
 * collection, method and the path after the object's name. Literal segments match
 * case-insensitively; `{version}` matches any segment; `slash` also accepts one
 * trailing `/` (the SDKs send `/keys/{name}/` and `/secrets/{name}/{version}/`).
 * Anything else answers 501 naming the operation.
 */
import { validName, type VaultContext, type VaultRequest, type VaultResponse } from './common';
import { notImplemented } from './errors';
import { CRYPTO_OPS, KEYS, createKey, cryptoOp, getKey, getRotationPolicy, importKey, putRotationPolicy, rotateKey, updateKey } from './keys';
import { SECRETS, getSecret, setSecret, updateSecret } from './secrets';
import { backup, getDeleted, list, listDeleted, purge, recover, restore, softDelete, versions, type VersionedEntry, type VersionedKind } from './versioned';

type Handler = (ctx: VaultContext, req: VaultRequest, name: string, params: string[]) => VaultResponse | Promise<VaultResponse>;

interface Route {
  method: string;
  /** After `/{collection}/{name}`: literals, `{version}`, or `{op}` (a key operation in CRYPTO_OPS). */
  tail: string[];
  slash?: boolean;
  handle: Handler;
}

interface Collection {
  /** GET `/{collection}`; POST `/{collection}/restore` when `restore` is set. */
  list: (ctx: VaultContext, req: VaultRequest) => VaultResponse;
  restore?: (ctx: VaultContext, req: VaultRequest) => VaultResponse;
  routes: Route[];
}

const r = (method: string, path: string, handle: Handler, slash = false): Route => ({ method, tail: path ? path.split('/') : [], slash, handle });

function objectRoutes<E extends VersionedEntry>(k: VersionedKind<E>): { shared: Route[]; deleted: Collection } {
  return {
    shared: [
      r('DELETE', '', (ctx, req, name) => softDelete(k, ctx, req, name)),
      r('GET', 'versions', (ctx, req, name) => versions(k, ctx, req, name), k.collection === 'secrets'),
      r('POST', 'backup', (ctx, _req, name) => backup(k, ctx, name), k.collection === 'secrets'),
    ],
    deleted: {
      list: (ctx, req) => listDeleted(k, ctx, req),
      routes: [
        r('GET', '', (ctx, req, name) => getDeleted(k, ctx, req, name), true),
        r('DELETE', '', (ctx, _req, name) => purge(k, ctx, name), true),
        r('POST', 'recover', (ctx, req, name) => recover(k, ctx, req, name)),
      ],
    },
  };
}

const keys = objectRoutes(KEYS);
const secrets = objectRoutes(SECRETS);

const COLLECTIONS: Record<string, Collection> = {
  keys: {
    list: (ctx, req) => list(KEYS, ctx, req),
    restore: (ctx, req) => restore(KEYS, ctx, req),
    routes: [
      r('GET', '', (ctx, req, name) => getKey(ctx, req, name, undefined), true),
      r('PATCH', '', (ctx, req, name) => updateKey(ctx, name, undefined, req), true),
      r('PUT', '', (ctx, req, name) => importKey(ctx, name, req)),
      ...keys.shared,
      r('POST', 'create', (ctx, req, name) => createKey(ctx, name, req)),
      r('POST', 'rotate', (ctx, req, name) => rotateKey(ctx, req, name)),
      r('GET', 'rotationpolicy', (ctx, req, name) => getRotationPolicy(ctx, req, name)),
      r('PUT', 'rotationpolicy', (ctx, req, name) => putRotationPolicy(ctx, name, req)),
      r('POST', '{op}', (ctx, req, name, [op]) => cryptoOp(ctx, name, undefined, op!, req)),
      r('POST', 'release', () => {
        throw notImplemented('release key');
      }),
      // An empty version (`/keys/{name}//sign`, `/keys/{name}/{version}/` read as `{version}` = '') is the latest.
      r('GET', '{version}', (ctx, req, name, [version]) => getKey(ctx, req, name, version || undefined), true),
      r('PATCH', '{version}', (ctx, req, name, [version]) => updateKey(ctx, name, version || undefined, req), true),
      r('POST', '{version}/{op}', (ctx, req, name, [version, op]) => cryptoOp(ctx, name, version || undefined, op!, req)),
    ],
  },
  deletedkeys: keys.deleted,
  secrets: {
    list: (ctx, req) => list(SECRETS, ctx, req),
    restore: (ctx, req) => restore(SECRETS, ctx, req),
    routes: [
      r('GET', '', (ctx, req, name) => getSecret(ctx, name, undefined, req), true),
      r('PATCH', '', (ctx, req, name) => updateSecret(ctx, name, undefined, req), true),
      r('PUT', '', (ctx, req, name) => setSecret(ctx, name, req)),
      ...secrets.shared,
      r('GET', '{version}', (ctx, req, name, [version]) => getSecret(ctx, name, version, req), true),
      r('PATCH', '{version}', (ctx, req, name, [version]) => updateSecret(ctx, name, version, req), true),
    ],
  },
  deletedsecrets: secrets.deleted,
};

/** The params of `route` for `tail`, or undefined when it does not match. */
function matchTail(route: Route, tail: string[]): string[] | undefined {
  const parts = route.slash && tail.length === route.tail.length + 1 && tail[tail.length - 1] === '' ? tail.slice(0, -1) : tail;
  if (parts.length !== route.tail.length) return undefined;
  const params: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const want = route.tail[i]!;
    const got = parts[i]!;
    if (want === '{version}') params.push(got);
    else if (want === '{op}') {
      if (!CRYPTO_OPS.has(got.toLowerCase())) return undefined;
      params.push(got);
    } else if (want.toLowerCase() !== got.toLowerCase()) return undefined;
  }
  return params;
}

export async function route(ctx: VaultContext, req: VaultRequest, segs: string[]): Promise<VaultResponse> {
  const [collectionName, ...rest] = segs;
  const collection = (collectionName ?? '').toLowerCase();
  const table = Object.hasOwn(COLLECTIONS, collection) ? COLLECTIONS[collection] : undefined;
  if (!table) throw notImplemented(`${req.method} /${collectionName ?? ''}${rest.length ? '/…' : ''}`);
  const m = req.method;
  const [first, ...tail] = rest;
  if (first === undefined || (rest.length === 1 && first === '')) {
    if (m === 'GET') return table.list(ctx, req);
    throw notImplemented(`${m} /${collection}`);
  }
  if (table.restore && rest.length === 1 && first === 'restore' && m === 'POST') return table.restore(ctx, req);
  const name = validName(first);
  for (const candidate of table.routes) {
    if (candidate.method !== m) continue;
    const params = matchTail(candidate, tail);
    if (params) return candidate.handle(ctx, req, name, params);
  }
  throw notImplemented(`${m} /${collection}/{name}${tail.length ? `/${tail.join('/')}` : ''}`);
}
