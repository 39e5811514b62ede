/**
 * Azure RBAC as the local stack models it: built-in role definitions (real ids and
 * actions), role assignments at a scope, and the decision "may this principal do
 * this (data) action at this scope". One instance is shared by every emulated vault
 * (data plane) and the local ARM endpoint (role assignments), so a change made over
 * ARM takes effect on the vault's next request.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface RoleDefinition {
  id: string;
  roleName: string;
  description: string;
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}

/** Built-in roles by their real role-definition ids. */
const KV_READ_ACTIONS = [
  'Microsoft.Authorization/*/read',
  'Microsoft.Insights/alertRules/*',
  'Microsoft.Resources/deployments/*',
  'Microsoft.Resources/subscriptions/resourceGroups/read',
  'Microsoft.Support/*',
  'Microsoft.KeyVault/checkNameAvailability/read',
  'Microsoft.KeyVault/deletedVaults/read',
  'Microsoft.KeyVault/locations/*/read',
  'Microsoft.KeyVault/vaults/*/read',
  'Microsoft.KeyVault/operations/read',
];

function role(id: string, roleName: string, description: string, p: Partial<Omit<RoleDefinition, 'id' | 'roleName' | 'description'>>): RoleDefinition {
  return { id, roleName, description, actions: p.actions ?? [], notActions: p.notActions ?? [], dataActions: p.dataActions ?? [], notDataActions: p.notDataActions ?? [] };
}

export const ROLES = {
  keyVaultAdministrator: role('00482a5a-887f-4fb3-b363-3b7fe8e74483', 'Key Vault Administrator', 'Perform all data plane operations on a key vault and all objects in it.', {
    actions: KV_READ_ACTIONS,
    dataActions: ['Microsoft.KeyVault/vaults/*'],
  }),
  keyVaultCryptoOfficer: role('14b46e9e-c2b7-41b4-b07b-48a6ebf60603', 'Key Vault Crypto Officer', 'Perform any action on the keys of a key vault, except manage permissions.', {
    actions: KV_READ_ACTIONS,
    dataActions: ['Microsoft.KeyVault/vaults/keys/*', 'Microsoft.KeyVault/vaults/keyrotationpolicies/*'],
  }),
  keyVaultCryptoUser: role('12338af0-0e69-4776-bea7-57ae8d297424', 'Key Vault Crypto User', 'Perform cryptographic operations using keys.', {
    dataActions: [
      'Microsoft.KeyVault/vaults/keys/read',
      'Microsoft.KeyVault/vaults/keys/update/action',
      'Microsoft.KeyVault/vaults/keys/backup/action',
      'Microsoft.KeyVault/vaults/keys/encrypt/action',
      'Microsoft.KeyVault/vaults/keys/decrypt/action',
      'Microsoft.KeyVault/vaults/keys/wrap/action',
      'Microsoft.KeyVault/vaults/keys/unwrap/action',
      'Microsoft.KeyVault/vaults/keys/sign/action',
      'Microsoft.KeyVault/vaults/keys/verify/action',
    ],
  }),
  keyVaultCryptoServiceEncryptionUser: role('e147488a-f6f5-4113-8e2d-b22465e65bf6', 'Key Vault Crypto Service Encryption User', 'Read metadata of keys and perform wrap/unwrap operations.', {
    actions: ['Microsoft.EventGrid/eventSubscriptions/write', 'Microsoft.EventGrid/eventSubscriptions/read', 'Microsoft.EventGrid/eventSubscriptions/delete'],
    dataActions: ['Microsoft.KeyVault/vaults/keys/read', 'Microsoft.KeyVault/vaults/keys/wrap/action', 'Microsoft.KeyVault/vaults/keys/unwrap/action'],
  }),
  keyVaultSecretsOfficer: role('b86a8fe4-44ce-4948-aee5-eccb2c155cd7', 'Key Vault Secrets Officer', 'Perform any action on the secrets of a key vault, except manage permissions.', {
    actions: KV_READ_ACTIONS,
    dataActions: ['Microsoft.KeyVault/vaults/secrets/*'],
  }),
  keyVaultSecretsUser: role('4633458b-17de-408a-b874-0445c86b69e6', 'Key Vault Secrets User', 'Read secret contents.', {
    dataActions: ['Microsoft.KeyVault/vaults/secrets/getSecret/action', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'],
  }),
  keyVaultReader: role('21090545-7ca7-4776-b22c-e363652d74d2', 'Key Vault Reader', 'Read metadata of key vaults and its certificates, keys, and secrets.', {
    actions: KV_READ_ACTIONS,
    dataActions: ['Microsoft.KeyVault/vaults/*/read', 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'],
  }),
  owner: role('8e3af657-a8ff-443c-a75c-2fe8c4bcb635', 'Owner', 'Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.', {
    actions: ['*'],
  }),
  userAccessAdministrator: role('18d7d88d-d35e-4fb5-a5c3-7773c20a72d9', 'User Access Administrator', 'Lets you manage user access to Azure resources.', {
    actions: ['*/read', 'Microsoft.Authorization/*', 'Microsoft.Support/*'],
  }),
  roleBasedAccessControlAdministrator: role('f58310d9-a9f6-439a-9e8d-f62e7b41a168', 'Role Based Access Control Administrator', 'Manage access to Azure resources by assigning roles using Azure RBAC.', {
    actions: ['Microsoft.Authorization/roleAssignments/write', 'Microsoft.Authorization/roleAssignments/delete', '*/read', 'Microsoft.Support/*'],
  }),
} as const;

export type RoleKey = keyof typeof ROLES;

const BY_ID = new Map<string, RoleDefinition>(Object.values(ROLES).map((r) => [r.id, r]));

/** The Key Vault data roles (what Keyturn may grant and remove on its own vaults). */
export const KEY_VAULT_DATA_ROLE_IDS: readonly string[] = [
  ROLES.keyVaultAdministrator.id,
  ROLES.keyVaultCryptoOfficer.id,
  ROLES.keyVaultCryptoUser.id,
  ROLES.keyVaultCryptoServiceEncryptionUser.id,
  ROLES.keyVaultSecretsOfficer.id,
  ROLES.keyVaultSecretsUser.id,
  ROLES.keyVaultReader.id,
];

/**
 * The ABAC condition that limits Role Based Access Control Administrator to the
 * Key Vault data roles (ARM's condition language, version 2.0).
 */
export function onlyRolesCondition(roleIds: readonly string[]): string {
  const set = roleIds.join(', ');
  return (
    `((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${set}}))` +
    ` AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${set}}))`
  );
}

/** The role GUIDs a condition of the shape above allows; undefined = not that shape (unsupported). */
function conditionRoleIds(condition: string): Set<string> | undefined {
  if (!/RoleDefinitionId\]\s*ForAnyOfAnyValues:GuidEquals/i.test(condition)) return undefined;
  return new Set((condition.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi) ?? []).map((g) => g.toLowerCase()));
}

export function roleDefinitionGuid(roleDefinitionId: string): string | undefined {
  const m = /^(?:\/subscriptions\/[^/]+)?\/providers\/Microsoft\.Authorization\/roleDefinitions\/([0-9a-f-]{36})$/i.exec(roleDefinitionId);
  return m ? (m[1] as string).toLowerCase() : undefined;
}

export function roleDefinition(guid: string): RoleDefinition | undefined {
  return BY_ID.get(guid.toLowerCase());
}

export function roleDefinitionId(subscriptionId: string, guid: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
}

export interface RoleAssignment {
  /** The assignment's GUID (its name). */
  name: string;
  scope: string;
  roleDefinitionId: string;
  principalId: string;
  principalType: string;
  condition?: string;
  conditionVersion?: string;
  description?: string;
  createdOn: string;
  updatedOn: string;
  createdBy?: string;
  updatedBy?: string;
}

export function assignmentId(a: Pick<RoleAssignment, 'scope' | 'name'>): string {
  return `${a.scope}/providers/Microsoft.Authorization/roleAssignments/${a.name}`;
}

/** `/subscriptions/s/resourceGroups/g` covers `/subscriptions/s/resourceGroups/g/providers/…` (segment-wise, case-insensitive). */
export function scopeCovers(outer: string, inner: string): boolean {
  const o = outer.toLowerCase().replace(/\/+$/, '');
  const i = inner.toLowerCase().replace(/\/+$/, '');
  return o === '' || i === o || i.startsWith(`${o}/`);
}

/** `Microsoft.KeyVault/vaults/*` matches `Microsoft.KeyVault/vaults/keys/read`; `*` anywhere matches any characters. */
export function actionMatches(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`, 'i');
  return re.test(action);
}

function grants(def: RoleDefinition, kind: 'action' | 'dataAction', action: string): boolean {
  const [allow, deny] = kind === 'action' ? [def.actions, def.notActions] : [def.dataActions, def.notDataActions];
  return allow.some((p) => actionMatches(p, action)) && !deny.some((p) => actionMatches(p, action));
}

export interface Decision {
  allowed: boolean;
  /** The assignment that allowed it. */
  assignment?: RoleAssignment;
}

/** Role assignments, in memory, optionally persisted as one JSON file (atomic rename). */
export class Authorization {
  private readonly assignments = new Map<string, RoleAssignment>();
  /** True when nothing was persisted before: the caller seeds the defaults. */
  readonly loadedFresh: boolean;

  constructor(
    readonly subscriptionId: string,
    private readonly file?: string,
  ) {
    let fresh = false;
    if (file) {
      try {
        const list = JSON.parse(readFileSync(file, 'utf8')) as RoleAssignment[];
        for (const a of list) this.assignments.set(a.name.toLowerCase(), a);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        fresh = true;
      }
    } else {
      fresh = true;
    }
    this.loadedFresh = fresh;
  }

  list(): RoleAssignment[] {
    return [...this.assignments.values()];
  }

  get(name: string): RoleAssignment | undefined {
    return this.assignments.get(name.toLowerCase());
  }

  put(a: RoleAssignment): void {
    this.assignments.set(a.name.toLowerCase(), a);
    this.save();
  }

  remove(name: string): RoleAssignment | undefined {
    const a = this.assignments.get(name.toLowerCase());
    if (a) {
      this.assignments.delete(name.toLowerCase());
      this.save();
    }
    return a;
  }

  /** Adds a built-in role for a principal at a scope (seeding); a deterministic name, so it is idempotent. */
  grant(principalId: string, role: RoleDefinition, scope: string, extra: Partial<Pick<RoleAssignment, 'condition' | 'conditionVersion' | 'description'>> = {}): RoleAssignment {
    const name = deterministicGuid(`${scope.toLowerCase()}|${principalId}|${role.id}`);
    const now = new Date().toISOString();
    const a: RoleAssignment = {
      name,
      scope,
      roleDefinitionId: roleDefinitionId(this.subscriptionId, role.id),
      principalId,
      principalType: 'ServicePrincipal',
      ...extra,
      createdOn: now,
      updatedOn: now,
    };
    this.put(a);
    return a;
  }

  /** Data plane: may `principalId` perform `dataAction` on `scope` (a vault, key or secret)? */
  permitsData(principalId: string, scope: string, dataAction: string): Decision {
    return this.decide(principalId, scope, 'dataAction', dataAction);
  }

  /**
   * Control plane: may `principalId` perform `action` at `scope`? For role-assignment
   * writes and deletes, `targetRoleId` is the role being assigned or removed, which
   * an assignment's condition may restrict.
   */
  permitsAction(principalId: string, scope: string, action: string, targetRoleId?: string): Decision {
    return this.decide(principalId, scope, 'action', action, targetRoleId);
  }

  private decide(principalId: string, scope: string, kind: 'action' | 'dataAction', action: string, targetRoleId?: string): Decision {
    for (const a of this.assignments.values()) {
      if (a.principalId !== principalId || !scopeCovers(a.scope, scope)) continue;
      const guid = roleDefinitionGuid(a.roleDefinitionId);
      const def = guid ? roleDefinition(guid) : undefined;
      if (!def || !grants(def, kind, action)) continue;
      if (a.condition && !conditionAllows(a.condition, action, targetRoleId)) continue;
      return { allowed: true, assignment: a };
    }
    return { allowed: false };
  }

  private save(): void {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.list(), null, 1), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

/** Conditions restrict role-assignment writes/deletes to listed roles; any other condition shape denies (fail closed). */
function conditionAllows(condition: string, action: string, targetRoleId: string | undefined): boolean {
  const allowed = conditionRoleIds(condition);
  if (!allowed) return false;
  if (!/^Microsoft\.Authorization\/roleAssignments\/(write|delete)$/i.test(action)) return true;
  return targetRoleId !== undefined && allowed.has(targetRoleId.toLowerCase());
}

/** A GUID derived from text (as Bicep's guid() does), for idempotent seeding. */
export function deterministicGuid(text: string): string {
  const hex = createHash('sha256').update(text).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
