/**
 * The signing life cycle's mapping onto the VaultKeys port (not a second Key Vault
 * adapter): one key per generation (`{KEYTURN_SIGNING_KEY_NAME}-{n}`), always addressed
 * by version. Created with `exp` and never `nbf`. The state is a tag; a retired key is
 * disabled. Signing sends only the SHA-256 digest of the JWS signing input.
 */
import { createHash } from 'node:crypto';
import type { KeyState, PublicJwk, SigningAlg, SigningKeyType, VaultKeyRef } from '../../domain/signingKeys';
import { KeyturnError, dependencyError } from '../../errors';
import type { KeySpec, VaultKeys } from '../../ports';
import type { RsaSize } from '../../domain/tenantKeyPolicy';

export const STATE_TAG = 'keyturn-state';
export const ISSUER_TAG = 'keyturn-issuer';

const VERBS = { create: 'create', update: 'update', sign: 'sign with' } as const;

/**
 * A fixed message and only the failure's name, code and status in the details (they
 * reach HTTP answers); the SDK's error, whose text may say more, stays as `cause` for logs.
 */
export function keyVaultFailure(operation: keyof typeof VERBS, e: unknown): KeyturnError {
  const message = `Key Vault could not ${VERBS[operation]} a signing key; retry later`;
  if (e instanceof KeyturnError) {
    // The port's error already carries the safe facts: the same code (access denied stays so) in signing's words, the SDK's error as cause.
    const code = e.code === 'ACCESS_DENIED' ? 'ACCESS_DENIED' : 'DEPENDENCY_FAILED';
    return Object.assign(new KeyturnError(code, message, e.details), { cause: e.cause ?? e });
  }
  return dependencyError(message, e);
}

const SPEC: Record<SigningKeyType, KeySpec> = { 'RSA-2048': { kty: 'RSA', size: 2048 }, 'EC-P256': { kty: 'EC', curve: 'P-256' } };

/** Key Vault keys of one issuer: the private key never leaves the vault. */
export interface SigningVault {
  /** Creates a key (no `nbf`; `exp` as given; RSA sized by the key policy), tagged with its state and issuer; returns its public half. */
  create(input: { name: string; keyType: SigningKeyType; expiresAt: Date; state: KeyState }): Promise<{
    vaultKey: VaultKeyRef;
    publicJwk: PublicJwk;
    createdAt: Date;
  }>;
  /** Writes the state tag; `retired` also disables the key version. Idempotent. */
  setState(ref: VaultKeyRef, state: KeyState): Promise<void>;
  /** Signs the SHA-256 digest of `data` (a JWS signing input); ES256 comes back as r‖s. */
  sign(ref: VaultKeyRef, alg: SigningAlg, data: Uint8Array): Promise<Uint8Array>;
}

export function signingVault(options: {
  keys: VaultKeys;
  /** The alias (KEYTURN_VAULTS) new keys go to. */
  vaultAlias: string;
  /** A stored key reference names its vault by alias: its URL now. */
  vaultUrlOf(vaultAlias: string): string;
  issuer: string;
  /**
   * The RSA size of a new RSA signing key: the key policy's minimum when it asks for more
   * than 2048 (every key creation consults the policy); 2048 when absent.
   */
  rsaBits?: () => Promise<RsaSize>;
}): SigningVault {
  const { keys, vaultAlias, vaultUrlOf, issuer } = options;
  const specOf = async (keyType: SigningKeyType): Promise<KeySpec> => {
    const spec = SPEC[keyType];
    return spec.kty === 'RSA' && options.rsaBits ? { ...spec, size: await options.rsaBits() } : spec;
  };
  const tags = (state: KeyState) => ({ [STATE_TAG]: state, [ISSUER_TAG]: issuer });
  const at = (ref: VaultKeyRef) => ({ vaultUrl: vaultUrlOf(ref.vault), name: ref.name, version: ref.version });

  return {
    async create({ name, keyType, expiresAt, state }) {
      try {
        // Signing keys may expire: a retired key never signs again, and verification uses the published JWK.
        const made = await keys.create(vaultUrlOf(vaultAlias), name, await specOf(keyType), {
          expiresOn: expiresAt,
          keyOps: ['sign', 'verify'],
          tags: tags(state),
        });
        if (!made.publicJwk) throw new Error('no public key in the answer');
        return {
          vaultKey: { vault: vaultAlias, name, version: made.properties.version },
          publicJwk: made.publicJwk,
          createdAt: made.properties.createdOn ?? new Date(),
        };
      } catch (e) {
        throw keyVaultFailure('create', e);
      }
    },

    async setState(ref, state) {
      try {
        await keys.update(at(ref), { enabled: state !== 'retired', tags: tags(state) });
      } catch (e) {
        throw keyVaultFailure('update', e);
      }
    },

    async sign(ref, alg, data) {
      const digest = createHash('sha256').update(data).digest();
      try {
        return await keys.sign(at(ref), alg, digest);
      } catch (e) {
        throw keyVaultFailure('sign', e);
      }
    },
  };
}
