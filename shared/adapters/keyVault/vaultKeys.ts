/**
 * The VaultKeys port on `@azure/keyvault-keys`: every key operation of every life
 * cycle, for any vault the clients accept (settings vaults, allow-listed customer
 * vaults). No SDK type leaves this file; SDK failures become KeyturnErrors with fixed
 * messages and only name/code/status in their details (the SDK's text stays `cause`).
 */
import { createPublicKey } from 'node:crypto';
import type { CryptographyClient, JsonWebKey, KeyProperties as SdkKeyProperties, KeyVaultKey } from '@azure/keyvault-keys';
import { base64url, exportJWK } from 'jose';
import { KeyturnError, dependencyError, errorFacts, failureKind } from '../../errors';
import type { ImportedJwk, KeyAttributes, KeyOperation, KeyProperties, KeyRef, PublicKeyJwk, VaultKey, VaultKeys } from '../../ports';
import type { KeyVaultClients } from './clients';

const VERBS = {
  create: 'create',
  import: 'import',
  rotate: 'rotate',
  get: 'read',
  versions: 'list the versions of',
  update: 'update',
  backup: 'back up',
  restore: 'restore',
  delete: 'delete',
  getDeleted: 'read the deleted',
  recover: 'recover',
  purge: 'purge',
  wrap: 'wrap with',
  unwrap: 'unwrap with',
  sign: 'sign with',
} as const;
export type KeyOperationName = keyof typeof VERBS;

/** A fixed message per operation and outcome; details carry only the failure's name, code and status. */
export function keyFailure(operation: KeyOperationName, e: unknown): KeyturnError {
  if (e instanceof KeyturnError) return e; // e.g. a vault URL the allow-list refused (400)
  const { kind: _kind, ...facts } = errorFacts(e);
  void _kind;
  const kind = failureKind(e);
  if (kind === 'not-found') {
    return Object.assign(new KeyturnError('NOT_FOUND', `Key Vault has no such key to ${VERBS[operation]}`, facts), { cause: e });
  }
  if (kind === 'conflict') {
    return Object.assign(new KeyturnError('CONFLICT', `Key Vault refused to ${VERBS[operation]} the key in its current state`, facts), {
      cause: e,
    });
  }
  return dependencyError(`Key Vault could not ${VERBS[operation]} a key; retry later`, e);
}

const b64 = (bytes: Uint8Array | undefined) => (bytes ? base64url.encode(bytes) : undefined);

/** The public members only, normalised by jose (the vault's JWK carries Uint8Arrays). */
async function publicJwkOf(k: JsonWebKey | undefined): Promise<PublicKeyJwk | undefined> {
  if (!k?.kty || (!k.kty.startsWith('EC') && !k.kty.startsWith('RSA'))) return undefined;
  const raw = k.kty.startsWith('EC') ? { kty: 'EC', crv: k.crv, x: b64(k.x), y: b64(k.y) } : { kty: 'RSA', n: b64(k.n), e: b64(k.e) };
  const { kty, n, e, crv, x, y } = await exportJWK(createPublicKey({ key: raw, format: 'jwk' }));
  return kty === 'EC' ? { kty: 'EC', crv, x, y } : { kty: 'RSA', n, e };
}

function propertiesOf(p: SdkKeyProperties, key?: KeyVaultKey): KeyProperties {
  return {
    vaultUrl: p.vaultUrl,
    name: p.name,
    version: p.version ?? '',
    ...(key?.keyType ? { keyType: key.keyType } : {}),
    enabled: p.enabled !== false,
    ...(key?.keyOperations ? { keyOps: [...key.keyOperations] as KeyOperation[] } : {}),
    tags: { ...(p.tags ?? {}) },
    ...(p.expiresOn ? { expiresOn: p.expiresOn } : {}),
    ...(p.createdOn ? { createdOn: p.createdOn } : {}),
    ...(p.updatedOn ? { updatedOn: p.updatedOn } : {}),
  };
}

async function vaultKeyOf(key: KeyVaultKey): Promise<VaultKey> {
  const publicJwk = await publicJwkOf(key.key);
  return { properties: propertiesOf(key.properties, key), ...(publicJwk ? { publicJwk } : {}) };
}

/** Attributes as the SDK names them; only those given (an update changes nothing else). */
const sdkAttributes = (a: KeyAttributes = {}) => ({
  ...(a.enabled !== undefined ? { enabled: a.enabled } : {}),
  // null clears the expiry: the SDK sends `"exp": null` (its types say Date only).
  ...(a.expiresOn !== undefined ? { expiresOn: a.expiresOn as Date } : {}),
  ...(a.keyOps ? { keyOps: [...a.keyOps] } : {}),
  ...(a.tags ? { tags: { ...a.tags } } : {}),
});

const JWK_BYTES = ['n', 'e', 'd', 'dp', 'dq', 'qi', 'p', 'q', 'x', 'y'] as const;

function sdkJwk(jwk: ImportedJwk): JsonWebKey {
  const out: Record<string, unknown> = { kty: jwk.kty, ...(jwk.crv ? { crv: jwk.crv } : {}) };
  for (const member of JWK_BYTES) {
    const value = jwk[member];
    if (value !== undefined) out[member] = base64url.decode(value);
  }
  return out as JsonWebKey;
}

/** Soft delete and recovery are long-running on Azure; the emulator answers at once. */
const POLL = { intervalInMs: 500 };

/** `customerTenantId`: every call reaches the vault as Keyturn in that customer's Entra tenant (BYOK, cross-tenant). */
export function vaultKeys(clients: KeyVaultClients, options: { customerTenantId?: string } = {}): VaultKeys {
  const keys = (vaultUrl: string) => clients.keysAt(vaultUrl, options);
  const cryptoClients = new Map<string, CryptographyClient>();
  const cryptoId = (ref: KeyRef) => `${clients.checkedUrl(ref.vaultUrl)}/keys/${ref.name.toLowerCase()}/${ref.version ?? ''}`;
  /**
   * One CryptographyClient per key version, sharing the KeyClient's pipeline (no second
   * auth challenge). It reads the key on first use and caches it: then it refuses ON THE
   * CLIENT any operation past the key's `expiresOn` or outside its `keyOps` (no request
   * is sent), so a key that must keep decrypting/unwrapping carries no `exp`. An update
   * or a failure drops the cached client so the next call reads the key again.
   */
  const crypto = (ref: KeyRef & { version: string }): CryptographyClient => {
    const id = cryptoId(ref);
    let client = cryptoClients.get(id);
    if (!client) {
      client = keys(ref.vaultUrl).getCryptographyClient(ref.name, { keyVersion: ref.version });
      cryptoClients.set(id, client);
    }
    return client;
  };
  const forget = (ref: KeyRef) => {
    const prefix = cryptoId({ ...ref, version: '' });
    for (const id of cryptoClients.keys()) if (id.startsWith(prefix)) cryptoClients.delete(id);
  };
  const attempt = async <T>(operation: KeyOperationName, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (e) {
      throw keyFailure(operation, e);
    }
  };
  const cryptoOp = async <T>(operation: 'wrap' | 'unwrap' | 'sign', ref: KeyRef & { version: string }, run: (c: CryptographyClient) => Promise<T>) => {
    try {
      return await run(crypto(ref));
    } catch (e) {
      forget(ref);
      throw keyFailure(operation, e);
    }
  };

  return {
    create: (vaultUrl, name, spec, attributes) =>
      attempt('create', async () => {
        const client = keys(vaultUrl);
        const common = sdkAttributes(attributes);
        const key =
          spec.kty === 'EC'
            ? await client.createEcKey(name, { ...common, curve: spec.curve, hsm: spec.hsm ?? false })
            : await client.createRsaKey(name, { ...common, keySize: spec.size ?? 2048, hsm: spec.hsm ?? false });
        if (!key.properties.version) throw new Error('no version in the answer');
        return vaultKeyOf(key);
      }),

    import: (vaultUrl, name, jwk, attributes) =>
      attempt('import', async () => {
        const { keyOps, ...rest } = sdkAttributes(attributes);
        const key = await keys(vaultUrl).importKey(name, { ...sdkJwk(jwk), ...(keyOps ? { keyOps } : {}) }, rest);
        return vaultKeyOf(key);
      }),

    rotate: (vaultUrl, name) => attempt('rotate', async () => vaultKeyOf(await keys(vaultUrl).rotateKey(name))),

    async get(ref) {
      try {
        return await vaultKeyOf(await keys(ref.vaultUrl).getKey(ref.name, ref.version ? { version: ref.version } : {}));
      } catch (e) {
        if (failureKind(e) === 'not-found') return undefined;
        throw keyFailure('get', e);
      }
    },

    async versions(vaultUrl, name) {
      try {
        const out: KeyProperties[] = [];
        for await (const p of keys(vaultUrl).listPropertiesOfKeyVersions(name)) out.push(propertiesOf(p));
        return out;
      } catch (e) {
        if (failureKind(e) === 'not-found') return [];
        throw keyFailure('versions', e);
      }
    },

    update: (ref, changes) =>
      attempt('update', async () => {
        forget(ref);
        const client = keys(ref.vaultUrl);
        const options = sdkAttributes(changes);
        const key = ref.version ? await client.updateKeyProperties(ref.name, ref.version, options) : await client.updateKeyProperties(ref.name, options);
        return propertiesOf(key.properties, key);
      }),

    backup: (vaultUrl, name) =>
      attempt('backup', async () => {
        const blob = await keys(vaultUrl).backupKey(name);
        if (!blob) throw new Error('no backup in the answer');
        return blob;
      }),

    restore: (vaultUrl, backup) => attempt('restore', async () => vaultKeyOf(await keys(vaultUrl).restoreKeyBackup(backup))),

    delete: (vaultUrl, name) =>
      attempt('delete', async () => {
        forget({ vaultUrl, name });
        await (await keys(vaultUrl).beginDeleteKey(name, POLL)).pollUntilDone();
      }),

    getDeleted: async (vaultUrl, name) => {
      try {
        const d = await keys(vaultUrl).getDeletedKey(name);
        return { name: d.name, ...(d.properties.deletedOn ? { deletedOn: d.properties.deletedOn } : {}), ...(d.properties.scheduledPurgeDate ? { scheduledPurgeDate: d.properties.scheduledPurgeDate } : {}) };
      } catch (e) {
        if (failureKind(e) === 'not-found') return undefined;
        throw keyFailure('getDeleted', e);
      }
    },

    recover: (vaultUrl, name) =>
      attempt('recover', async () => {
        const client = keys(vaultUrl);
        await (await client.beginRecoverDeletedKey(name, POLL)).pollUntilDone();
        return vaultKeyOf(await client.getKey(name));
      }),

    purge: (vaultUrl, name) => attempt('purge', () => keys(vaultUrl).purgeDeletedKey(name)),

    wrap: (ref, alg, key) => cryptoOp('wrap', ref, async (c) => (await c.wrapKey(alg, key)).result),
    unwrap: (ref, alg, wrapped) => cryptoOp('unwrap', ref, async (c) => (await c.unwrapKey(alg, wrapped)).result),
    sign: (ref, alg, digest) => cryptoOp('sign', ref, async (c) => (await c.sign(alg, digest)).result),
  };
}
