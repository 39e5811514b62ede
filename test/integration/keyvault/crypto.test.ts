/**
 * CryptographyClient against the emulator; every result is checked independently
 * with Node's crypto (signatures verify with the public JWK, keys wrapped locally
 * unwrap remotely).
 */
import type { KeyVaultKey, SignatureAlgorithm } from '@azure/keyvault-keys';
import { constants, createHash, publicEncrypt, randomBytes, verify as nodeVerify } from 'node:crypto';
import { DAY, emulatorSeconds, nodePublicKey, rawRequest, startTestVault, type TestVault } from '../../helpers/keyvault';

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512', '256K': 'sha256' };

describe('Key Vault emulator: cryptography', () => {
  let vault: TestVault;
  const keys: Record<string, KeyVaultKey> = {};
  beforeAll(async () => {
    vault = await startTestVault();
    keys.rsa = await vault.keys.createRsaKey('crypto-rsa', { keySize: 2048 });
    keys['P-256'] = await vault.keys.createEcKey('crypto-p256', { curve: 'P-256' });
    keys['P-384'] = await vault.keys.createEcKey('crypto-p384', { curve: 'P-384' });
    keys['P-521'] = await vault.keys.createEcKey('crypto-p521', { curve: 'P-521' });
    keys['P-256K'] = await vault.keys.createEcKey('crypto-p256k', { curve: 'P-256K' });
    keys.oct = await vault.keys.createOctKey('crypto-oct', { keySize: 256, hsm: true });
  });
  afterAll(() => vault.close());

  const signCases: Array<[SignatureAlgorithm, string]> = [
    ['RS256', 'rsa'],
    ['RS384', 'rsa'],
    ['RS512', 'rsa'],
    ['PS256', 'rsa'],
    ['PS384', 'rsa'],
    ['PS512', 'rsa'],
    ['ES256', 'P-256'],
    ['ES384', 'P-384'],
    ['ES512', 'P-521'],
    ['ES256K', 'P-256K'],
  ];

  it.each(signCases)('%s: the emulator signs a digest that Node verifies, and verifies it remotely', async (alg, which) => {
    const key = keys[which]!;
    const client = vault.keys.getCryptographyClient(key.name);
    const data = randomBytes(100);
    const hash = HASH[alg.slice(2)]!;
    const digest = createHash(hash).update(data).digest();
    const { result: signature, keyID } = await client.sign(alg, digest);
    expect(keyID).toBe(key.id);
    const publicKey = nodePublicKey(key.key!);
    const options = alg.startsWith('PS')
      ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
      : alg.startsWith('ES')
        ? { key: publicKey, dsaEncoding: 'ieee-p1363' as const }
        : publicKey;
    expect(nodeVerify(hash, data, options, signature)).toBe(true);
    expect((await client.verify(alg, digest, signature)).result).toBe(true);
    const tampered = Buffer.from(signature);
    tampered[5] = (tampered[5] as number) ^ 1;
    expect((await client.verify(alg, digest, tampered)).result).toBe(false);
    // signData hashes client-side and signs remotely.
    const signed = await client.signData(alg, data);
    expect(nodeVerify(hash, data, options, signed.result)).toBe(true);
  });

  it('rejects a digest of the wrong length and an algorithm that does not fit the key', async () => {
    const rsa = vault.keys.getCryptographyClient('crypto-rsa');
    await expect(rsa.sign('RS256', randomBytes(20))).rejects.toMatchObject({ statusCode: 400, code: 'BadParameter' });
    const ec = vault.keys.getCryptographyClient('crypto-p256');
    await expect(ec.sign('ES384', randomBytes(48))).rejects.toMatchObject({ statusCode: 400 });
  });

  it.each(['RSA-OAEP', 'RSA-OAEP-256', 'RSA1_5'] as const)('%s: a key wrapped locally with the public key unwraps remotely', async (alg) => {
    const publicKey = nodePublicKey(keys.rsa!.key!);
    const cek = randomBytes(32);
    const wrapped =
      alg === 'RSA1_5'
        ? publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, cek)
        : publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256' }, cek);
    const client = vault.keys.getCryptographyClient('crypto-rsa', { keyVersion: keys.rsa!.properties.version });
    const { result } = await client.unwrapKey(alg, wrapped);
    expect(Buffer.from(result)).toEqual(cek);
    const plain = randomBytes(40);
    const enc = await client.encrypt({ algorithm: alg, plaintext: plain });
    expect(Buffer.from((await client.decrypt({ algorithm: alg, ciphertext: enc.result })).result)).toEqual(plain);
    const w = await client.wrapKey(alg, cek);
    expect(Buffer.from((await client.unwrapKey(alg, w.result)).result)).toEqual(cek);
  });

  it('a standalone CryptographyClient(kid) works too', async () => {
    const client = vault.crypto(keys.rsa!.id!);
    const digest = createHash('sha256').update('hello').digest();
    const sig = await client.sign('RS256', digest);
    expect(nodeVerify('sha256', Buffer.from('hello'), nodePublicKey(keys.rsa!.key!), sig.result)).toBe(true);
  });

  it('oct keys: A256KW wrap/unwrap and A256GCM / A256CBCPAD encrypt/decrypt remotely', async () => {
    const client = vault.keys.getCryptographyClient('crypto-oct');
    const cek = randomBytes(32);
    const wrapped = await client.wrapKey('A256KW', cek);
    expect(wrapped.result.length).toBe(40);
    expect(Buffer.from((await client.unwrapKey('A256KW', wrapped.result)).result)).toEqual(cek);

    const plaintext = randomBytes(50);
    const aad = Buffer.from('header');
    const gcm = await client.encrypt({ algorithm: 'A256GCM', plaintext, additionalAuthenticatedData: aad });
    expect(gcm.iv).toBeDefined();
    expect(gcm.authenticationTag).toBeDefined();
    const back = await client.decrypt({
      algorithm: 'A256GCM',
      ciphertext: gcm.result,
      iv: gcm.iv!,
      authenticationTag: gcm.authenticationTag!,
      additionalAuthenticatedData: aad,
    });
    expect(Buffer.from(back.result)).toEqual(plaintext);
    await expect(
      client.decrypt({ algorithm: 'A256GCM', ciphertext: gcm.result, iv: gcm.iv!, authenticationTag: gcm.authenticationTag!, additionalAuthenticatedData: Buffer.from('other') }),
    ).rejects.toMatchObject({ statusCode: 400 });

    const iv = randomBytes(16);
    const cbc = await client.encrypt({ algorithm: 'A256CBCPAD', plaintext, iv });
    expect(Buffer.from((await client.decrypt({ algorithm: 'A256CBCPAD', ciphertext: cbc.result, iv })).result)).toEqual(plaintext);
    await expect(client.wrapKey('A128KW', cek)).rejects.toMatchObject({ statusCode: 400 });
  });

  it('a disabled key refuses cryptography with 403 KeyDisabled', async () => {
    const key = await vault.keys.createEcKey('disabled-key');
    await vault.keys.updateKeyProperties('disabled-key', key.properties.version!, { enabled: false });
    const err = await vault.keys
      .getCryptographyClient('disabled-key')
      .sign('ES256', randomBytes(32))
      .catch((e) => e);
    expect(err).toMatchObject({ statusCode: 403, code: 'Forbidden' });
    expect(err.details.error.innerError.code).toBe('KeyDisabled');
  });

  it('a key the emulator clock has moved past exp refuses with 403 KeyExpired', async () => {
    // The SDK checks exp locally against the real clock, so use an exp only the emulator has passed.
    const exp = emulatorSeconds(vault.emulator) + 2 * DAY;
    await vault.keys.createEcKey('expiring-key', { expiresOn: new Date(exp * 1000) });
    const client = vault.keys.getCryptographyClient('expiring-key');
    expect((await client.sign('ES256', randomBytes(32))).result.length).toBe(64);
    await vault.emulator.clock.advance(3 * DAY);
    const err = await client.sign('ES256', randomBytes(32)).catch((e) => e);
    expect(err).toMatchObject({ statusCode: 403, code: 'Forbidden' });
    expect(err.details.error.innerError.code).toBe('KeyExpired');
  });

  it('a not-yet-valid key refuses with 403 KeyNotYetValid', async () => {
    const key = await vault.keys.createEcKey('future-key');
    const err = await (async () => {
      const client = vault.keys.getCryptographyClient('future-key', { keyVersion: key.properties.version });
      await client.sign('ES256', randomBytes(32)); // caches the key while the SDK's local check still passes
      await vault.keys.updateKeyProperties('future-key', key.properties.version!, {
        notBefore: new Date((emulatorSeconds(vault.emulator) + DAY) * 1000),
      });
      return client.sign('ES256', randomBytes(32)).catch((e) => e);
    })();
    expect(err).toMatchObject({ statusCode: 403 });
    expect(err.details.error.innerError.code).toBe('KeyNotYetValid');
  });

  it('an operation missing from key_ops is refused with 403', async () => {
    const key = await vault.keys.createEcKey('verify-only', { keyOps: ['verify'] });
    const res = await rawRequest(vault.emulator, 'POST', `/keys/verify-only/${key.properties.version}/sign`, {
      token: 't',
      body: { alg: 'ES256', value: randomBytes(32).toString('base64url') },
    });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('Forbidden');
  });
});
