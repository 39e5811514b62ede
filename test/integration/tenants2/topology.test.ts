/**
 * The topology switch on the real local stack, both ways: a service-managed tenant
 * switches to a key in the customer vault `contoso-byok` (onboarding rules apply to
 * `keyUrl`), then back to a key Keyturn generates. Content protected before each switch
 * still opens; a BYOK tenant is never exported; after the switch back, the package
 * lists the customer's version as not exportable.
 */
import { randomUUID } from 'node:crypto';
import { roleDefinitionIdFor } from '../../../local/arm/client';
import { resolveObjectId } from '../../../local/keyvault/principals';
import { ROLES } from '../../../local/keyvault/rbac';
import { type TestStack, startStack } from '../../helpers/stack';
import { api, workdir } from './helpers';

const TENANT = 'fabrikam-t';

describe('When a tenant switches topology both ways', () => {
  let stack: TestStack;
  let http: ReturnType<typeof api>;
  const content: [string, string][] = [];
  let keyUrl: string;
  let byokKid: string;

  beforeAll(async () => {
    stack = await startStack();
    http = api(stack);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const byok = () => stack.vaults['contoso-byok']!;
  const allOpen = async () => {
    for (const [jwe, plaintext] of content) expect(await http.unprotect(TENANT, jwe)).toBe(plaintext);
  };

  test('then a service-managed tenant switches to the customer key, and content from before still opens', async () => {
    expect((await http.post('tenants', { tenantId: TENANT, topology: 'service-managed' })).status).toBe(201);
    content.push([await http.protect(TENANT, 'service-managed era'), 'service-managed era']);
    await byok().keyClient('contoso-admin').createRsaKey('fabrikam-key', { keySize: 3072, tags: { 'keyturn-tenant': TENANT } });
    await stack.arm.client('contoso-admin').roleAssignments.create(`${byok().scope}/keys/fabrikam-key`, randomUUID(), {
      roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultCryptoServiceEncryptionUser.id),
      principalId: resolveObjectId('keyturn-app') as string,
      principalType: 'ServicePrincipal',
    });
    keyUrl = `${byok().url}/keys/fabrikam-key`;
    const missing = await http.post(`tenants/${TENANT}/topology`, { to: 'byok', reason: 'customer brings its key' });
    expect([missing.status, missing.json().field]).toEqual([400, 'keyUrl']);
    const untagged = await http.post(`tenants/${TENANT}/topology`, { to: 'byok', keyUrl: `${stack.keyVault.url}/keys/whatever`, reason: 'r' });
    expect([untagged.status, untagged.json().field]).toEqual([400, 'keyUrl']);

    const res = await http.post(`tenants/${TENANT}/topology`, { to: 'byok', keyUrl, reason: 'customer brings its key' });
    expect(res.status).toBe(200);
    const { tenant } = res.json();
    expect(tenant).toMatchObject({ topology: 'byok', state: 'changeover' });
    expect(tenant.activeKid.startsWith(`${keyUrl}/`)).toBe(true);
    byokKid = tenant.activeKid;
    expect(tenant.versions).toHaveLength(2);
    content.push([await http.protect(TENANT, 'byok era'), 'byok era']);
    await allOpen();
    // The same switch again: a no-op.
    const again = await http.post(`tenants/${TENANT}/topology`, { to: 'byok', keyUrl, reason: 'customer brings its key' });
    expect([again.status, again.json().tenant.activeKid]).toEqual([200, byokKid]);
  });

  test('then the BYOK tenant is never exported', async () => {
    const tool = workdir();
    tool.sh('openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null | openssl pkey -pubout -out pub.pem');
    const res = await http.post(`tenants/${TENANT}/exports`, { requesterPublicKey: tool.read('pub.pem'), reason: 'r', requestedBy: 'alice' });
    tool.remove();
    expect([res.status, res.json().code]).toEqual([409, 'EXPORT_NOT_ALLOWED']);
  });

  test('then it switches back to a key Keyturn generates; all content opens; the export lists the customer version as not exportable', async () => {
    const bad = await http.post(`tenants/${TENANT}/topology`, { to: 'service-managed', keyUrl, reason: 'r' });
    expect([bad.status, bad.json().field]).toEqual([400, 'keyUrl']);
    const res = await http.post(`tenants/${TENANT}/topology`, { to: 'service-managed', reason: 'customer leaves BYOK' });
    expect(res.status).toBe(200);
    const { tenant } = res.json();
    expect(tenant.topology).toBe('service-managed');
    expect(tenant.activeKid).toMatch(new RegExp(`^${stack.keyVault.url}/keys/tenant-${TENANT}-[0-9a-f]{8}/`));
    expect(tenant.versions).toHaveLength(3);
    content.push([await http.protect(TENANT, 'service-managed again'), 'service-managed again']);
    await allOpen();

    const tool = workdir();
    tool.sh('openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null | openssl pkey -pubout -out pub.pem');
    const req = (await http.post(`tenants/${TENANT}/exports`, { requesterPublicKey: tool.read('pub.pem'), reason: 'r', requestedBy: 'alice' })).json().export;
    tool.remove();
    const approved = await http.post(`tenants/${TENANT}/exports/${req.id}/approve`, { publicKeySha256: req.publicKeySha256, approvedBy: 'bob' });
    expect(approved.status).toBe(200);
    expect(approved.json().export.package.notExportable).toEqual([byokKid]);
    expect(approved.json().export.package.exportable).toHaveLength(2);
  });
});
