/**
 * The local directory: a few named principals with fixed object ids, and their
 * bearer tokens. A token is an unsigned JWT (`alg: none`) whose `oid` claim is the
 * principal's object id or its directory name; only `oid` is read locally (no
 * signature, `exp` or `aud` checks), as the emulators are dev tools.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';

export interface Principal {
  name: string;
  objectId: string;
  description: string;
}

const OID_PREFIX = '00000000-0000-0000-0000-00000000';

export const PRINCIPALS: readonly Principal[] = Object.freeze([
  { name: 'keyturn-app', objectId: `${OID_PREFIX}a001`, description: "the app's identity (the local credential's tokens)" },
  { name: 'contoso-admin', objectId: `${OID_PREFIX}a002`, description: "the customer's administrator (owns contoso-byok)" },
  { name: 'intruder', objectId: `${OID_PREFIX}a003`, description: 'a principal with no roles anywhere' },
  { name: 'operator', objectId: `${OID_PREFIX}a004`, description: "Keyturn's operator (administers keyturn-local)" },
]);

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isGuid(value: string): boolean {
  return GUID.test(value);
}

/** The object id for a directory name or an object id (any GUID: unknown principals simply have no roles). */
export function resolveObjectId(nameOrId: string): string | undefined {
  const known = PRINCIPALS.find((p) => p.name === nameOrId || p.objectId === nameOrId.toLowerCase());
  if (known) return known.objectId;
  return isGuid(nameOrId) ? nameOrId.toLowerCase() : undefined;
}

export function principalName(objectId: string): string | undefined {
  return PRINCIPALS.find((p) => p.objectId === objectId)?.name;
}

/** An unsigned JWT naming a principal (directory name or object id) in `oid`. */
export function tokenFor(nameOrId: string): string {
  const oid = resolveObjectId(nameOrId);
  if (!oid) throw new Error(`Unknown principal '${nameOrId}': use a directory name (${PRINCIPALS.map((p) => p.name).join(', ')}) or an object id`);
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o), 'utf8').toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ oid, iat: Math.floor(Date.now() / 1000) })}.`;
}

/** A TokenCredential that yields the principal's tokens for any scope (Key Vault, ARM). */
export function credentialFor(nameOrId: string): TokenCredential {
  const token = tokenFor(nameOrId);
  return { getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) };
}

/**
 * The caller's object id from an `Authorization` header, or undefined when the
 * header carries no bearer, or one that is not an unsigned-JWT-shaped token with a
 * usable `oid` (those get the 401 challenge).
 */
export function callerObjectId(authorization: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec((authorization ?? '').trim());
  if (!m) return undefined;
  const parts = (m[1] as string).split('.');
  if (parts.length !== 3 && parts.length !== 2) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
    const oid = Object.prototype.hasOwnProperty.call(payload, 'oid') ? (payload as { oid?: unknown }).oid : undefined;
    return typeof oid === 'string' ? resolveObjectId(oid) : undefined;
  } catch {
    return undefined;
  }
}
