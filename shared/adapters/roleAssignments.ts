/**
 * Role assignments through Azure Resource Manager with the real
 * `AuthorizationManagementClient` (@azure/arm-authorization) and the app's credential:
 * the managed identity in Azure, the local credential (unsigned JWT naming
 * keyturn-app) against the local stack's ARM endpoint, whose CA this client alone
 * trusts. Tokens are asked for `{endpoint}/.default`, as the client does by default.
 */
import { randomUUID } from 'node:crypto';
import type { AuthorizationManagementClient, RoleAssignment as ArmRoleAssignment } from '@azure/arm-authorization';
import type { TokenCredential } from '@azure/identity';
import { KeyturnError, ValidationError, dependencyError, errorFacts } from '../errors';
import type { RoleAssignment, RoleAssignments } from '../ports';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An ARM scope: a subscription, optionally followed by resource-id segments (no query, no `..`). */
const SCOPE = /^\/subscriptions\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\/[0-9A-Za-z._()-]+)*$/i;
const ROLE_DEFINITION = /^\/subscriptions\/[0-9a-f-]{36}\/providers\/Microsoft\.Authorization\/roleDefinitions\/[0-9a-f-]{36}$/i;

export interface RoleAssignmentsOptions {
  /** ARM's origin: https://management.azure.com, or the local stack's endpoint. */
  endpoint: string;
  credential: TokenCredential;
  /** The local ARM endpoint's CA, trusted by this client only. */
  ca?: string;
}

function subscriptionOf(scope: string): string {
  const m = SCOPE.exec(scope);
  if (!m || scope.split('/').some((s) => s === '.' || s === '..')) {
    throw new ValidationError('scope', 'scope: expected an ARM scope /subscriptions/{id}[/resourceGroups/{name}[/providers/…]]');
  }
  return m[1]!.toLowerCase();
}

function toAssignment(a: ArmRoleAssignment): RoleAssignment {
  return { id: a.id ?? '', name: a.name ?? '', scope: a.scope ?? '', roleDefinitionId: a.roleDefinitionId ?? '', principalId: a.principalId ?? '' };
}

/** True only when ARM says the assignment does not exist (any other answer: not known to be absent). */
async function absent(arm: AuthorizationManagementClient, scope: string, name: string): Promise<boolean> {
  try {
    await arm.roleAssignments.get(scope, name);
    return false;
  } catch (e) {
    return errorFacts(e).kind === 'not-found';
  }
}

export function armRoleAssignments(options: RoleAssignmentsOptions): RoleAssignments {
  // The operations used here address scopes; the client still wants a subscription: one client per subscription.
  const clients = new Map<string, AuthorizationManagementClient>();
  const client = (scope: string): AuthorizationManagementClient => {
    const subscription = subscriptionOf(scope);
    let c = clients.get(subscription);
    if (!c) {
      // Required on first use, not imported: module load pulls no SDK (cold start).
      const { AuthorizationManagementClient: Client } = require('@azure/arm-authorization') as typeof import('@azure/arm-authorization');
      c = new Client(options.credential, subscription, {
        endpoint: options.endpoint,
        ...(options.ca ? { tlsOptions: { ca: options.ca } } : {}),
        retryOptions: { maxRetries: 3, maxRetryDelayInMs: 8000 },
      });
      clients.set(subscription, c);
    }
    return c;
  };

  return {
    async listForScope(scope, filter = {}) {
      const arm = client(scope);
      if (filter.assignedTo !== undefined && !GUID.test(filter.assignedTo)) throw new ValidationError('assignedTo', 'assignedTo: expected a principal object id (GUID)');
      try {
        const out: RoleAssignment[] = [];
        const pages = arm.roleAssignments.listForScope(scope, filter.assignedTo ? { filter: `assignedTo('${filter.assignedTo}')` } : {});
        for await (const a of pages) out.push(toAssignment(a));
        return out;
      } catch (e) {
        throw dependencyError(`Could not list the role assignments at '${scope}'`, e, { scope });
      }
    },

    async create(scope, { roleDefinitionId, principalId, name = randomUUID() }) {
      const arm = client(scope);
      if (!ROLE_DEFINITION.test(roleDefinitionId)) throw new ValidationError('roleDefinitionId', 'roleDefinitionId: expected /subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions/{guid}');
      if (!GUID.test(principalId)) throw new ValidationError('principalId', 'principalId: expected a principal object id (GUID)');
      if (!GUID.test(name)) throw new ValidationError('name', 'name: a role assignment name is a GUID');
      try {
        return toAssignment(await arm.roleAssignments.create(scope, name, { roleDefinitionId, principalId, principalType: 'ServicePrincipal' }));
      } catch (e) {
        if (errorFacts(e).code === 'RoleAssignmentExists') {
          throw Object.assign(new KeyturnError('CONFLICT', 'The principal already holds that role at that scope (under another assignment)', { scope, principalId }), { cause: e });
        }
        throw dependencyError(`Could not create a role assignment at '${scope}'`, e, { scope });
      }
    },

    async delete(scope, name) {
      const arm = client(scope);
      if (!GUID.test(name)) throw new ValidationError('name', 'name: a role assignment name is a GUID');
      try {
        await arm.roleAssignments.delete(scope, name); // 204 when there was none: already done
      } catch (e) {
        // A conditional role (RBAC Administrator limited to some roles) cannot match an absent
        // assignment, so ARM refuses its delete: a retry after a delete that went through must still succeed.
        if (errorFacts(e).kind === 'access-denied' && (await absent(arm, scope, name))) return;
        throw dependencyError(`Could not delete the role assignment '${name}' at '${scope}'`, e, { scope, name });
      }
    },
  };
}
