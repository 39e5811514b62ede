/**
 * Signing keys in Key Vault: one key per generation (`{KEYTURN_SIGNING_KEY_NAME}-{n}`),
 * always addressed by version. Created with `exp` and never `nbf` (the SDK checks nbf
 * locally against the machine clock, which the emulator's clock runs ahead of). The
 * state is a tag; a retired key is disabled. Signing sends only the SHA-256 digest.
 */
import { createHash, createPublicKey } from 'node:crypto';
import type { CryptographyClient, JsonWebKey, KeyVaultKey } from '@azure/keyvault-keys';
import { base64url, exportJWK } from 'jose';
import type { KeyState, PublicJwk, SigningAlg } from '../../domain/signingKeys';
import { type KeyturnError, dependencyError } from '../../errors';
import type { SigningKeyStore } from '../../services/signing/ports';
import type { KeyVaultClients } from '../keyVaultClients';

export const STATE_TAG = 'keyturn-state';
export const ISSUER_TAG = 'keyturn-issuer';

const VERBS = { create: 'create', update: 'update', sign: 'sign with' } as const;

/**
 * A fixed message and only the failure's name, code and status in the details (they
 * reach HTTP answers); the SDK's error, whose text may say more, stays as `cause` for logs.
 */
export const keyVaultFailure = (operation: keyof typeof VERBS, e: unknown): KeyturnError =>
  dependencyError(`Key Vault could not ${VERBS[operation]} a signing key; retry later`, e);

/** The public members only, normalised by jose (the vault's JWK carries Uint8Arrays). */
async function publicJwkOf(key: KeyVaultKey): Promise<PublicJwk> {
  const k = key.key as JsonWebKey;
  const b64 = (bytes: Uint8Array | undefined) => (bytes ? base64url.encode(bytes) : undefined);
  const raw = k.kty?.startsWith('EC')
    ? { kty: 'EC', crv: k.crv, x: b64(k.x), y: b64(k.y) }
    : { kty: 'RSA', n: b64(k.n), e: b64(k.e) };
  const { kty, n, e, crv, x, y } = await exportJWK(createPublicKey({ key: raw, format: 'jwk' }));
  return kty === 'EC' ? { kty: 'EC', crv, x, y } : { kty: 'RSA', n, e };
}

export function keyVaultSigningKeys(clients: KeyVaultClients, options: { vault: string; issuer: string }): SigningKeyStore {
  const { vault, issuer } = options;
  const client = () => clients.keys(vault);
  const tags = (state: KeyState) => ({ [STATE_TAG]: state, [ISSUER_TAG]: issuer });
  const cryptoClients = new Map<string, CryptographyClient>();

  return {
    async create({ name, keyType, expiresAt, state }) {
      const common = { expiresOn: expiresAt, keyOps: ['sign' as const, 'verify' as const], tags: tags(state) };
      let key: KeyVaultKey;
      try {
        key =
          keyType === 'EC-P256'
            ? await client().createEcKey(name, { ...common, curve: 'P-256' })
            : await client().createRsaKey(name, { ...common, keySize: 2048 });
      } catch (e) {
        throw keyVaultFailure('create', e);
      }
      const version = key.properties.version;
      if (!version) throw keyVaultFailure('create', new Error('no version in the answer'));
      return {
        vaultKey: { vault, name, version },
        publicJwk: await publicJwkOf(key),
        createdAt: key.properties.createdOn ?? new Date(),
      };
    },

    async setState(ref, state) {
      try {
        await client().updateKeyProperties(ref.name, ref.version, { enabled: state !== 'retired', tags: tags(state) });
      } catch (e) {
        throw keyVaultFailure('update', e);
      }
    },

    async sign(ref, alg: SigningAlg, data) {
      const id = `${ref.name}/${ref.version}`;
      let crypto = cryptoClients.get(id);
      if (!crypto) {
        // Shares the KeyClient's pipeline: no second auth challenge per key.
        crypto = client().getCryptographyClient(ref.name, { keyVersion: ref.version });
        cryptoClients.set(id, crypto);
      }
      const digest = createHash('sha256').update(data).digest();
      try {
        return (await crypto.sign(alg, digest)).result;
      } catch (e) {
        cryptoClients.delete(id);
        throw keyVaultFailure('sign', e);
      }
    },
  };
}
