/**
 * Tenant create as a step-kernel job on the real local stack: a host that crashes at a
 * step boundary (KEYTURN_FAULTS) leaves a create that the resume timer completes with
 * exactly one key version in the vault; the same body again answers the same tenant.
 * BYOK: a key refused after its claim was taken (Keyturn may read but not wrap) frees the
 * claim, so the customer can give the key to another tenant, or fix the role and retry.
 */
import { randomUUID } from 'node:crypto';
import { roleDefinitionIdFor } from '../../../local/arm/client';
import { resolveObjectId } from '../../../local/keyvault/principals';
import { ROLES } from '../../../local/keyvault/rbac';
import { type TestHost, type TestStack, call, startStack } from '../../helpers/stack';

describe('When tenants are created on the local stack (create is a step-kernel job)', () => {
  let stack: TestStack;
  let api: string;
  let crashing: TestHost;

  beforeAll(async () => {
    // The resume timer never fires on its own here: the test runs it.
    stack = await startStack({ env: { KEYTURN_RESUME_SCHEDULE: '0 0 0 1 1 *' } });
    api = `${stack.host!.url}/api`;
    // Crashes once after the key step ran (before its record), once when the tenant step is claimed; short leases.
    crashing = await stack.startSecondHost({ KEYTURN_FAULTS: 'create-key:after*1,create-tenant:claimed*1', KEYTURN_ROTATION_LEASE_SECONDS: '2' });
  });
  afterAll(async () => {
    await crashing?.stop();
    await stack?.stop();
  });

  const post = (path: string, body: unknown, base = api) => call('POST', `${base}/${path}`, { body });
  const resume = async () => expect((await call('POST', `${stack.host!.url}/admin/functions/resumeRotations`, { body: { input: '' } })).status).toBe(202);
  const versionsOf = async (name: string) => {
    const out = [];
    for await (const p of stack.keyVault.keyClient().listPropertiesOfKeyVersions(name)) out.push(p);
    return out;
  };

  test.each([['fabrikam', 'after the key step'], ['northwind', 'when the tenant step is claimed']])(
    'then a create of %s that crashed %s completes by resume with exactly one key version',
    async (tenantId) => {
      const body = { tenantId, topology: 'service-managed', adminContacts: [`admin@${tenantId}.example`] };
      expect((await post('tenants', body, `${crashing.url}/api`)).status).toBe(500);
      let res = await call('GET', `${api}/tenants/${tenantId}`);
      for (let i = 0; i < 60 && res.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        await resume();
        res = await call('GET', `${api}/tenants/${tenantId}`);
      }
      const { tenant } = res.json();
      expect(tenant).toMatchObject({ tenantId, state: 'active', adminContacts: [`admin@${tenantId}.example`] });
      expect(tenant.versions).toHaveLength(1);
      const name = /\/keys\/([^/]+)\//.exec(tenant.activeKid)![1]!;
      const versions = await versionsOf(name);
      expect(versions.map((v) => `${stack.keyVault.url}/keys/${name}/${v.version}`)).toEqual([tenant.activeKid]);

      const again = await post('tenants', body);
      expect(again.status).toBe(201);
      expect(again.json().tenant.activeKid).toBe(tenant.activeKid);
      expect((await post('tenants', { ...body, adminContacts: [] })).json().code).toBe('TENANT_EXISTS');
      expect(await versionsOf(name)).toHaveLength(1);
    },
  );

  test('then a BYOK key refused after its claim was taken is free again: another tenant the customer tags it for takes it', async () => {
    const byok = stack.vaults['contoso-byok']!;
    const admin = byok.keyClient('contoso-admin');
    await admin.createRsaKey('shared-key', { keySize: 2048, tags: { 'keyturn-tenant': 'tailspin' } });
    const grant = async (role: { id: string }) =>
      stack.arm.client('contoso-admin').roleAssignments.create(`${byok.scope}/keys/shared-key`, randomUUID(), {
        roleDefinitionId: roleDefinitionIdFor(role.id),
        principalId: resolveObjectId('keyturn-app') as string,
        principalType: 'ServicePrincipal',
      });
    await grant(ROLES.keyVaultReader); // Keyturn reads the key but may not wrap: refused at the probe, after the claim
    const url = `${byok.url}/keys/shared-key`;
    const refused = await post('tenants', { tenantId: 'tailspin', topology: 'byok', keyUrl: url });
    expect(refused.status).toBe(400);
    expect(refused.json()).toMatchObject({ field: 'keyUrl', detail: expect.stringMatching(/wrap and unwrap/) });

    // The customer gives the key to another tenant instead; its claim is free, so it is taken.
    await admin.updateKeyProperties('shared-key', (await admin.getKey('shared-key')).properties.version!, { tags: { 'keyturn-tenant': 'wingtip' } });
    await grant(ROLES.keyVaultCryptoServiceEncryptionUser);
    const created = await post('tenants', { tenantId: 'wingtip', topology: 'byok', keyUrl: url });
    expect(created.status).toBe(201);
    expect(created.json().tenant.activeKid).toMatch(new RegExp(`^${url}/`));
    // …and the first tenant, now fixed but no longer tagged, is refused (the tag), not left half-created.
    const retry = await post('tenants', { tenantId: 'tailspin', topology: 'byok', keyUrl: url });
    expect(retry.status).toBe(400);
    expect((await call('GET', `${api}/tenants/tailspin`)).status).toBe(404);
  });
});
