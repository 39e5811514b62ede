/**
 * Service-managed tenant keys on the real local stack: the app in the local functions
 * host, the key imported into the Key Vault emulator, the tenant in the Cosmos server,
 * and jose as the client (protect offline with the published key; only Keyturn opens).
 */
import { CompactEncrypt, base64url, decodeProtectedHeader, importJWK } from 'jose';
import { type TestStack, call, startStack } from '../../helpers/stack';

describe('When a service-managed tenant protects content on the local stack', () => {
  let stack: TestStack;
  let api: string;
  const TENANT = 'contoso';

  beforeAll(async () => {
    stack = await startStack();
    api = `${stack.host!.url}/api`;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const post = (path: string, body: unknown) => call('POST', `${api}/${path}`, { body });
  const keysOf = async (tenantId = TENANT) => (await call('GET', `${api}/tenants/${tenantId}/keys`)).json<{ keys: Record<string, string>[] }>().keys;

  async function joseProtect(plaintext: string, tenantId = TENANT, header: Record<string, unknown> = {}) {
    const [jwk] = await keysOf(tenantId);
    return new CompactEncrypt(new TextEncoder().encode(plaintext))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: jwk!.kid, ...header })
      .encrypt(await importJWK(jwk!, 'RSA-OAEP-256'));
  }
  const unprotect = (jwe: string, tenantId = TENANT) => post(`tenants/${tenantId}/unprotect`, { jwe });

  test('then the tenant is created with one active version, and a second create is 409 TENANT_EXISTS', async () => {
    const res = await post('tenants', { tenantId: TENANT, topology: 'service-managed', adminContacts: ['admin@contoso.example'], requestedBy: 'ops@example.com' });
    expect(res.status).toBe(201);
    const { tenant } = res.json();
    expect(tenant).toMatchObject({ tenantId: TENANT, topology: 'service-managed', state: 'active', changeoverUntil: null });
    expect(tenant.versions).toHaveLength(1);
    expect(tenant.versions[0]).toMatchObject({ kid: tenant.activeKid, state: 'active', compromised: false });
    expect(tenant.activeKid).toMatch(new RegExp(`^${stack.keyVault.url}/keys/tenant-${TENANT}-[0-9a-f]{8}/[0-9a-f]+$`));

    const again = await post('tenants', { tenantId: TENANT, topology: 'service-managed' });
    expect(again.status).toBe(409);
    expect(again.json().code).toBe('TENANT_EXISTS');
    expect((await call('GET', `${api}/tenants/${TENANT}`)).json().tenant.activeKid).toBe(tenant.activeKid);
  });

  test('then its key was imported into Keyturn\'s vault: RSA 3072, tagged, with an expiry', async () => {
    const { tenant } = (await call('GET', `${api}/tenants/${TENANT}`)).json();
    const [, name, version] = /\/keys\/([^/]+)\/([^/]+)$/.exec(tenant.activeKid)!;
    const key = await stack.keyVault.keyClient().getKey(name!, { version });
    expect(key.key?.n?.length).toBe(384);
    expect(key.properties.tags).toEqual({ 'keyturn-tenant': TENANT });
    expect(key.keyOperations?.sort()).toEqual(['decrypt', 'encrypt', 'unwrapKey', 'wrapKey']);
    expect(key.properties.expiresOn).toBeInstanceOf(Date);
  });

  test('bad input is a 400 naming the field', async () => {
    for (const [body, field] of [
      [{ tenantId: 'X!', topology: 'service-managed' }, 'tenantId'],
      [{ tenantId: 'fabrikam', topology: 'cloud' }, 'topology'],
      [{ tenantId: 'fabrikam', topology: 'service-managed', adminContacts: ['not-an-email'] }, 'adminContacts.0'],
    ] as const) {
      const res = await post('tenants', body);
      expect(res.status).toBe(400);
      expect(res.json().field).toBe(field);
    }
    expect((await call('GET', `${api}/tenants/nobody-here`)).status).toBe(404);
    expect((await call('GET', `${api}/tenants/nobody-here/keys`)).status).toBe(404);
  });

  test('then /keys publishes the active key only as {kty, n, e, kid, use, alg}, cacheable, with an ETag and 304', async () => {
    const res = await call('GET', `${api}/tenants/${TENANT}/keys`);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=3600');
    const { keys } = res.json();
    expect(keys).toHaveLength(1);
    expect(Object.keys(keys[0]).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    expect(keys[0]).toMatchObject({ kty: 'RSA', use: 'enc', alg: 'RSA-OAEP-256' });
    const etag = res.headers.etag as string;
    expect(etag).toMatch(/^".+"$/);
    const cached = await call('GET', `${api}/tenants/${TENANT}/keys`, { headers: { 'if-none-match': etag } });
    expect(cached.status).toBe(304);
  });

  test('then content protected offline with jose opens through Keyturn, naming the version', async () => {
    const jwe = await joseProtect('quarterly numbers');
    const res = await unprotect(jwe);
    expect(res.status).toBe(200);
    const [jwk] = await keysOf();
    expect(res.json()).toEqual({ plaintext: Buffer.from('quarterly numbers').toString('base64'), kid: jwk!.kid });
  });

  test('then content protected through Keyturn carries the kid in its header and opens again', async () => {
    const res = await post(`tenants/${TENANT}/protect`, { plaintext: Buffer.from('board minutes').toString('base64') });
    expect(res.status).toBe(200);
    const { jwe, kid } = res.json();
    expect(decodeProtectedHeader(jwe)).toEqual({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid });
    const opened = await unprotect(jwe);
    expect(Buffer.from(opened.json().plaintext, 'base64').toString()).toBe('board minutes');
  });

  test('protect refuses more than 64 KiB and what is not base64', async () => {
    const big = await post(`tenants/${TENANT}/protect`, { plaintext: Buffer.alloc(64 * 1024 + 1).toString('base64') });
    expect(big.status).toBe(400);
    expect(big.json().field).toBe('plaintext');
    const max = await post(`tenants/${TENANT}/protect`, { plaintext: Buffer.alloc(64 * 1024, 7).toString('base64') });
    expect(max.status).toBe(200);
    expect(Buffer.from((await unprotect(max.json().jwe)).json().plaintext, 'base64').equals(Buffer.alloc(64 * 1024, 7))).toBe(true);
    expect((await post(`tenants/${TENANT}/protect`, { plaintext: 'not base64!' })).json().field).toBe('plaintext');
  });

  test('every tampered, truncated, wrong-alg or zip JWE is 400 JWE_INVALID, never a 500', async () => {
    const parts = (await joseProtect('secret')).split('.');
    const flip = (i: number) => {
      const bytes = base64url.decode(parts[i]!);
      bytes[bytes.length - 1]! ^= 1;
      return parts.map((p, j) => (j === i ? base64url.encode(bytes) : p)).join('.');
    };
    const header = (h: Record<string, unknown>) => [base64url.encode(JSON.stringify(h)), ...parts.slice(1)].join('.');
    const kid = decodeProtectedHeader(parts.join('.')).kid;
    const cases: Record<string, string> = {
      'tampered ciphertext': flip(3),
      'tampered tag': flip(4),
      'tampered encrypted key': flip(1),
      'truncated': parts.slice(0, 4).join('.'),
      'truncated ciphertext': [...parts.slice(0, 3), parts[3]!.slice(0, 4), parts[4]].join('.'),
      'wrong alg': header({ alg: 'RSA-OAEP', enc: 'A256GCM', kid }),
      'zip': await joseProtect('secret', TENANT, { zip: 'DEF' }).catch(() => header({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid, zip: 'DEF' })),
      'a kid that is not this tenant\'s': header({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'https://evil.example/keys/x/1' }),
      'not a JWE at all': 'hello',
    };
    for (const [what, jwe] of Object.entries(cases)) {
      const res = await unprotect(jwe);
      expect({ what, status: res.status, code: res.json().code }).toEqual({ what, status: 400, code: 'JWE_INVALID' });
    }
  });

  test("another tenant's content does not open under this tenant (kids are looked up among its own versions)", async () => {
    expect((await post('tenants', { tenantId: 'fabrikam', topology: 'service-managed' })).status).toBe(201);
    const theirs = await joseProtect('fabrikam only', 'fabrikam');
    expect((await unprotect(theirs, 'fabrikam')).status).toBe(200);
    const res = await unprotect(theirs, TENANT);
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('JWE_INVALID');
  });

  test('When a tenant is revoked, then a wrong confirm changes nothing, and then all use stops and every version is disabled', async () => {
    const wrong = await post('tenants/fabrikam/revoke', { confirm: 'contoso', reason: 'subscription ended' });
    expect(wrong.status).toBe(400);
    expect(wrong.json().field).toBe('confirm');
    expect((await call('GET', `${api}/tenants/fabrikam`)).json().tenant.state).toBe('active');

    const old = await joseProtect('fabrikam secret', 'fabrikam');
    const res = await post('tenants/fabrikam/revoke', { confirm: 'fabrikam', reason: 'subscription ended' });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ complete: true, remaining: [], tenant: { state: 'revoked', activeKid: null } });
    const kid = res.json().tenant.versions[0].kid as string;
    const [, name, version] = /\/keys\/([^/]+)\/([^/]+)$/.exec(kid)!;
    expect((await stack.keyVault.keyClient().getKey(name!, { version })).properties.enabled).toBe(false);

    expect((await unprotect(old, 'fabrikam')).json().code).toBe('TENANT_REVOKED');
    expect((await post('tenants/fabrikam/protect', { plaintext: 'AA==' })).json().code).toBe('TENANT_REVOKED');
    expect(await keysOf('fabrikam')).toEqual([]);
    // Idempotent: posting again answers the same.
    expect((await post('tenants/fabrikam/revoke', { confirm: 'fabrikam', reason: 'again' })).json()).toMatchObject({ complete: true, remaining: [] });
  });

  test('the key policy is published', async () => {
    const res = await call('GET', `${api}/policy/keys`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ version: 1, rsaMinBits: 2048, forbiddenAlgorithms: ['RSA1_5'] });
  });
});
