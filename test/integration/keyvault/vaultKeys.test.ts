/**
 * The VaultKeys adapter against the local Key Vault emulator with the real SDK clients:
 * every operation of the port, the client-side refusals of CryptographyClient (expired
 * or outside keyOps: no request leaves the process), and a second vault reached by URL
 * only (a customer's vault) through the allow-list.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { createKeyVaultClients, type KeyVaultClients } from '../../../shared/adapters/keyVault/clients';
import { vaultKeys } from '../../../shared/adapters/keyVault/vaultKeys';
import { KeyturnError, ValidationError } from '../../../shared/errors';
import type { PublicKeyJwk, VaultKeys } from '../../../shared/ports';
import { startTestVault, type TestVault } from '../../helpers/keyvault';

/** Every request the clients send, as `METHOD path`. */
function requestLog() {
  const sent: string[] = [];
  const policy = {
    name: 'recordRequests',
    async sendRequest(request: unknown, next: (r: unknown) => Promise<unknown>) {
      const { method, url } = request as { method: string; url: string };
      sent.push(`${method} ${new URL(url).pathname.toLowerCase()}`);
      return next(request);
    },
  };
  return { sent, policy };
}

const digestOf = (text: string) => createHash('sha256').update(text).digest();
const nodeKey = (jwk: PublicKeyJwk | undefined) => createPublicKey({ key: jwk as never, format: 'jwk' });

describe('VaultKeys on the Key Vault emulator', () => {
  let vault: TestVault;
  let customer: TestVault;
  let clients: KeyVaultClients;
  let keys: VaultKeys;
  let url: string;
  const log = requestLog();

  beforeAll(async () => {
    // One after the other: the second reuses the first's CA (a customer vault the same CA file trusts).
    vault = await startTestVault();
    customer = await startTestVault();
    url = vault.emulator.url;
    clients = createKeyVaultClients({ main: url }, { emulatorCa: vault.emulator.ca, extraPolicies: () => [{ policy: log.policy, position: 'perCall' }] });
    keys = vaultKeys(clients);
  });
  afterAll(async () => {
    await Promise.all([vault.close(), customer.close()]);
  });

  test('When a key is created, rotated and listed, then each version comes back with its attributes and public half only', async () => {
    const expiresOn = new Date(Date.now() + 30 * 86_400_000);
    const made = await keys.create(url, 'kek-1', { kty: 'RSA', size: 2048 }, { keyOps: ['wrapKey', 'unwrapKey'], expiresOn, tags: { owner: 'tenant-a' } });
    expect(made.properties).toMatchObject({ name: 'kek-1', enabled: true, keyType: 'RSA', keyOps: ['wrapKey', 'unwrapKey'], tags: { owner: 'tenant-a' } });
    expect(made.properties.version).toMatch(/^[0-9a-f]{32}$/);
    expect(Math.abs(made.properties.expiresOn!.getTime() - expiresOn.getTime())).toBeLessThan(1000);
    expect(Object.keys(made.publicJwk!).sort()).toEqual(['e', 'kty', 'n']);

    const rotated = await keys.rotate(url, 'kek-1');
    expect(rotated.properties.version).not.toBe(made.properties.version);
    const versions = await keys.versions(url, 'kek-1');
    expect(versions.map((v) => v.version).sort()).toEqual([made.properties.version, rotated.properties.version].sort());
    expect(await keys.get({ vaultUrl: url, name: 'kek-1', version: made.properties.version })).toMatchObject({
      properties: { version: made.properties.version },
      publicJwk: made.publicJwk,
    });
    expect((await keys.get({ vaultUrl: url, name: 'kek-1' }))!.properties.version).toBe(rotated.properties.version);
  });

  test('When properties are updated, then keyOps, enabled, exp and tags change and nothing else', async () => {
    const made = await keys.create(url, 'props-1', { kty: 'EC', curve: 'P-256' }, { tags: { a: '1' } });
    const ref = { vaultUrl: url, name: 'props-1', version: made.properties.version };
    const exp = new Date(Date.now() + 86_400_000);
    const updated = await keys.update(ref, { enabled: false, keyOps: ['sign'], expiresOn: exp, tags: { b: '2' } });
    expect(updated).toMatchObject({ enabled: false, keyOps: ['sign'], tags: { b: '2' } });
    expect(Math.abs(updated.expiresOn!.getTime() - exp.getTime())).toBeLessThan(1000);
    const tagsOnly = await keys.update(ref, { tags: { c: '3' } });
    expect(tagsOnly).toMatchObject({ enabled: false, keyOps: ['sign'], tags: { c: '3' } });
    const latest = await keys.update({ vaultUrl: url, name: 'props-1' }, { enabled: true });
    expect(latest).toMatchObject({ version: made.properties.version, enabled: true });
  });

  test('When a digest is signed, then the signature verifies with the published key (RS256 and ES256 as r‖s)', async () => {
    const rsa = await keys.create(url, 'sign-rsa', { kty: 'RSA' }, { keyOps: ['sign', 'verify'] });
    const ec = await keys.create(url, 'sign-ec', { kty: 'EC', curve: 'P-256' });
    const digest = digestOf('header.payload');
    const rs = await keys.sign({ vaultUrl: url, name: 'sign-rsa', version: rsa.properties.version }, 'RS256', digest);
    expect(verify('sha256', Buffer.from('header.payload'), nodeKey(rsa.publicJwk), rs)).toBe(true);
    const es = await keys.sign({ vaultUrl: url, name: 'sign-ec', version: ec.properties.version }, 'ES256', digest);
    expect(es).toHaveLength(64);
    expect(verify('sha256', Buffer.from('header.payload'), { key: nodeKey(ec.publicJwk), dsaEncoding: 'ieee-p1363' }, es)).toBe(true);
  });

  test('When a key is wrapped and unwrapped, then the same bytes come back', async () => {
    const kek = await keys.create(url, 'wrap-1', { kty: 'RSA' }, { keyOps: ['wrapKey', 'unwrapKey'] });
    const ref = { vaultUrl: url, name: 'wrap-1', version: kek.properties.version };
    const dek = randomBytes(32);
    const wrapped = await keys.wrap(ref, 'RSA-OAEP-256', dek);
    expect(Buffer.from(wrapped).equals(dek)).toBe(false);
    expect(Buffer.from(await keys.unwrap(ref, 'RSA-OAEP-256', wrapped)).equals(dek)).toBe(true);
  });

  test('When an operation is outside keyOps or past exp, then CryptographyClient refuses on the client: no request reaches the vault', async () => {
    const signOnly = await keys.create(url, 'ops-1', { kty: 'RSA' }, { keyOps: ['sign', 'verify'] });
    const ref = { vaultUrl: url, name: 'ops-1', version: signOnly.properties.version };
    const before = log.sent.length;
    const refused = await keys.wrap(ref, 'RSA-OAEP', randomBytes(32)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KeyturnError);
    expect(log.sent.slice(before).filter((r) => r.endsWith('/wrapkey'))).toEqual([]);
    expect(log.sent.slice(before).some((r) => r.startsWith('GET /keys/ops-1/'))).toBe(true); // it read the key first

    const expired = await keys.create(url, 'exp-1', { kty: 'RSA' }, { expiresOn: new Date(Date.now() - 60_000) });
    const expiredRef = { vaultUrl: url, name: 'exp-1', version: expired.properties.version };
    const mark = log.sent.length;
    const refusedExpired = await keys.unwrap(expiredRef, 'RSA-OAEP', randomBytes(256)).catch((e: unknown) => e);
    expect(refusedExpired).toBeInstanceOf(KeyturnError);
    expect((refusedExpired as Error).message).toBe('Key Vault could not unwrap with a key; retry later');
    expect(((refusedExpired as Error).cause as Error).message).toMatch(/expired/);
    expect(log.sent.slice(mark).filter((r) => r.endsWith('/unwrapkey'))).toEqual([]);
  });

  test('When a private key is imported, then the vault signs with it and only its public half comes back', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' }) as { kty: 'RSA'; [k: string]: string };
    const imported = await keys.import(url, 'byok-1', jwk, { keyOps: ['sign', 'verify'], tags: { source: 'customer' } });
    expect(imported.properties).toMatchObject({ keyOps: ['sign', 'verify'], tags: { source: 'customer' } });
    expect(imported.publicJwk).toEqual({ kty: 'RSA', n: jwk.n, e: jwk.e });
    const sig = await keys.sign({ vaultUrl: url, name: 'byok-1', version: imported.properties.version }, 'RS256', digestOf('x'));
    expect(verify('sha256', Buffer.from('x'), publicKey, sig)).toBe(true);
  });

  test('When a key is backed up, deleted, purged and restored (or deleted and recovered), then it comes back with its versions', async () => {
    const made = await keys.create(url, 'life-1', { kty: 'EC', curve: 'P-256' });
    const blob = await keys.backup(url, 'life-1');
    expect(blob.length).toBeGreaterThan(0);
    await keys.delete(url, 'life-1');
    expect(await keys.get({ vaultUrl: url, name: 'life-1' })).toBeUndefined();
    const whileDeleted = await keys.restore(url, blob).catch((e: unknown) => e);
    expect(whileDeleted).toMatchObject({ code: 'CONFLICT' });
    await keys.purge(url, 'life-1');
    const restored = await keys.restore(url, blob);
    expect(restored.properties.version).toBe(made.properties.version);
    expect(restored.publicJwk).toEqual(made.publicJwk);

    await keys.delete(url, 'life-1');
    const recovered = await keys.recover(url, 'life-1');
    expect(recovered.properties).toMatchObject({ name: 'life-1', version: made.properties.version, enabled: true });
  });

  test('When a key does not exist, then get is undefined, versions empty and an update NOT_FOUND without SDK text', async () => {
    expect(await keys.get({ vaultUrl: url, name: 'nope' })).toBeUndefined();
    expect(await keys.versions(url, 'nope')).toEqual([]);
    const error = (await keys.update({ vaultUrl: url, name: 'nope' }, { enabled: false }).catch((e: unknown) => e)) as KeyturnError;
    expect(error).toMatchObject({ code: 'NOT_FOUND', message: 'Key Vault has no such key to update', details: { statusCode: 404 } });
  });

  test("When a customer's vault is named by URL only, then it is reached through the allow-list with its own cached client", async () => {
    const other = customer.emulator.url;
    const made = await keys.create(other, 'tenant-kek', { kty: 'RSA' }, { keyOps: ['wrapKey', 'unwrapKey'] });
    expect(made.properties.vaultUrl).toBe(other);
    expect(await customer.keys.getKey('tenant-kek')).toMatchObject({ name: 'tenant-kek' });
    expect(await keys.get({ vaultUrl: url, name: 'tenant-kek' })).toBeUndefined();
    expect(clients.keysAt(`${other}/`)).toBe(clients.keysAt(other));
    expect(clients.keysAt(other)).not.toBe(clients.keys('main'));
  });

  test('When a URL fails the allow-list, then the call is a 400 naming the field and nothing is sent', async () => {
    const before = log.sent.length;
    for (const bad of ['https://evil.example', `${url.replace('https:', 'http:')}`, `https://user@${url.slice('https://'.length)}`]) {
      await expect(keys.get({ vaultUrl: bad, name: 'kek-1' })).rejects.toBeInstanceOf(ValidationError);
      await expect(keys.create(bad, 'x', { kty: 'RSA' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: { field: 'vaultUrl' } });
    }
    expect(log.sent.length).toBe(before);
  });
});
