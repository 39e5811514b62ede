/** KeyClient contract: create/import/get/list/update/rotate/policy/backup/delete. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { DAY, emulatorSeconds, rawRequest, startTestVault, type TestVault } from '../../helpers/keyvault';

const poll = { intervalInMs: 10 };

describe('Key Vault emulator: keys', () => {
  let vault: TestVault;
  beforeAll(async () => {
    vault = await startTestVault();
  });
  afterAll(() => vault.close());

  it.each([
    ['RSA', 2048],
    ['RSA', 3072],
    ['RSA-HSM', 4096],
  ] as const)('creates %s %d keys with public parts only', async (kty, keySize) => {
    const key = await vault.keys.createKey(`rsa-${kty}-${keySize}`, kty, { keySize });
    expect(key.keyType).toBe(kty);
    expect(key.key!.n!.length).toBe(keySize / 8);
    expect(Buffer.from(key.key!.e!).toString('hex')).toBe('010001');
    expect(key.key!.d).toBeUndefined();
    expect(key.keyOperations).toEqual(expect.arrayContaining(['sign', 'verify', 'encrypt', 'decrypt', 'wrapKey', 'unwrapKey']));
    expect(key.properties.version).toMatch(/^[0-9a-f]{32}$/);
    expect(key.id).toBe(`${vault.emulator.url}/keys/rsa-${kty}-${keySize}/${key.properties.version}`);
  });

  it.each(['P-256', 'P-384', 'P-521', 'P-256K'] as const)('creates EC %s keys', async (curve) => {
    const key = await vault.keys.createEcKey(`ec-${curve}`, { curve });
    expect(key.key!.crv).toBe(curve);
    expect(key.key!.x).toBeInstanceOf(Uint8Array);
    expect(key.key!.d).toBeUndefined();
    expect(key.keyOperations).toEqual(['sign', 'verify']);
  });

  it('creates oct keys (no key material returned) and EC-HSM', async () => {
    const oct = await vault.keys.createOctKey('oct-key', { keySize: 256, hsm: true });
    expect(oct.keyType).toBe('oct-HSM');
    expect(oct.key!.k).toBeUndefined();
    const hsm = await vault.keys.createKey('ec-hsm', 'EC-HSM');
    expect(hsm.keyType).toBe('EC-HSM');
    expect(hsm.key!.crv).toBe('P-256');
  });

  it('refuses bad key parameters with 400', async () => {
    await expect(vault.keys.createRsaKey('bad-size', { keySize: 1024 })).rejects.toMatchObject({ statusCode: 400, code: 'BadParameter' });
    await expect(vault.keys.createEcKey('bad-curve', { curve: 'P-192' as 'P-256' })).rejects.toMatchObject({ statusCode: 400 });
  });

  it('imports a JWK and keeps the private part server-side', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' });
    const toBytes = (s?: string): Uint8Array | undefined => (s ? Buffer.from(s, 'base64url') : undefined);
    const imported = await vault.keys.importKey(
      'imported-rsa',
      { kty: 'RSA', n: toBytes(jwk.n), e: toBytes(jwk.e), d: toBytes(jwk.d), p: toBytes(jwk.p), q: toBytes(jwk.q), dp: toBytes(jwk.dp), dq: toBytes(jwk.dq), qi: toBytes(jwk.qi), keyOps: ['sign', 'verify'] },
      { tags: { source: 'byok' } },
    );
    expect(Buffer.from(imported.key!.n!).toString('base64url')).toBe(jwk.n);
    expect(imported.key!.d).toBeUndefined();
    expect(imported.keyOperations).toEqual(['sign', 'verify']);
    expect(imported.properties.tags).toEqual({ source: 'byok' });
    await expect(
      vault.keys.importKey('imported-bad', { kty: 'RSA', n: toBytes(jwk.n), e: toBytes(jwk.e) }),
    ).rejects.toMatchObject({ statusCode: 400 });
    const oct = await vault.keys.importKey('imported-oct', { kty: 'oct', k: randomBytes(32) });
    expect(oct.keyType).toBe('oct');
  });

  it('gets latest and by version, case-insensitively', async () => {
    const v1 = await vault.keys.createEcKey('Versioned-Key');
    const v2 = await vault.keys.createEcKey('versioned-key');
    const latest = await vault.keys.getKey('VERSIONED-KEY');
    expect(latest.properties.version).toBe(v2.properties.version);
    expect(latest.name).toBe('Versioned-Key');
    const first = await vault.keys.getKey('versioned-key', { version: v1.properties.version });
    expect(Buffer.from(first.key!.x!)).toEqual(Buffer.from(v1.key!.x!));
    await expect(vault.keys.getKey('missing-key')).rejects.toMatchObject({ statusCode: 404, code: 'KeyNotFound' });
    await expect(vault.keys.getKey('versioned-key', { version: 'f'.repeat(32) })).rejects.toMatchObject({ statusCode: 404, code: 'KeyNotFound' });
  });

  it('lists keys and versions with paging', async () => {
    for (let i = 0; i < 27; i++) await vault.keys.createEcKey('paged-key');
    const versions = [];
    for await (const p of vault.keys.listPropertiesOfKeyVersions('paged-key')) versions.push(p.version);
    expect(versions).toHaveLength(27);
    expect(new Set(versions).size).toBe(27);
    const pages: number[] = [];
    for await (const page of vault.keys.listPropertiesOfKeyVersions('paged-key').byPage({ maxPageSize: 25 })) pages.push(page.length);
    expect(pages).toEqual([25, 2]);
    const names = [];
    for await (const p of vault.keys.listPropertiesOfKeys()) names.push(p.name);
    expect(names).toEqual(expect.arrayContaining(['paged-key', 'Versioned-Key', 'oct-key']));
    expect(new Set(names).size).toBe(names.length);
  });

  it('updates enabled, nbf, exp, key_ops and tags on a version and on latest', async () => {
    const key = await vault.keys.createEcKey('updatable');
    const now = emulatorSeconds(vault.emulator);
    const expiresOn = new Date((now + 10 * DAY) * 1000);
    const notBefore = new Date((now - DAY) * 1000);
    const updated = await vault.keys.updateKeyProperties('updatable', key.properties.version!, {
      enabled: false,
      expiresOn,
      notBefore,
      keyOps: ['verify'],
      tags: { a: '1' },
    });
    expect(updated.properties).toMatchObject({ enabled: false, expiresOn, notBefore, tags: { a: '1' } });
    expect(updated.keyOperations).toEqual(['verify']);
    const viaLatest = await vault.keys.updateKeyProperties('updatable', { enabled: true, tags: { b: '2' } });
    expect(viaLatest.properties.enabled).toBe(true);
    expect(viaLatest.properties.tags).toEqual({ b: '2' });
    expect(viaLatest.properties.expiresOn).toEqual(expiresOn);
  });

  it('rotates on demand; exp follows the policy expiryTime', async () => {
    const key = await vault.keys.createRsaKey('rotating', { keySize: 2048 });
    const policy = await vault.keys.updateKeyRotationPolicy('rotating', {
      expiresIn: 'P90D',
      lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P60D' }],
    });
    expect(policy.expiresIn).toBe('P90D');
    // The service adds the default notification when only Rotate is given.
    expect(policy.lifetimeActions).toEqual(
      expect.arrayContaining([
        { action: 'Rotate', timeAfterCreate: 'P60D' },
        { action: 'Notify', timeBeforeExpiry: 'P30D' },
      ]),
    );
    expect(policy.id).toBe(`${vault.emulator.url}/keys/rotating/rotationpolicy`);
    const got = await vault.keys.getKeyRotationPolicy('rotating');
    expect(got.lifetimeActions).toHaveLength(2);

    const rotated = await vault.keys.rotateKey('rotating');
    expect(rotated.properties.version).not.toBe(key.properties.version);
    expect(rotated.key!.n!.length).toBe(256);
    const created = rotated.properties.createdOn!.getTime();
    expect(rotated.properties.expiresOn!.getTime() - created).toBe(90 * DAY * 1000);
    expect((await vault.keys.getKey('rotating')).properties.version).toBe(rotated.properties.version);
  });

  it('answers the default rotation policy for a key without one, and validates policies', async () => {
    await vault.keys.createEcKey('no-policy');
    const p = await vault.keys.getKeyRotationPolicy('no-policy');
    expect(p.lifetimeActions).toEqual([{ action: 'Notify', timeBeforeExpiry: 'P30D' }]);
    await expect(
      vault.keys.updateKeyRotationPolicy('no-policy', { lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'soon' }] }),
    ).rejects.toMatchObject({ statusCode: 400 });
    await expect(vault.keys.getKeyRotationPolicy('missing-key')).rejects.toMatchObject({ statusCode: 404 });
  });

  it('soft-deletes, refuses reuse with 409, lists, recovers and purges', async () => {
    await vault.keys.createEcKey('doomed-key');
    const deleted = await (await vault.keys.beginDeleteKey('doomed-key', poll)).pollUntilDone();
    expect(deleted.properties.recoveryId).toBe(`${vault.emulator.url}/deletedkeys/doomed-key`);
    expect(deleted.properties.deletedOn).toBeInstanceOf(Date);
    await expect(vault.keys.getKey('doomed-key')).rejects.toMatchObject({ statusCode: 404, code: 'KeyNotFound' });
    const conflict = await vault.keys.createEcKey('doomed-key').catch((e) => e);
    expect(conflict).toMatchObject({ statusCode: 409, code: 'Conflict' });
    expect(conflict.details.error.innerError.code).toBe('ObjectIsDeletedButRecoverable');
    expect((await vault.keys.getDeletedKey('doomed-key')).name).toBe('doomed-key');
    const names = [];
    for await (const d of vault.keys.listDeletedKeys()) names.push(d.name);
    expect(names).toContain('doomed-key');
    await (await vault.keys.beginRecoverDeletedKey('doomed-key', poll)).pollUntilDone();
    expect((await vault.keys.getKey('doomed-key')).name).toBe('doomed-key');
    await (await vault.keys.beginDeleteKey('doomed-key', poll)).pollUntilDone();
    await vault.keys.purgeDeletedKey('doomed-key');
    await expect(vault.keys.getDeletedKey('doomed-key')).rejects.toMatchObject({ statusCode: 404 });
    await expect(vault.keys.purgeDeletedKey('doomed-key')).rejects.toMatchObject({ statusCode: 404 });
  });

  it('purges soft-deleted keys automatically when the clock passes scheduledPurgeDate', async () => {
    await vault.keys.createEcKey('auto-purge');
    await (await vault.keys.beginDeleteKey('auto-purge', poll)).pollUntilDone();
    await vault.emulator.clock.advance(91 * DAY);
    await expect(vault.keys.getDeletedKey('auto-purge')).rejects.toMatchObject({ statusCode: 404 });
    expect((await vault.keys.createEcKey('auto-purge')).name).toBe('auto-purge');
  });

  it('backs up (opaque) and restores all versions and the policy', async () => {
    const v1 = await vault.keys.createEcKey('backed-key', { curve: 'P-384' });
    await vault.keys.updateKeyRotationPolicy('backed-key', { lifetimeActions: [{ action: 'Notify', timeBeforeExpiry: 'P10D' }] });
    const v2 = await vault.keys.rotateKey('backed-key');
    const blob = await vault.keys.backupKey('backed-key');
    expect(Buffer.from(blob!).toString('latin1')).not.toMatch(/"d"|P-384/);
    await expect(vault.keys.restoreKeyBackup(blob!)).rejects.toMatchObject({ statusCode: 409 });
    await (await vault.keys.beginDeleteKey('backed-key', poll)).pollUntilDone();
    await vault.keys.purgeDeletedKey('backed-key');
    const before = vault.recorder.events.length;
    const restored = await vault.keys.restoreKeyBackup(blob!);
    expect(restored.properties.version).toBe(v2.properties.version);
    const old = await vault.keys.getKey('backed-key', { version: v1.properties.version });
    expect(Buffer.from(old.key!.x!)).toEqual(Buffer.from(v1.key!.x!));
    expect((await vault.keys.getKeyRotationPolicy('backed-key')).lifetimeActions).toEqual([{ action: 'Notify', timeBeforeExpiry: 'P10D' }]);
    // Restoring is not a new version.
    expect(vault.recorder.events.slice(before).filter((e) => e.eventType.endsWith('NewVersionCreated'))).toHaveLength(0);
  });

  it('answers POST /keys/{n}/release and attestation with 501', async () => {
    const res = await rawRequest(vault.emulator, 'POST', '/keys/backed-key/release', { token: 't', body: {} });
    expect(res.status).toBe(501);
    expect(res.body.error.message).toContain('release');
  });
});
