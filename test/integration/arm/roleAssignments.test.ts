/** The local ARM endpoint's wire: ARM's 400/404/401 shapes, idempotent PUT, filters, GET by id. */
import { randomUUID } from 'node:crypto';
import { roleDefinitionIdFor } from '../../../local/arm/client';
import { resolveObjectId, tokenFor } from '../../../local/keyvault/principals';
import { ROLES } from '../../../local/keyvault/rbac';
import { requestJson } from '../../../local/httpJson';
import { startRbacStack, type RbacStack } from '../../helpers/rbac';

const APP = resolveObjectId('keyturn-app')!;

describe('local ARM: role assignments', () => {
  let stack: RbacStack;
  beforeAll(async () => {
    stack = await startRbacStack();
  });
  afterAll(() => stack.close());

  const raw = (method: string, path: string, body?: unknown, principal: string | null = 'contoso-admin') =>
    requestJson(`${stack.arm.url}${path}`, { method, ca: stack.ca, ...(body !== undefined ? { body } : {}), headers: principal ? { authorization: `Bearer ${tokenFor(principal)}` } : {} });
  const assignmentPath = (scope: string, name: string) => `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}?api-version=2022-04-01`;

  it('PUT creates (201), repeats idempotently, GET by id, DELETE 200 then 204', async () => {
    const client = stack.armAs('contoso-admin');
    const name = randomUUID();
    const props = { roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultCryptoUser.id), principalId: APP };
    const put = await raw('PUT', assignmentPath(stack.customer.scope, name), { properties: props });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ id: `${stack.customer.scope}/providers/Microsoft.Authorization/roleAssignments/${name}`, type: 'Microsoft.Authorization/roleAssignments', name, properties: { ...props, scope: stack.customer.scope, principalType: 'ServicePrincipal' } });
    expect((await raw('PUT', assignmentPath(stack.customer.scope, name), { properties: props })).status).toBe(201);
    const byId = await client.roleAssignments.getById(put.body.id);
    expect(byId.principalId).toBe(APP);
    // The same role for the same principal under another name: ARM's conflict.
    const dup = await raw('PUT', assignmentPath(stack.customer.scope, randomUUID()), { properties: props });
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('RoleAssignmentExists');
    expect((await raw('DELETE', assignmentPath(stack.customer.scope, name))).status).toBe(200);
    expect((await raw('DELETE', assignmentPath(stack.customer.scope, name))).status).toBe(204);
  });

  it("answers ARM's 400/404 shapes for unknown roles, bad ids, malformed scopes and filters", async () => {
    const ok = { roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultReader.id), principalId: APP };
    const cases: [string, string, unknown, number, string][] = [
      ['PUT', assignmentPath(stack.customer.scope, randomUUID()), { properties: { ...ok, roleDefinitionId: roleDefinitionIdFor(randomUUID()) } }, 400, 'RoleDefinitionDoesNotExist'],
      ['PUT', assignmentPath(stack.customer.scope, randomUUID()), { properties: { ...ok, roleDefinitionId: 'Owner' } }, 400, 'InvalidRoleDefinitionId'],
      ['PUT', assignmentPath(stack.customer.scope, randomUUID()), { properties: { ...ok, principalId: 'contoso-admin' } }, 400, 'InvalidPrincipalId'],
      ['PUT', assignmentPath(stack.customer.scope, randomUUID()), { nope: 1 }, 400, 'InvalidRequestContent'],
      ['PUT', assignmentPath(stack.customer.scope, 'not-a-guid'), { properties: ok }, 400, 'InvalidRoleAssignmentId'],
      ['GET', assignmentPath(stack.customer.scope, randomUUID()), undefined, 404, 'RoleAssignmentNotFound'],
      ['GET', assignmentPath('/subscriptions/11111111-1111-1111-1111-111111111111', randomUUID()), undefined, 404, 'SubscriptionNotFound'],
      ['GET', assignmentPath('/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/elsewhere', randomUUID()), undefined, 404, 'ResourceGroupNotFound'],
      ['GET', assignmentPath(stack.customer.scope.replace('contoso-byok', 'no-such-vault'), randomUUID()), undefined, 404, 'ResourceNotFound'],
      ['GET', assignmentPath(`${stack.customer.scope}/certificates/x`, randomUUID()), undefined, 400, 'InvalidResourceType'],
      ['GET', assignmentPath('/tenants/x', randomUUID()), undefined, 400, 'MissingSubscription'],
      ['GET', `${stack.customer.scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=${encodeURIComponent("roleName eq 'x'")}`, undefined, 400, 'UnsupportedQuery'],
      ['GET', `${stack.customer.scope}/providers/Microsoft.Authorization/roleAssignments`, undefined, 400, 'MissingApiVersionParameter'],
      ['GET', `${stack.customer.scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2015-07-01`, undefined, 400, 'InvalidApiVersionParameter'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await raw(method, path, body);
      expect({ path, status: res.status, code: res.body?.error?.code }).toEqual({ path, status, code });
      expect(typeof res.body.error.message).toBe('string');
    }
    // Nothing was created by the refused calls.
    expect(stack.authorization.list().filter((a) => a.scope === stack.customer.scope && a.principalId === APP)).toEqual([]);
  });

  it('401 without a token or with a malformed one; reading assignments needs a role', async () => {
    const list = `${stack.customer.scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01`;
    const none = await raw('GET', list, undefined, null);
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('AuthenticationFailed');
    const bad = await requestJson(`${stack.arm.url}${list}`, { ca: stack.ca, headers: { authorization: 'Bearer opaque' } });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('InvalidAuthenticationToken');
    const intruder = await raw('GET', list, undefined, 'intruder');
    expect(intruder.status).toBe(403);
    expect(intruder.body.error.code).toBe('AuthorizationFailed');
  });

  it('principalId eq filter at a vault; reading above the roles one holds is refused', async () => {
    const client = stack.armAs('operator');
    const op = resolveObjectId('operator')!;
    const seen: string[] = [];
    for await (const a of client.roleAssignments.listForScope(stack.keyturn.scope, { filter: `principalId eq '${op}'` })) seen.push(a.roleDefinitionId!.split('/').pop()!);
    expect(seen.sort()).toEqual([ROLES.keyVaultAdministrator.id, ROLES.owner.id].sort());
    // Operator is Owner on keyturn-local only, not on the subscription.
    const all = client.roleAssignments.listForSubscription({ filter: `principalId eq '${op}'` });
    await expect(all.next()).rejects.toMatchObject({ statusCode: 403, code: 'AuthorizationFailed' });
  });
});
