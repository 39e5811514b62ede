/**
 * Rekey with phased changeover on the real local stack: content protected offline with
 * jose before a rekey opens during and after the changeover, and after the archived
 * version's original `exp` (the emulator's clock moved); the resume timer archives the
 * previous version when the window ends; a compromised version leaves /keys at once.
 */
import { CompactEncrypt, decodeProtectedHeader, importJWK } from 'jose';
import { rawRequest } from '../../helpers/keyvault';
import { eventually } from '../../helpers/process';
import { type TestStack, call, startStack, staticCredential } from '../../helpers/stack';

const HOUR_S = 3600;
const DAY_S = 24 * HOUR_S;

describe('When a service-managed tenant is rekeyed on the local stack', () => {
  let stack: TestStack;
  let api: string;
  const TENANT = 'rekeyco';

  beforeAll(async () => {
    // The resume timer never fires on its own here: the test runs it (no race with the clock moves).
    stack = await startStack({ env: { KEYTURN_RESUME_SCHEDULE: '0 0 0 1 1 *' } });
    api = `${stack.host!.url}/api`;
    expect((await call('POST', `${api}/tenants`, { body: { tenantId: TENANT, topology: 'service-managed' } })).status).toBe(201);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const post = (path: string, body: unknown) => call('POST', `${api}/${path}`, { body });
  const tenant = async () => (await call('GET', `${api}/tenants/${TENANT}`)).json().tenant;
  const keys = async () => (await call('GET', `${api}/tenants/${TENANT}/keys`)).json<{ keys: Record<string, string>[] }>().keys;
  const resumeTimer = async () => expect((await call('POST', `${stack.host!.url}/admin/functions/resumeRotations`, { body: { input: '' } })).status).toBe(202);

  async function joseProtect(plaintext: string, jwk: Record<string, string>) {
    return new CompactEncrypt(new TextEncoder().encode(plaintext))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk.kid })
      .encrypt(await importJWK(jwk, 'RSA-OAEP-256'));
  }
  async function opens(jwe: string, plaintext: string) {
    const res = await post(`tenants/${TENANT}/unprotect`, { jwe });
    expect({ status: res.status, body: res.json() }).toMatchObject({ status: 200, body: { plaintext: Buffer.from(plaintext).toString('base64') } });
  }
  const refOf = (kid: string) => {
    const [, name, version] = /\/keys\/([^/]+)\/([^/]+)$/.exec(kid)!;
    return { name: name!, version: version! };
  };

  let oldKid: string;
  let oldJwk: Record<string, string>;
  let before: string;

  test('then the new version protects at once and the old one stays published for the changeover', async () => {
    [oldJwk] = (await keys()) as [Record<string, string>];
    oldKid = oldJwk.kid!;
    before = await joseProtect('written before the rekey', oldJwk);

    const res = await post(`tenants/${TENANT}/rekey`, { reason: 'yearly', requestedBy: 'ops' });
    expect(res.status).toBe(200);
    const t = res.json().tenant;
    expect(t.state).toBe('changeover');
    expect(t.activeKid).not.toBe(oldKid);
    expect(t.versions.map((v: { state: string }) => v.state)).toEqual(['active', 'active']);
    // Same Key Vault key, a new version.
    expect(refOf(t.activeKid).name).toBe(refOf(oldKid).name);
    expect((await keys()).map((k) => k.kid)).toEqual([t.activeKid, oldKid]);

    const protectedNow = (await post(`tenants/${TENANT}/protect`, { plaintext: Buffer.from('after').toString('base64') })).json();
    expect(protectedNow.kid).toBe(t.activeKid);
    expect(decodeProtectedHeader(protectedNow.jwe).kid).toBe(t.activeKid);
    await opens(before, 'written before the rekey');
    // A client that cached the old key keeps protecting with it during the changeover.
    await opens(await joseProtect('cached old key', oldJwk), 'cached old key');
  });

  test('then a retry naming fromKid is a no-op', async () => {
    const activeKid = (await tenant()).activeKid;
    const res = await post(`tenants/${TENANT}/rekey`, { reason: 'yearly', fromKid: oldKid });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ started: false, tenant: { activeKid } });
    expect((await tenant()).versions).toHaveLength(2);
    expect((await stack.keyVault.keyClient().listPropertiesOfKeyVersions(refOf(oldKid).name).byPage().next()).value).toHaveLength(2);
  });

  test('then the timer archives the old version once the window ends: unpublished, unwrap/decrypt only, no exp', async () => {
    await resumeTimer();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await tenant()).state).toBe('changeover'); // not due yet
    await stack.keyVault.moveClock(DAY_S + HOUR_S);
    await resumeTimer(); // the host runs it in the background (202)
    const t = await eventually(async () => {
      const now = await tenant();
      return now.state === 'active' ? now : undefined;
    }, 'the changeover to end', 30_000, 250);
    expect(t.changeoverUntil).toBeNull();
    expect(t.versions.find((v: { kid: string }) => v.kid === oldKid)).toMatchObject({ state: 'archived' });
    expect((await keys()).map((k) => k.kid)).toEqual([t.activeKid]);

    const { name, version } = refOf(oldKid);
    const key = await stack.keyVault.keyClient().getKey(name, { version });
    expect(key.keyOperations?.sort()).toEqual(['decrypt', 'unwrapKey']);
    expect(key.properties.expiresOn).toBeUndefined();
    // A raw REST wrapKey with the archived version is refused by the vault itself.
    const { token } = (await staticCredential.getToken('https://vault.azure.net/.default'))!;
    const wrap = await rawRequest({ url: stack.keyVault.url, ca: stack.ca }, 'POST', `/keys/${name}/${version}/wrapkey?api-version=7.5`, {
      token,
      body: { alg: 'RSA-OAEP-256', value: Buffer.alloc(32).toString('base64url') },
    });
    expect(wrap.status).toBe(403);
    await opens(before, 'written before the rekey');
  });

  test('then a compromised version leaves /keys at once and still opens old content', async () => {
    const t0 = await tenant();
    const [current] = (await keys()) as [Record<string, string>];
    const under = await joseProtect('under the leaked key', current);
    const res = await post(`tenants/${TENANT}/rekey`, { reason: 'leaked', compromised: true, fromKid: t0.activeKid });
    expect(res.status).toBe(200);
    const t = res.json().tenant;
    expect(t.state).toBe('active');
    expect(t.versions.find((v: { kid: string }) => v.kid === t0.activeKid)).toMatchObject({ state: 'archived', compromised: true });
    expect((await keys()).map((k) => k.kid)).toEqual([t.activeKid]);
    await opens(under, 'under the leaked key');
    await opens(before, 'written before the rekey');
  });

  test("then old content still opens after the archived version's original exp has passed", async () => {
    // Last: the move also fires KeyNearExpiry for the version in use (a rekey may follow).
    await stack.keyVault.moveClock(400 * DAY_S);
    await opens(before, 'written before the rekey');
  });
});
