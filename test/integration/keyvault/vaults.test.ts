/** Several vaults: each on its own port, own VaultName and topic, one clock; names like `constructor` are plain misses. */
import { randomBytes } from 'node:crypto';
import { DAY } from '../../helpers/keyvault';
import { startRbacStack, type RbacStack } from '../../helpers/rbac';

describe('Key Vault emulator: several vaults', () => {
  let stack: RbacStack;
  beforeAll(async () => {
    stack = await startRbacStack();
  });
  afterAll(() => stack.close());

  it('serves contoso-byok on its own port: contoso-admin creates a key and wraps/unwraps with it', async () => {
    expect(stack.customer.port).not.toBe(stack.keyturn.port);
    const admin = stack.as('contoso-admin', stack.customer);
    const key = await admin.keys.createRsaKey('tenant-kek', { keySize: 2048 });
    expect(key.id).toBe(`${stack.customer.url}/keys/tenant-kek/${key.properties.version}`);
    const crypto = admin.keys.getCryptographyClient('tenant-kek');
    const dek = randomBytes(32);
    const wrapped = await crypto.wrapKey('RSA-OAEP', dek);
    expect(Buffer.from((await crypto.unwrapKey('RSA-OAEP', wrapped.result)).result)).toEqual(dek);
    // The key lives only in the customer's vault.
    const inKeyturn = await stack.raw('operator', stack.keyturn, 'GET', '/keys/tenant-kek?api-version=7.5');
    expect(inKeyturn.status).toBe(404);
  });

  it('publishes each vault’s events on its own topic with its own VaultName', async () => {
    stack.recorder.clear();
    await stack.as('contoso-admin', stack.customer).secrets.setSecret('byok-secret', 'v');
    await stack.as('operator', stack.keyturn).secrets.setSecret('own-secret', 'v');
    const [byok, own] = stack.recorder.events;
    expect(byok).toMatchObject({ topic: stack.customer.topic, data: { VaultName: 'contoso-byok', ObjectName: 'byok-secret' } });
    expect(byok!.data.Id.startsWith(`${stack.customer.url}/secrets/byok-secret/`)).toBe(true);
    expect(own).toMatchObject({ topic: stack.keyturn.topic, data: { VaultName: 'keyturn-local', ObjectName: 'own-secret' } });
    expect(stack.customer.topic).toBe('/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/keyturn-local/providers/Microsoft.KeyVault/vaults/contoso-byok');
  });

  it('one clock: a move fires due events in both vaults in time order', async () => {
    const now = Math.floor(stack.group.clock.now().getTime() / 1000);
    // Expiries interleaved across the vaults: byok at +3d, keyturn at +5d, byok at +7d.
    await stack.as('contoso-admin', stack.customer).secrets.setSecret('exp-a', 'v', { expiresOn: new Date((now + 3 * DAY) * 1000) });
    await stack.as('operator', stack.keyturn).secrets.setSecret('exp-b', 'v', { expiresOn: new Date((now + 5 * DAY) * 1000) });
    await stack.as('contoso-admin', stack.customer).secrets.setSecret('exp-c', 'v', { expiresOn: new Date((now + 7 * DAY) * 1000) });
    stack.recorder.clear();
    const before = stack.customer.clock.now().getTime();
    await stack.keyturn.clock.advance(8 * DAY);
    expect(stack.customer.clock.now().getTime() - before).toBeGreaterThanOrEqual(8 * DAY * 1000);
    const expired = stack.recorder.ofType('SecretExpired').map((e) => [e.data.VaultName, e.data.ObjectName, e.eventTime]);
    expect(expired.map(([v, n]) => `${v}/${n}`)).toEqual(['contoso-byok/exp-a', 'keyturn-local/exp-b', 'contoso-byok/exp-c']);
    const times = expired.map(([, , t]) => Date.parse(t as string));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('never answers 5xx for object names like constructor and toString', async () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
      for (const [method, path] of [
        ['GET', `/secrets/${name}`],
        ['GET', `/keys/${name}`],
        ['GET', `/secrets/${name}/versions`],
        ['GET', `/deletedsecrets/${name}`],
        ['POST', `/keys/${name}/wrapkey`],
        ['POST', `/keys/${name}/sign`],
        ['DELETE', `/deletedkeys/${name}`],
      ] as const) {
        const res = await stack.raw('contoso-admin', stack.customer, method, `${path}?api-version=7.5`, method === 'POST' ? { alg: 'RS256', value: 'AA' } : undefined);
        // A miss or a refusal (versions of an unknown name is an empty list, as in the service).
        expect({ path, notServerError: res.status < 500 }).toEqual({ path, notServerError: true });
      }
    }
    const miss = await stack.raw('contoso-admin', stack.customer, 'GET', '/secrets/constructor?api-version=7.5');
    expect(miss.status).toBe(404);
    expect(miss.body.error.code).toBe('SecretNotFound');
  });

  it('purge protection: purge is refused, the soft-deleted secret stays recoverable', async () => {
    const admin = stack.as('contoso-admin', stack.customer).secrets;
    await admin.setSecret('protected', 'v1');
    await (await admin.beginDeleteSecret('protected', { intervalInMs: 50 })).pollUntilDone();
    await expect(admin.purgeDeletedSecret('protected')).rejects.toMatchObject({ statusCode: 403, code: 'Forbidden' });
    const raw = await stack.raw('contoso-admin', stack.customer, 'DELETE', '/deletedsecrets/protected?api-version=7.5');
    expect(raw.body.error.innererror.code).toBe('PurgeProtectionEnabled');
    await (await admin.beginRecoverDeletedSecret('protected', { intervalInMs: 50 })).pollUntilDone();
    expect((await admin.getSecret('protected')).value).toBe('v1');
  });
});
