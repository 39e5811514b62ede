/**
 * Key Vault data-plane RBAC, managed over ARM's wire with the real
 * AuthorizationManagementClient: a role on one key, its removal, and who may assign.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { roleDefinitionIdFor } from '../../../local/arm/client';
import { resolveObjectId } from '../../../local/keyvault/principals';
import { ROLES } from '../../../local/keyvault/rbac';
import { rawRequest } from '../../helpers/keyvault';
import { startRbacStack, type RbacStack } from '../../helpers/rbac';

const APP = resolveObjectId('keyturn-app')!;
const CSEU = ROLES.keyVaultCryptoServiceEncryptionUser.id;

describe('Key Vault RBAC with ARM role assignments', () => {
  let stack: RbacStack;
  let kid: string;
  let keyScope: string;
  let assignmentName: string;
  beforeAll(async () => {
    stack = await startRbacStack({ armPageSize: 2 });
    const admin = stack.as('contoso-admin', stack.customer);
    kid = (await admin.keys.createRsaKey('tenant-kek')).id!;
    await admin.keys.createRsaKey('other-kek');
    await admin.secrets.setSecret('customer-secret', 'do-not-read');
    keyScope = `${stack.customer.scope}/keys/tenant-kek`;
  });
  afterAll(() => stack.close());

  it('the app has no role in the customer vault until one is assigned', async () => {
    const res = await stack.raw('keyturn-app', stack.customer, 'POST', '/keys/tenant-kek/unwrapkey?api-version=7.5', { alg: 'RSA-OAEP', value: 'AAAA' });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: { code: 'Forbidden', message: expect.stringContaining("Action: 'Microsoft.KeyVault/vaults/keys/unwrap/action'"), innererror: { code: 'ForbiddenByRbac' } } });
  });

  it('contoso-admin grants Crypto Service Encryption User on one key: wrap/unwrap that key and nothing else', async () => {
    assignmentName = randomUUID();
    const created = await stack.armAs('contoso-admin').roleAssignments.create(keyScope, assignmentName, {
      roleDefinitionId: roleDefinitionIdFor(CSEU),
      principalId: APP,
      principalType: 'ServicePrincipal',
    });
    expect(created).toMatchObject({ name: assignmentName, scope: keyScope, principalId: APP, roleDefinitionId: roleDefinitionIdFor(CSEU) });

    // Next request: the SDK's own client wraps and unwraps.
    const app = stack.as('keyturn-app', stack.customer);
    const crypto = app.crypto(kid);
    const dek = randomBytes(32);
    const wrapped = await crypto.wrapKey('RSA-OAEP', dek);
    expect(Buffer.from((await crypto.unwrapKey('RSA-OAEP', wrapped.result)).result)).toEqual(dek);
    expect((await app.keys.getKey('tenant-kek')).name).toBe('tenant-kek');

    // Raw calls: the SDK's client-side checks could refuse before the vault does.
    const denied: [string, string, unknown][] = [
      ['POST', '/keys/tenant-kek/sign?api-version=7.5', { alg: 'RS256', value: Buffer.alloc(32).toString('base64url') }],
      ['POST', '/keys/tenant-kek/decrypt?api-version=7.5', { alg: 'RSA-OAEP', value: 'AAAA' }],
      ['POST', '/keys/other-kek/unwrapkey?api-version=7.5', { alg: 'RSA-OAEP', value: 'AAAA' }],
      ['GET', '/keys/other-kek?api-version=7.5', undefined],
      ['GET', '/keys?api-version=7.5', undefined],
      ['GET', '/secrets/customer-secret?api-version=7.5', undefined],
      ['DELETE', '/keys/tenant-kek?api-version=7.5', undefined],
      ['POST', '/keys/tenant-kek/create?api-version=7.5', { kty: 'RSA' }],
    ];
    for (const [method, path, body] of denied) {
      const res = await stack.raw('keyturn-app', stack.customer, method, path, body);
      expect({ path, status: res.status, inner: res.body?.error?.innererror?.code }).toEqual({ path, status: 403, inner: 'ForbiddenByRbac' });
    }
  });

  it('a denied write changes nothing and emits no event', async () => {
    stack.recorder.clear();
    const versionsBefore = (await stack.raw('contoso-admin', stack.customer, 'GET', '/keys/tenant-kek/versions?api-version=7.5')).body.value.length;
    const res = await stack.raw('intruder', stack.customer, 'POST', '/keys/tenant-kek/rotate?api-version=7.5', {});
    expect(res.status).toBe(403);
    const put = await stack.raw('intruder', stack.customer, 'PUT', '/secrets/customer-secret?api-version=7.5', { value: 'overwritten' });
    expect(put.status).toBe(403);
    expect(stack.recorder.events).toEqual([]);
    expect((await stack.raw('contoso-admin', stack.customer, 'GET', '/keys/tenant-kek/versions?api-version=7.5')).body.value.length).toBe(versionsBefore);
    expect((await stack.as('contoso-admin', stack.customer).secrets.getSecret('customer-secret')).value).toBe('do-not-read');
  });

  it('intruder cannot create or delete an assignment (403 AuthorizationFailed); nor can the app in the customer vault', async () => {
    for (const principal of ['intruder', 'keyturn-app']) {
      const client = stack.armAs(principal);
      await expect(
        client.roleAssignments.create(stack.customer.scope, randomUUID(), { roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultAdministrator.id), principalId: resolveObjectId(principal)! }),
      ).rejects.toMatchObject({ statusCode: 403, code: 'AuthorizationFailed' });
      await expect(client.roleAssignments.delete(keyScope, assignmentName)).rejects.toMatchObject({ statusCode: 403, code: 'AuthorizationFailed' });
    }
    expect(stack.authorization.get(assignmentName)).toBeDefined();
  });

  it('listForScope with assignedTo pages through nextLink', async () => {
    const admin = stack.armAs('contoso-admin');
    // Two more for the app at vault scope, so its list spans pages of 2.
    for (const role of [ROLES.keyVaultReader.id, ROLES.keyVaultSecretsUser.id]) {
      await admin.roleAssignments.create(stack.customer.scope, randomUUID(), { roleDefinitionId: roleDefinitionIdFor(role), principalId: APP });
    }
    const seen: string[] = [];
    let pages = 0;
    for await (const page of admin.roleAssignments.listForScope(stack.customer.scope, { filter: `assignedTo('${APP}')` }).byPage()) {
      pages++;
      seen.push(...page.map((a) => a.roleDefinitionId!.split('/').pop()!));
    }
    expect(pages).toBe(2);
    expect(seen.sort()).toEqual([CSEU, ROLES.keyVaultReader.id, ROLES.keyVaultSecretsUser.id].sort());
    // atScope(): only assignments at or above the vault, so not the key-scoped one.
    const atVault: string[] = [];
    for await (const a of admin.roleAssignments.listForScope(stack.customer.scope, { filter: `atScope() and assignedTo('${APP}')` })) atVault.push(a.roleDefinitionId!.split('/').pop()!);
    expect(atVault.sort()).toEqual([ROLES.keyVaultReader.id, ROLES.keyVaultSecretsUser.id].sort());
  });

  it('after roleAssignments.delete by contoso-admin the next unwrap is 403', async () => {
    const app = stack.as('keyturn-app', stack.customer).crypto(kid);
    const wrapped = await app.wrapKey('RSA-OAEP', randomBytes(32));
    const removed = await stack.armAs('contoso-admin').roleAssignments.delete(keyScope, assignmentName);
    expect(removed.name).toBe(assignmentName);
    await expect(app.unwrapKey('RSA-OAEP', wrapped.result)).rejects.toMatchObject({ statusCode: 403, code: 'Forbidden' });
    const raw = await stack.raw('keyturn-app', stack.customer, 'POST', '/keys/tenant-kek/unwrapkey?api-version=7.5', { alg: 'RSA-OAEP', value: Buffer.from(wrapped.result).toString('base64url') });
    expect(raw.body.error.innererror.code).toBe('ForbiddenByRbac');
    await expect(stack.armAs('contoso-admin').roleAssignments.get(keyScope, assignmentName)).rejects.toMatchObject({ statusCode: 404, code: 'RoleAssignmentNotFound' });
  });

  it('no token, or a token that is not an unsigned JWT with oid, gets the 401 challenge first', async () => {
    const none = await rawRequest(stack.customer, 'GET', '/keys?api-version=7.5');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer resource="https://vault.azure.net"');
    for (const token of ['opaque', 'a.b.c', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.`]) {
      const res = await rawRequest(stack.customer, 'GET', '/keys?api-version=7.5', { token });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer resource="https://vault.azure.net"');
    }
    // oid may be the directory name as well as the object id.
    const byName = await rawRequest(stack.customer, 'GET', '/keys?api-version=7.5', {
      token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"oid":"contoso-admin"}').toString('base64url')}.`,
    });
    expect(byName.status).toBe(200);
  });

  it('seeded: the app has Secrets Officer + Crypto Officer on keyturn-local, the operator is Administrator there', async () => {
    const app = stack.as('keyturn-app', stack.keyturn);
    await app.secrets.setSecret('app-secret', 'v');
    await app.keys.createEcKey('app-key');
    await (await app.keys.beginDeleteKey('app-key', { intervalInMs: 50 })).pollUntilDone();
    const op = stack.as('operator', stack.keyturn);
    expect((await op.secrets.getSecret('app-secret')).value).toBe('v');
    const denied = await stack.raw('intruder', stack.keyturn, 'GET', '/secrets/app-secret?api-version=7.5');
    expect(denied.status).toBe(403);
  });

  it('the app may grant and remove Key Vault data roles on its own vault, but no other role', async () => {
    const app = stack.armAs('keyturn-app');
    const name = randomUUID();
    const intruder = resolveObjectId('intruder')!;
    await app.roleAssignments.create(stack.keyturn.scope, name, { roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultSecretsUser.id), principalId: intruder });
    expect((await stack.raw('intruder', stack.keyturn, 'GET', '/secrets/app-secret?api-version=7.5')).status).toBe(200);
    await app.roleAssignments.delete(stack.keyturn.scope, name);
    expect((await stack.raw('intruder', stack.keyturn, 'GET', '/secrets/app-secret?api-version=7.5')).status).toBe(403);
    await expect(
      app.roleAssignments.create(stack.keyturn.scope, randomUUID(), { roleDefinitionId: roleDefinitionIdFor(ROLES.owner.id), principalId: intruder }),
    ).rejects.toMatchObject({ statusCode: 403, code: 'AuthorizationFailed' });
  });
});
