/**
 * The rekey-after-days policy on the real local stack (KEYTURN_TENANT_REKEY_AFTER_DAYS=1):
 * the emulator's clock moved past a day, the tenant timer rekeys a service-managed
 * tenant once (a second run is a no-op); content protected before still opens. Timers
 * never fire on their own here: the test runs them (no race with the clock move).
 */
import { CompactEncrypt, importJWK } from 'jose';
import { eventually } from '../../helpers/process';
import { type TestStack, call, startStack } from '../../helpers/stack';

const TENANT = 'acme-aged';

describe('When KEYTURN_TENANT_REKEY_AFTER_DAYS is set', () => {
  let stack: TestStack;
  let api: string;

  beforeAll(async () => {
    stack = await startStack({ env: { KEYTURN_RESUME_SCHEDULE: '0 0 0 1 1 *', KEYTURN_TENANT_PROBE_SCHEDULE: '0 0 0 1 1 *', KEYTURN_TENANT_REKEY_AFTER_DAYS: '1' } });
    api = `${stack.host!.url}/api`;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const tenant = async () => (await call('GET', `${api}/tenants/${TENANT}`)).json().tenant;
  async function runTimer() {
    const done = /Executed 'Functions\.tenantAccessProbes'/;
    const before = stack.host!.logs().filter((l) => done.test(l)).length;
    expect((await call('POST', `${stack.host!.url}/admin/functions/tenantAccessProbes`, { body: { input: '' } })).status).toBe(202);
    await eventually(() => stack.host!.logs().filter((l) => done.test(l)).length > before || undefined, 'the tenant timer to run', 30_000, 200);
  }

  test('then the tenant timer rekeys a version in use older than a day, once, and old content opens', async () => {
    const created = await call('POST', `${api}/tenants`, { body: { tenantId: TENANT, topology: 'service-managed' } });
    expect(created.status).toBe(201);
    const first = created.json().tenant.activeKid as string;
    const [jwk] = (await call('GET', `${api}/tenants/${TENANT}/keys`)).json<{ keys: Record<string, string>[] }>().keys;
    const jwe = await new CompactEncrypt(new TextEncoder().encode('written on day one'))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk!.kid })
      .encrypt(await importJWK(jwk!, 'RSA-OAEP-256'));

    await runTimer();
    expect((await tenant()).versions).toHaveLength(1); // younger than a day: nothing

    await stack.keyVault.moveClock(25 * 3600);
    await runTimer();
    const after = await tenant();
    expect(after).toMatchObject({ state: 'changeover' });
    expect(after.activeKid).not.toBe(first);
    expect(after.versions).toHaveLength(2);
    expect(stack.host!.logs().some((l) => /rekey-after-days/i.test(l))).toBe(true);

    await runTimer(); // the new version is young; the old one is no longer in use
    expect((await tenant()).versions).toHaveLength(2);
    const opened = await call('POST', `${api}/tenants/${TENANT}/unprotect`, { body: { jwe } });
    expect({ status: opened.status, plaintext: opened.json().plaintext }).toEqual({ status: 200, plaintext: Buffer.from('written on day one').toString('base64') });
  });
});
