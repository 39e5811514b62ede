/**
 * `Microsoft.Authorization/roleAssignments` as `@azure/arm-authorization` 9.x calls it
 * (api-version 2022-04-01): PUT/GET/DELETE `/{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`
 * and the list for a scope with `$filter` and `nextLink` paging. Writes and deletes
 * need Owner, User Access Administrator or Role Based Access Control Administrator
 * (and whatever its condition allows) at or above the scope.
 */
import { isGuid } from '../keyvault/principals';
import { assignmentId, roleDefinition, roleDefinitionGuid, scopeCovers, type Authorization, type RoleAssignment } from '../keyvault/rbac';
import { ArmError, authorizationFailed, invalidRequest } from './errors';
import { parseScope, type ArmTopology } from './scopes';

export const API_VERSION = '2022-04-01';
const READ = 'Microsoft.Authorization/roleAssignments/read';
const WRITE = 'Microsoft.Authorization/roleAssignments/write';
const DELETE = 'Microsoft.Authorization/roleAssignments/delete';

export interface ArmRequest {
  method: string;
  /** `https://{Host}` for nextLink. */
  baseUrl: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  caller: string;
}

export interface ArmResponse {
  status: number;
  body?: unknown;
}

export interface RoleAssignmentDeps {
  authorization: Authorization;
  topology: ArmTopology;
  pageSize: number;
}

export function toWire(a: RoleAssignment): Record<string, unknown> {
  return {
    id: assignmentId(a),
    type: 'Microsoft.Authorization/roleAssignments',
    name: a.name,
    properties: {
      roleDefinitionId: a.roleDefinitionId,
      principalId: a.principalId,
      principalType: a.principalType,
      scope: a.scope,
      condition: a.condition ?? null,
      conditionVersion: a.conditionVersion ?? null,
      createdOn: a.createdOn,
      updatedOn: a.updatedOn,
      createdBy: a.createdBy ?? null,
      updatedBy: a.updatedBy ?? null,
      delegatedManagedIdentityResourceId: null,
      description: a.description ?? null,
    },
  };
}

const ROUTE = /^(.*)\/providers\/Microsoft\.Authorization\/roleAssignments(?:\/([^/]*))?\/?$/i;

export function handleRoleAssignments(deps: RoleAssignmentDeps, req: ArmRequest): ArmResponse {
  const m = ROUTE.exec(req.path);
  if (!m) throw new ArmError(404, 'InvalidResourceType', `The resource type could not be found in the namespace for path '${req.path}'; the local ARM endpoint serves Microsoft.Authorization/roleAssignments only.`);
  const apiVersion = req.query.get('api-version');
  if (!apiVersion) throw new ArmError(400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
  if (apiVersion !== API_VERSION) {
    throw new ArmError(400, 'InvalidApiVersionParameter', `The api-version '${apiVersion}' is invalid. The supported versions (locally) are '${API_VERSION}'.`);
  }
  const scope = parseScope(m[1] ?? '', deps.topology);
  const name = m[2];
  if (name === undefined) {
    if (req.method !== 'GET') throw methodNotAllowed(req.method);
    return list(deps, req, scope);
  }
  if (!isGuid(name)) throw new ArmError(400, 'InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
  if (req.method === 'GET') return get(deps, req, scope, name);
  if (req.method === 'PUT') return put(deps, req, scope, name);
  if (req.method === 'DELETE') return remove(deps, req, scope, name);
  throw methodNotAllowed(req.method);
}

function methodNotAllowed(method: string): ArmError {
  return new ArmError(405, 'MethodNotAllowed', `The HTTP method '${method}' is not supported for role assignments.`);
}

function requireAction(deps: RoleAssignmentDeps, caller: string, scope: string, action: string, targetRoleGuid?: string): void {
  if (!deps.authorization.permitsAction(caller, scope, action, targetRoleGuid).allowed) throw authorizationFailed(caller, action, scope);
}

function atScope(deps: RoleAssignmentDeps, scope: string, name: string): RoleAssignment | undefined {
  const a = deps.authorization.get(name);
  return a && a.scope.toLowerCase() === scope.toLowerCase() ? a : undefined;
}

function get(deps: RoleAssignmentDeps, req: ArmRequest, scope: string, name: string): ArmResponse {
  requireAction(deps, req.caller, scope, READ);
  const a = atScope(deps, scope, name);
  if (!a) throw new ArmError(404, 'RoleAssignmentNotFound', `The role assignment '${name}' is not found.`);
  return { status: 200, body: toWire(a) };
}

function str(props: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const v = props[field];
  if (v === undefined || v === null) {
    if (required) throw invalidRequest(`The request content is invalid: 'properties.${field}' is required.`);
    return undefined;
  }
  if (typeof v !== 'string') throw invalidRequest(`The request content is invalid: 'properties.${field}' must be a string.`);
  return v;
}

function put(deps: RoleAssignmentDeps, req: ArmRequest, scope: string, name: string): ArmResponse {
  const body = req.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw invalidRequest("The request content is invalid: a JSON object with 'properties' is required.");
  const rawProps = Object.prototype.hasOwnProperty.call(body, 'properties') ? (body as { properties?: unknown }).properties : undefined;
  if (!rawProps || typeof rawProps !== 'object' || Array.isArray(rawProps)) throw invalidRequest("The request content is invalid: 'properties' is required.");
  const props = rawProps as Record<string, unknown>;
  const roleDefinitionId = str(props, 'roleDefinitionId', true) as string;
  const principalId = str(props, 'principalId', true) as string;
  const principalType = str(props, 'principalType', false) ?? 'ServicePrincipal';
  const condition = str(props, 'condition', false);
  const conditionVersion = str(props, 'conditionVersion', false);
  const description = str(props, 'description', false);
  if (!isGuid(principalId)) throw new ArmError(400, 'InvalidPrincipalId', `A valid principal ID must be provided for role assignment: '${principalId}' is not a GUID.`);
  const roleGuid = roleDefinitionGuid(roleDefinitionId);
  const subscriptionPrefix = `/subscriptions/${deps.topology.subscriptionId}/`;
  if (!roleGuid || (roleDefinitionId.toLowerCase().startsWith('/subscriptions/') && !roleDefinitionId.toLowerCase().startsWith(subscriptionPrefix))) {
    throw new ArmError(400, 'InvalidRoleDefinitionId', `The role definition ID '${roleDefinitionId}' is not valid.`);
  }
  const role = roleDefinition(roleGuid);
  if (!role) throw new ArmError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${roleGuid}' does not exist.`);
  if (condition && !conditionVersion) throw invalidRequest("The request content is invalid: 'properties.conditionVersion' is required with a condition ('2.0').");
  requireAction(deps, req.caller, scope, WRITE, roleGuid);

  const existing = deps.authorization.get(name);
  const canonicalRoleId = `/subscriptions/${deps.topology.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${roleGuid}`;
  const pid = principalId.toLowerCase();
  if (existing) {
    const same = existing.scope.toLowerCase() === scope.toLowerCase() && existing.principalId === pid && roleDefinitionGuid(existing.roleDefinitionId) === roleGuid;
    if (!same) throw new ArmError(409, 'RoleAssignmentUpdateNotPermitted', 'Tenant ID, application ID, principal ID, and scope are not allowed to be updated.');
    return { status: 201, body: toWire(existing) };
  }
  const duplicate = deps.authorization
    .list()
    .find((a) => a.scope.toLowerCase() === scope.toLowerCase() && a.principalId === pid && roleDefinitionGuid(a.roleDefinitionId) === roleGuid && (a.condition ?? '') === (condition ?? ''));
  if (duplicate) throw new ArmError(409, 'RoleAssignmentExists', `The role assignment already exists. The ID of the existing role assignment is ${duplicate.name}.`);
  const now = new Date().toISOString();
  const a: RoleAssignment = {
    name: name.toLowerCase(),
    scope,
    roleDefinitionId: canonicalRoleId,
    principalId: pid,
    principalType,
    ...(condition ? { condition, conditionVersion: conditionVersion as string } : {}),
    ...(description ? { description } : {}),
    createdOn: now,
    updatedOn: now,
    createdBy: req.caller,
    updatedBy: req.caller,
  };
  deps.authorization.put(a);
  return { status: 201, body: toWire(a) };
}

function remove(deps: RoleAssignmentDeps, req: ArmRequest, scope: string, name: string): ArmResponse {
  const a = atScope(deps, scope, name);
  requireAction(deps, req.caller, scope, DELETE, a ? roleDefinitionGuid(a.roleDefinitionId) : undefined);
  if (!a) return { status: 204 };
  deps.authorization.remove(name);
  return { status: 200, body: toWire(a) };
}

interface Filter {
  atScope: boolean;
  principalId?: string;
}

/** The `$filter`s ARM supports for role assignments: `atScope()`, `assignedTo('{id}')`, `principalId eq '{id}'`, joined by `and`. */
export function parseFilter(raw: string | null): Filter {
  const filter: Filter = { atScope: false };
  if (raw === null || raw.trim() === '') return filter;
  for (const term of raw.trim().split(/\s+and\s+/i)) {
    const t = term.trim();
    let m: RegExpExecArray | null;
    if (/^atScope\(\)$/i.test(t)) filter.atScope = true;
    else if ((m = /^assignedTo\('([^']*)'\)$/i.exec(t)) || (m = /^principalId\s+eq\s+'([^']*)'$/i.exec(t))) {
      const id = m[1] as string;
      if (!isGuid(id)) throw new ArmError(400, 'InvalidPrincipalId', `The principal ID '${id}' in the filter is not a GUID.`);
      filter.principalId = id.toLowerCase();
    } else {
      throw new ArmError(400, 'UnsupportedQuery', `The filter '${raw}' is not supported. Supported: atScope(), assignedTo('{objectId}'), principalId eq '{objectId}', joined by 'and'.`);
    }
  }
  return filter;
}

function list(deps: RoleAssignmentDeps, req: ArmRequest, scope: string): ArmResponse {
  requireAction(deps, req.caller, scope, READ);
  const filter = parseFilter(req.query.get('$filter'));
  const matching = deps.authorization
    .list()
    .filter((a) => scopeCovers(a.scope, scope) || (!filter.atScope && scopeCovers(scope, a.scope)))
    .filter((a) => filter.principalId === undefined || a.principalId === filter.principalId)
    .sort((x, y) => x.createdOn.localeCompare(y.createdOn) || x.name.localeCompare(y.name));
  const rawSkip = req.query.get('$skipToken') ?? req.query.get('$skiptoken');
  const start = rawSkip ? Number(Buffer.from(rawSkip, 'base64url').toString('utf8')) : 0;
  if (!Number.isInteger(start) || start < 0) throw new ArmError(400, 'InvalidSkipToken', 'The $skipToken is not valid.');
  const page = matching.slice(start, start + deps.pageSize);
  let nextLink: string | undefined;
  if (start + deps.pageSize < matching.length) {
    const q = new URLSearchParams();
    q.set('api-version', API_VERSION);
    const f = req.query.get('$filter');
    if (f) q.set('$filter', f);
    q.set('$skipToken', Buffer.from(String(start + deps.pageSize), 'utf8').toString('base64url'));
    nextLink = `${req.baseUrl}${scope}/providers/Microsoft.Authorization/roleAssignments?${q.toString()}`;
  }
  return { status: 200, body: { value: page.map(toWire), ...(nextLink ? { nextLink } : {}) } };
}
