/**
 * The escrow of service-managed tenant keys, for export only. When Keyturn generates a
 * tenant key version it keeps the private key as PKCS#8 DER encrypted with AES-256-GCM
 * under a fresh data key; the data key is wrapped (RSA-OAEP-256) by the escrow key, a
 * dedicated key in Keyturn's vault (created on first use, sized by the key policy, no
 * `exp`, wrap/unwrap only, used by nothing but export). The sealed copy goes to Blob
 * storage (`tenant-escrow/{tenantId}/{version}`) before the version is recorded in
 * the tenant — never to Cosmos DB, logs or responses.
 */
import { type KeyObject, constants, createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { base64url } from 'jose';
import { KeyturnError } from '../../errors';
import { ESCROW_CONTAINER } from '../../domain/tenantExports';
import { rsaBitsFor } from '../../domain/tenantKeyPolicy';
import type { KeyRef, VaultKey, VaultKeys } from '../../ports';
import type { BlobObjects, TenantKeyEscrow } from './opsPorts';
import type { KeyPolicyStore } from './ports';
import { STEP_TOKEN_TAG } from './rekeyJob';

export interface EscrowSettings {
  /** Keyturn's vault (the tenant-key vault) holding the escrow key. */
  vaultUrl: string;
  keyName: string;
  keyBits: 2048 | 3072 | 4096;
}

/** The sealed copy as stored (JSON); every byte string base64url. */
interface SealedKey {
  v: 1;
  tenantId: string;
  kid: string;
  /** The escrow key version that wrapped the data key. */
  escrowKid: string;
  wrapAlg: 'RSA-OAEP-256';
  wrappedKey: string;
  enc: 'A256GCM';
  iv: string;
  tag: string;
  ciphertext: string;
}

const escrowBlobName = (tenantId: string, version: string) => `${tenantId}/${version}`;
const aad = (tenantId: string, kid: string) => Buffer.from(`keyturn-escrow:${tenantId}:${kid}`, 'utf8');

export class EscrowService implements TenantKeyEscrow {
  private escrowKey: Promise<{ ref: KeyRef & { version: string }; publicKey: KeyObject }> | undefined;

  constructor(private readonly deps: { keys: VaultKeys; blobs: BlobObjects; policies: KeyPolicyStore; settings: EscrowSettings }) {}

  /** The escrow key's current version; created on first use. */
  private current() {
    this.escrowKey ??= (async () => {
      const { keys, policies, settings } = this.deps;
      let key = await keys.get({ vaultUrl: settings.vaultUrl, name: settings.keyName });
      if (!key) {
        const size = rsaBitsFor(settings.keyBits, await policies.current());
        // No `exp` (it unwraps for as long as any escrowed version exists); wrap/unwrap only.
        key = await keys.create(settings.vaultUrl, settings.keyName, { kty: 'RSA', size }, { keyOps: ['wrapKey', 'unwrapKey'], tags: { 'keyturn-purpose': 'tenant-escrow' } });
      }
      const jwk = key.publicJwk;
      if (jwk?.kty !== 'RSA') throw new KeyturnError('DEPENDENCY_FAILED', 'The escrow key has no RSA public key');
      const { vaultUrl, name, version } = key.properties;
      return { ref: { vaultUrl, name, version }, publicKey: createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' }) };
    })().catch((e) => {
      this.escrowKey = undefined;
      throw e;
    });
    return this.escrowKey;
  }

  /**
   * Seals and stores the private key of a version just imported. When that fails the
   * version is disabled and loses its step token, so it is never recorded or adopted
   * (a resumed rekey imports another, with an escrow).
   */
  async keep(tenantId: string, key: VaultKey, privateKey: KeyObject): Promise<void> {
    const { vaultUrl, name, version } = key.properties;
    const kid = `${vaultUrl}/keys/${name}/${version}`;
    try {
      const escrow = await this.current();
      const dataKey = randomBytes(32);
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', dataKey, iv).setAAD(aad(tenantId, kid));
      const der = privateKey.export({ type: 'pkcs8', format: 'der' });
      const ciphertext = Buffer.concat([cipher.update(der), cipher.final()]);
      der.fill(0);
      // Wrapped with the escrow key's public half (RSA-OAEP-256, as Key Vault wraps); only Key Vault unwraps.
      const wrappedKey = publicEncrypt({ key: escrow.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey);
      dataKey.fill(0);
      const e = escrow.ref;
      const sealed: SealedKey = {
        v: 1,
        tenantId,
        kid,
        escrowKid: `${e.vaultUrl}/keys/${e.name}/${e.version}`,
        wrapAlg: 'RSA-OAEP-256',
        wrappedKey: base64url.encode(wrappedKey),
        enc: 'A256GCM',
        iv: base64url.encode(iv),
        tag: base64url.encode(cipher.getAuthTag()),
        ciphertext: base64url.encode(ciphertext),
      };
      await this.deps.blobs.putOnly(ESCROW_CONTAINER, escrowBlobName(tenantId, version), Buffer.from(JSON.stringify(sealed)), { kid: encodeURIComponent(kid) });
    } catch (e) {
      const { [STEP_TOKEN_TAG]: _token, ...tags } = key.properties.tags;
      void _token;
      await this.deps.keys.update({ vaultUrl, name, version }, { enabled: false, tags }).catch(() => undefined);
      throw e;
    }
  }

  /** The escrowed private key of a version, or undefined when Keyturn holds no escrow of it. */
  async open(tenantId: string, kid: string, version: string): Promise<KeyObject | undefined> {
    const blob = await this.deps.blobs.get(ESCROW_CONTAINER, escrowBlobName(tenantId, version));
    if (!blob) return undefined;
    const sealed = JSON.parse(Buffer.from(blob.bytes).toString('utf8')) as SealedKey;
    if (sealed.v !== 1 || sealed.kid !== kid || sealed.tenantId !== tenantId) throw new KeyturnError('DEPENDENCY_FAILED', `The escrow copy of ${kid} is not that version's`);
    const m = /^(https:\/\/[^/]+)\/keys\/([^/]+)\/([^/]+)$/.exec(sealed.escrowKid);
    if (!m) throw new KeyturnError('DEPENDENCY_FAILED', `The escrow copy of ${kid} names no escrow key version`);
    const dataKey = Buffer.from(await this.deps.keys.unwrap({ vaultUrl: m[1]!, name: m[2]!, version: m[3]! }, 'RSA-OAEP-256', base64url.decode(sealed.wrappedKey)));
    try {
      const decipher = createDecipheriv('aes-256-gcm', dataKey, base64url.decode(sealed.iv)).setAAD(aad(tenantId, kid));
      decipher.setAuthTag(base64url.decode(sealed.tag));
      const der = Buffer.concat([decipher.update(base64url.decode(sealed.ciphertext)), decipher.final()]);
      const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      der.fill(0);
      return key;
    } finally {
      dataKey.fill(0);
    }
  }

  /** Destroys the escrow copy of a version (when the version itself is destroyed). */
  async destroy(tenantId: string, version: string): Promise<void> {
    await this.deps.blobs.delete(ESCROW_CONTAINER, escrowBlobName(tenantId, version));
  }
}
