/**
 * Keyturn's RoleAssignments adapter (the real AuthorizationManagementClient with the
 * app's local credential) against the local ARM endpoint: on its own vault the app
 * removes a principal's direct assignment (its limited RBAC Administrator role), on
 * the customer's vault it cannot (403 → ACCESS_DENIED).
 */
import { randomUUID } from 'node:crypto';
import { roleDefinitionIdFor } from '../../../local/arm/client';
import { resolveObjectId } from '../../../local/keyvault/principals';
import { ROLES } from '../../../local/keyvault/rbac';
import { localCredential } from '../../../shared/adapters/keyVault/clients';
import { armRoleAssignments } from '../../../shared/adapters/roleAssignments';
import { KeyturnError } from '../../../shared/errors';
import type { RoleAssignments } from '../../../shared/ports';
import { startRbacStack, type RbacStack } from '../../helpers/rbac';

const INTRUDER = resolveObjectId('intruder')!;

describe("Keyturn's role assignments adapter on the local ARM endpoint", () => {
  let stack: RbacStack;
  let app: RoleAssignments;
  beforeAll(async () => {
    stack = await startRbacStack({ armPageSize: 2 });
    app = armRoleAssignments({ endpoint: stack.arm.url, credential: localCredential(), ca: stack.ca });
    await stack.as('operator', stack.keyturn).secrets.setSecret('app-secret', 'not-for-intruders');
  });
  afterAll(() => stack.close());

  const codeOf = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (e) {
      expect(e).toBeInstanceOf(KeyturnError);
      return (e as KeyturnError).code;
    }
    return 'resolved';
  };

  it("removes a principal's direct assignment on keyturn-local; the vault refuses the next request", async () => {
    // The operator (Owner) gives the intruder Secrets User on Keyturn's vault.
    const name = randomUUID();
    await stack.armAs('operator').roleAssignments.create(stack.keyturn.scope, name, {
      roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultSecretsUser.id),
      principalId: INTRUDER,
    });
    expect((await stack.raw('intruder', stack.keyturn, 'GET', '/secrets/app-secret?api-version=7.5')).status).toBe(200);

    // Keyturn finds it (paged: 2 per page) and removes it.
    const found = await app.listForScope(stack.keyturn.scope, { assignedTo: INTRUDER });
    expect(found).toEqual([
      expect.objectContaining({ name, scope: stack.keyturn.scope, principalId: INTRUDER, roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultSecretsUser.id) }),
    ]);
    expect((await app.listForScope(stack.keyturn.scope)).length).toBeGreaterThan(2);
    await app.delete(stack.keyturn.scope, name);
    await app.delete(stack.keyturn.scope, name); // already gone: still done

    expect(await app.listForScope(stack.keyturn.scope, { assignedTo: INTRUDER })).toEqual([]);
    const denied = await stack.raw('intruder', stack.keyturn, 'GET', '/secrets/app-secret?api-version=7.5');
    expect(denied.status).toBe(403);
    expect(denied.body.error.innererror.code).toBe('ForbiddenByRbac');
  });

  it('creates Key Vault data roles on its own vault (idempotent by name), but its condition refuses Owner', async () => {
    const name = randomUUID();
    const role = { roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultReader.id), principalId: INTRUDER, name };
    const created = await app.create(stack.keyturn.scope, role);
    expect(created).toMatchObject({ name, scope: stack.keyturn.scope, principalId: INTRUDER });
    expect((await app.create(stack.keyturn.scope, role)).name).toBe(name);
    expect(await codeOf(app.create(stack.keyturn.scope, { ...role, name: randomUUID() }))).toBe('CONFLICT');
    expect(await codeOf(app.create(stack.keyturn.scope, { roleDefinitionId: roleDefinitionIdFor(ROLES.owner.id), principalId: INTRUDER }))).toBe('ACCESS_DENIED');
    await app.delete(stack.keyturn.scope, name);
    expect(stack.authorization.get(name)).toBeUndefined();
  });

  it('cannot remove or list assignments on contoso-byok: ACCESS_DENIED, and nothing changes', async () => {
    const name = randomUUID();
    await stack.armAs('contoso-admin').roleAssignments.create(stack.customer.scope, name, {
      roleDefinitionId: roleDefinitionIdFor(ROLES.keyVaultReader.id),
      principalId: INTRUDER,
    });
    expect(await codeOf(app.delete(stack.customer.scope, name))).toBe('ACCESS_DENIED');
    expect(await codeOf(app.listForScope(stack.customer.scope, { assignedTo: INTRUDER }))).toBe('ACCESS_DENIED');
    expect(stack.authorization.get(name)).toMatchObject({ principalId: INTRUDER, scope: stack.customer.scope });
  });

  it('refuses malformed scopes, ids and principals before calling ARM', async () => {
    expect(await codeOf(app.listForScope('/tenants/x'))).toBe('VALIDATION_FAILED');
    expect(await codeOf(app.delete(`${stack.keyturn.scope}/../..`, randomUUID()))).toBe('VALIDATION_FAILED');
    expect(await codeOf(app.delete(stack.keyturn.scope, 'not-a-guid'))).toBe('VALIDATION_FAILED');
    expect(await codeOf(app.listForScope(stack.keyturn.scope, { assignedTo: "x') or true" }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(app.create(stack.keyturn.scope, { roleDefinitionId: 'Owner', principalId: INTRUDER }))).toBe('VALIDATION_FAILED');
  });
});
