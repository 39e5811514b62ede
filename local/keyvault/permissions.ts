/**
 * Which RBAC data action a Key Vault request needs, and on which object: the table
 * the vault checks before a handler runs (so a denied call changes nothing).
 * Unknown routes need no permission here: their handler answers 4xx/501 anyway.
 */
const KV = 'Microsoft.KeyVault/vaults';

export interface RequiredPermission {
  dataAction: string;
  /** The object whose scope also counts (`…/vaults/{v}/keys/{name}`); vault scope only when absent. */
  object?: { collection: 'keys' | 'secrets'; name: string };
}

const KEY_OPS: ReadonlyMap<string, string> = new Map([
  ['sign', 'sign'],
  ['verify', 'verify'],
  ['encrypt', 'encrypt'],
  ['decrypt', 'decrypt'],
  ['wrapkey', 'wrap'],
  ['unwrapkey', 'unwrap'],
]);

const OBJECT_NAME = /^[0-9a-zA-Z-]{1,127}$/;

function on(collection: 'keys' | 'secrets', name: string | undefined, dataAction: string): RequiredPermission {
  // An invalid name is checked at vault scope; the handler then answers 400.
  return name !== undefined && OBJECT_NAME.test(name) ? { dataAction, object: { collection, name: name.toLowerCase() } } : { dataAction };
}

function keys(method: string, rest: string[]): RequiredPermission | undefined {
  const [name, b, c] = rest;
  const only = (n: number): boolean => rest.length === n || (rest.length === n + 1 && rest[n] === '');
  if (rest.length === 0 || (rest.length === 1 && name === '')) return method === 'GET' ? { dataAction: `${KV}/keys/read` } : undefined;
  if (name === 'restore' && rest.length === 1 && method === 'POST') return { dataAction: `${KV}/keys/restore/action` };
  if (only(1)) {
    if (method === 'GET') return on('keys', name, `${KV}/keys/read`);
    if (method === 'PATCH') return on('keys', name, `${KV}/keys/update/action`);
    if (method === 'PUT') return on('keys', name, `${KV}/keys/import/action`);
    if (method === 'DELETE') return on('keys', name, `${KV}/keys/delete`);
    return undefined;
  }
  const op = (rest.length === 3 && c ? c : (b ?? '')).toLowerCase();
  const crypto = KEY_OPS.get(op);
  if (method === 'POST' && crypto) return on('keys', name, `${KV}/keys/${crypto}/action`);
  if (rest.length !== 2 && !(rest.length === 3 && c === '')) return undefined;
  if (method === 'POST' && op === 'create') return on('keys', name, `${KV}/keys/create/action`);
  if (method === 'POST' && op === 'rotate') return on('keys', name, `${KV}/keys/rotate/action`);
  if (method === 'POST' && op === 'backup') return on('keys', name, `${KV}/keys/backup/action`);
  if (method === 'POST' && op === 'release') return on('keys', name, `${KV}/keys/release/action`);
  if (op === 'rotationpolicy') return on('keys', name, `${KV}/keyrotationpolicies/${method === 'GET' ? 'read' : 'write'}`);
  if (method === 'GET') return on('keys', name, `${KV}/keys/read`);
  if (method === 'PATCH') return on('keys', name, `${KV}/keys/update/action`);
  return undefined;
}

function secrets(method: string, rest: string[]): RequiredPermission | undefined {
  const [name, b] = rest;
  if (rest.length === 0 || (rest.length === 1 && name === '')) return method === 'GET' ? { dataAction: `${KV}/secrets/readMetadata/action` } : undefined;
  if (name === 'restore' && rest.length === 1 && method === 'POST') return { dataAction: `${KV}/secrets/restore/action` };
  const op = (b ?? '').toLowerCase();
  if (rest.length === 1 || op === '') {
    if (method === 'GET') return on('secrets', name, `${KV}/secrets/getSecret/action`);
    if (method === 'PATCH') return on('secrets', name, `${KV}/secrets/update/action`);
    if (method === 'PUT') return on('secrets', name, `${KV}/secrets/setSecret/action`);
    if (method === 'DELETE') return on('secrets', name, `${KV}/secrets/delete`);
    return undefined;
  }
  if (method === 'GET' && op === 'versions') return on('secrets', name, `${KV}/secrets/readMetadata/action`);
  if (method === 'POST' && op === 'backup') return on('secrets', name, `${KV}/secrets/backup/action`);
  if (method === 'GET') return on('secrets', name, `${KV}/secrets/getSecret/action`);
  if (method === 'PATCH') return on('secrets', name, `${KV}/secrets/update/action`);
  return undefined;
}

/** Deleted objects: reading needs `deleted{Keys,Secrets}/read`; recover and purge are actions on the object. */
function deleted(collection: 'keys' | 'secrets', method: string, rest: string[]): RequiredPermission | undefined {
  const kind = collection === 'keys' ? 'deletedKeys' : 'deletedSecrets';
  const [name, b] = rest;
  if (rest.length === 0 || (rest.length === 1 && name === '')) return method === 'GET' ? { dataAction: `${KV}/${kind}/read` } : undefined;
  if (b === 'recover' && method === 'POST') return on(collection, name, `${KV}/${collection}/recover/action`);
  if (method === 'GET') return on(collection, name, `${KV}/${kind}/read`);
  if (method === 'DELETE') return on(collection, name, `${KV}/${collection}/purge/action`);
  return undefined;
}

export function requiredPermission(method: string, segs: string[]): RequiredPermission | undefined {
  const [collection, ...rest] = segs;
  switch ((collection ?? '').toLowerCase()) {
    case 'keys':
      return keys(method, rest);
    case 'secrets':
      return secrets(method, rest);
    case 'deletedkeys':
      return deleted('keys', method, rest);
    case 'deletedsecrets':
      return deleted('secrets', method, rest);
    default:
      return undefined;
  }
}
