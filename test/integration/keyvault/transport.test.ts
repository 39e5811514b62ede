/** Transport, auth challenge, ids, name rules and unimplemented operations. */
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { rawRequest, startTestVault, staticCredential, type TestVault } from '../../helpers/keyvault';

describe('Key Vault emulator: transport and auth', () => {
  let vault: TestVault;
  beforeAll(async () => {
    vault = await startTestVault();
  });
  afterAll(() => vault.close());

  it('challenges every request without a token before looking at it', async () => {
    for (const [method, path] of [
      ['GET', '/secrets/whatever'],
      ['POST', '/keys/k/create'],
      ['GET', '/no/such/route'],
      ['PUT', '/secrets/bad%20name'],
    ] as const) {
      const res = await rawRequest(vault.emulator, method, `${path}?api-version=2025-07-01`);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer resource="https://vault.azure.net"');
      expect(res.body).toEqual({ error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } });
    }
  });

  it('accepts any token and any api-version', async () => {
    const put = await rawRequest(vault.emulator, 'PUT', '/secrets/apiv?api-version=7.4', { token: 'anything', body: { value: 'x' } });
    expect(put.status).toBe(200);
    const get = await rawRequest(vault.emulator, 'GET', '/secrets/apiv/', { token: 'other' });
    expect(get.status).toBe(200);
    expect(get.headers['content-type']).toMatch(/^application\/json/);
  });

  it('builds ids from the Host the client used', async () => {
    const viaLocalhost = new SecretClient(`https://localhost:${vault.emulator.port}`, staticCredential, {
      disableChallengeResourceVerification: true,
      tlsOptions: { ca: vault.emulator.ca },
    });
    const s = await viaLocalhost.setSecret('host-echo', 'v');
    expect(s.properties.id).toBe(`https://localhost:${vault.emulator.port}/secrets/host-echo/${s.properties.version}`);
    expect(s.properties.vaultUrl).toBe(`https://localhost:${vault.emulator.port}`);
    const again = await vault.secrets.getSecret('host-echo');
    expect(again.properties.id).toBe(`${vault.emulator.url}/secrets/host-echo/${s.properties.version}`);
  });

  it('rejects invalid names with 400 BadParameter', async () => {
    await expect(vault.secrets.setSecret('bad_name', 'v')).rejects.toMatchObject({ statusCode: 400, code: 'BadParameter' });
    await expect(vault.keys.createKey('a'.repeat(128), 'EC')).rejects.toMatchObject({ statusCode: 400, code: 'BadParameter' });
  });

  it('answers unimplemented operations with 501 naming the operation (no retries)', async () => {
    const res = await rawRequest(vault.emulator, 'GET', '/certificates/c/', { token: 't' });
    expect(res.status).toBe(501);
    expect(res.body.error.code).toBe('NotImplemented');
    expect(res.body.error.message).toContain('/certificates');
  });

  it('answers a bad body with 400, never 5xx', async () => {
    const res = await rawRequest(vault.emulator, 'POST', '/keys/k/create', { token: 't', headers: { 'content-type': 'application/json' }, body: undefined });
    expect(res.status).toBe(400);
    const bad = await rawRequest(vault.emulator, 'POST', '/keys/k/create', { token: 't', body: { kty: 'DSA' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('BadParameter');
  });

  it('a client without trust in the CA fails', async () => {
    const untrusting = new KeyClient(vault.emulator.url, staticCredential, { disableChallengeResourceVerification: true });
    await expect(untrusting.getKey('x')).rejects.toThrow(/certificate/i);
  });

  it('serves the clock without a token', async () => {
    const res = await rawRequest(vault.emulator, 'GET', '/management/vault/time');
    expect(res.status).toBe(200);
    expect(new Date(res.body.time).toString()).not.toBe('Invalid Date');
    expect(typeof res.body.offsetSeconds).toBe('number');
  });
});
