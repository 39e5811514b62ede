/**
 * Static checks of infra/*.bicep. Bicep cannot be compiled offline, so these read the text and fail
 * when the infrastructure drifts from what the app needs or from least privilege. Real compilation
 * and validation happen online only: `az bicep build -f infra/main.bicep` (see infra/README.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { settingsSchema } from '../../../shared/config';
import { CONTAINERS, CONTAINER_DEFAULT_TTL } from '../../../shared/adapters/cosmos';
import { KEY_VAULT_DATA_ROLE_IDS, onlyRolesCondition } from '../../../local/keyvault/rbac';
import {
  type BicepFile,
  type BicepResource,
  listFiles,
  moduleCalls,
  params,
  pathValue,
  readBicep,
  resources,
  stringLiterals,
  topLevelKeys,
  valueOf,
  variable,
} from './bicepText';

const repoRoot = resolve(__dirname, '..', '..', '..');
const infraDir = join(repoRoot, 'infra');

/** Built-in role ids (style-anchors §4, AVM builtInRoleNames; EventGrid Data Sender from the Azure built-in roles page). */
const ROLES: Record<string, string> = {
  '00482a5a-887f-4fb3-b363-3b7fe8e74483': 'Key Vault Administrator',
  '14b46e9e-c2b7-41b4-b07b-48a6ebf60603': 'Key Vault Crypto Officer',
  'b86a8fe4-44ce-4948-aee5-eccb2c155cd7': 'Key Vault Secrets Officer',
  '4633458b-17de-408a-b874-0445c86b69e6': 'Key Vault Secrets User',
  '12338af0-0e69-4776-bea7-57ae8d297424': 'Key Vault Crypto User',
  'e147488a-f6f5-4113-8e2d-b22465e65bf6': 'Key Vault Crypto Service Encryption User',
  'f58310d9-a9f6-439a-9e8d-f62e7b41a168': 'Role Based Access Control Administrator',
  'a4417e6f-fecd-4de8-b567-7b0420556985': 'Key Vault Certificates Officer',
  '21090545-7ca7-4776-b22c-e363652d74d2': 'Key Vault Reader',
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b': 'Storage Blob Data Owner',
  'ba92f5b4-2d11-453d-a403-e96b0029c9fe': 'Storage Blob Data Contributor',
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88': 'Storage Queue Data Contributor',
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3': 'Storage Table Data Contributor',
  '3913510d-42f4-4e42-8a64-420c390055eb': 'Monitoring Metrics Publisher',
  'd5a91429-5739-47e2-a06b-3470a27159e7': 'EventGrid Data Sender',
  // Cosmos DB data plane (sqlRoleDefinitions under the account, not ARM roles).
  '00000000-0000-0000-0000-000000000001': 'Cosmos DB Built-in Data Reader',
  '00000000-0000-0000-0000-000000000002': 'Cosmos DB Built-in Data Contributor',
};

/**
 * Least privilege: the only ARM roles Keyturn may hold, and the type of the one resource each is scoped
 * to. A new grant means a new row here, which a reviewer sees.
 */
const ROLE_SCOPES: Record<string, string> = {
  'Key Vault Secrets Officer': 'Microsoft.KeyVault/vaults',
  'Key Vault Crypto Officer': 'Microsoft.KeyVault/vaults',
  // Deleted secrets' metadata (incident verify): deletedSecrets/read is outside Secrets Officer's secrets/*.
  'Key Vault Reader': 'Microsoft.KeyVault/vaults',
  // Limited by an ABAC condition to the Key Vault data roles (checked below).
  'Role Based Access Control Administrator': 'Microsoft.KeyVault/vaults',
  'Storage Blob Data Owner': 'Microsoft.Storage/storageAccounts',
  'Storage Queue Data Contributor': 'Microsoft.Storage/storageAccounts',
  'Storage Blob Data Contributor': 'Microsoft.Storage/storageAccounts/blobServices/containers',
  'EventGrid Data Sender': 'Microsoft.EventGrid/topics',
  'Monitoring Metrics Publisher': 'Microsoft.Insights/components',
};

/** Every Key Vault event type (Azure docs: event-schema-key-vault). */
const KEY_VAULT_EVENT_TYPES = new Set(
  ['Secret', 'Key', 'Certificate']
    .flatMap((o) => ['NewVersionCreated', 'NearExpiry', 'Expired'].map((e) => `Microsoft.KeyVault.${o}${e}`))
    .concat('Microsoft.KeyVault.VaultAccessPolicyChanged'),
);
/** What Keyturn acts on (DESIGN §1: renewal on NearExpiry / Expired of secrets and keys). */
const HANDLED_EVENT_TYPES = [
  'Microsoft.KeyVault.SecretNearExpiry',
  'Microsoft.KeyVault.SecretExpired',
  'Microsoft.KeyVault.KeyNearExpiry',
  'Microsoft.KeyVault.KeyExpired',
];

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

const files: BicepFile[] = listFiles(infraDir, '.bicep').map((f) => readBicep(f, repoRoot));
const byPath = (p: string): BicepFile => {
  const f = files.find((x) => x.path === p);
  if (!f) throw new Error(`${p} is missing`);
  return f;
};
const allResources: BicepResource[] = files.flatMap(resources);
const declared = (type: string) => allResources.filter((r) => r.type === type && !r.existing);

/** `var x = '<guid>' // Role Name` across infra: variable name → guid. */
const roleVars = new Map<string, string>();
for (const f of files) {
  for (const m of f.code.matchAll(/^var\s+(\w+)\s*=\s*'([0-9a-fA-F-]{36})'/gm)) roleVars.set(m[1]!, m[2]!.toLowerCase());
}

describe('infra: layout', () => {
  test('the expected files exist', () => {
    for (const p of ['infra/main.bicep', 'infra/eventSubscriptions.bicep', 'infra/main.parameters.json', 'infra/README.md']) {
      expect(existsSync(join(repoRoot, p))).toBe(true);
    }
  });

  test('every module path resolves to a file, and the module call passes exactly the params the file declares', () => {
    const problems: string[] = [];
    // Guard the guard: main.bicep's module calls are found (an empty scan would pass anything).
    expect(moduleCalls(byPath('infra/main.bicep')).length).toBeGreaterThanOrEqual(7);
    for (const f of files) {
      for (const call of moduleCalls(f)) {
        if (call.path.startsWith('br/') || call.path.startsWith('ts/')) continue; // registry modules: online only
        const target = resolve(join(repoRoot, dirname(f.path)), call.path);
        if (!existsSync(target)) {
          problems.push(`${f.path}: module ${call.symbol} → ${call.path} does not exist`);
          continue;
        }
        const declaredParams = params(readBicep(target, repoRoot));
        const paramsBlock = valueOf(call.body, 'params');
        const passed = paramsBlock ? topLevelKeys(paramsBlock) : [];
        for (const p of declaredParams) {
          if (!p.hasDefault && !passed.includes(p.name)) problems.push(`${f.path}: module ${call.symbol} does not pass required param '${p.name}'`);
        }
        for (const name of passed) {
          if (!declaredParams.some((p) => p.name === name)) problems.push(`${f.path}: module ${call.symbol} passes unknown param '${name}'`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  test('resource types carry a well-formed API version', () => {
    for (const r of allResources.filter((x) => x.type.split('/').length >= 2 && x.type.includes('.'))) {
      if (r.apiVersion === undefined) {
        // Nested declarations inherit the parent's version.
        expect(allResources.some((p) => p.start < r.start && r.end <= p.end)).toBe(true);
        continue;
      }
      expect(`${r.file} ${r.symbol}@${r.apiVersion}`).toMatch(/@\d{4}-\d{2}-\d{2}(-preview)?$/);
    }
  });
});

describe('infra: parameters', () => {
  const main = byPath('infra/main.bicep');
  const parameterFile = JSON.parse(readFileSync(join(infraDir, 'main.parameters.json'), 'utf8')) as {
    parameters: Record<string, { value?: unknown; reference?: unknown }>;
  };
  const mainParams = params(main);

  test('every main.bicep param without a default is set in main.parameters.json', () => {
    const missing = mainParams.filter((p) => !p.hasDefault && !(p.name in parameterFile.parameters)).map((p) => p.name);
    expect(missing).toEqual([]);
  });

  test('main.parameters.json sets only params main.bicep declares (az deployment rejects unknown ones)', () => {
    const unknown = Object.keys(parameterFile.parameters).filter((n) => !mainParams.some((p) => p.name === n));
    expect(unknown).toEqual([]);
  });

  test('the event subscription is opt-in: deployEventSubscriptions defaults to false and gates the module', () => {
    expect(main.code).toMatch(/^param\s+deployEventSubscriptions\s+bool\s*=\s*false\s*$/m);
    const call = moduleCalls(main).find((c) => c.path === 'eventSubscriptions.bicep');
    expect(call?.condition).toBe('(deployEventSubscriptions)');
    if (parameterFile.parameters.deployEventSubscriptions) expect(parameterFile.parameters.deployEventSubscriptions.value).toBe(false);
  });
});

describe('infra: identity and least privilege', () => {
  test('every GUID in infra is a known role id, written next to a comment with its exact name', () => {
    const problems: string[] = [];
    for (const f of files) {
      f.raw.split('\n').forEach((line, i) => {
        for (const m of line.matchAll(GUID)) {
          const name = ROLES[m[0].toLowerCase()];
          const comment = /\/\/\s*(.+?)\s*$/.exec(line)?.[1];
          if (!name) problems.push(`${f.path}:${i + 1}: ${m[0]} is not in the role table`);
          else if (comment !== name) problems.push(`${f.path}:${i + 1}: ${m[0]} is '${name}', comment says '${comment ?? '(none)'}'`);
        }
      });
    }
    expect(problems).toEqual([]);
    expect(roleVars.size).toBeGreaterThan(0);
  });

  test('the README role table names each role id correctly', () => {
    const readme = readFileSync(join(infraDir, 'README.md'), 'utf8');
    const rows = readme.split('\n').filter((l) => l.startsWith('|') && l.match(GUID) !== null);
    // Guard the guard: the table is there (one row per role the template grants).
    expect(rows.length).toBeGreaterThanOrEqual(Object.keys(ROLE_SCOPES).length);
    for (const line of readme.split('\n').filter((l) => l.startsWith('|'))) {
      for (const m of line.matchAll(GUID)) expect(`${line}`).toContain(ROLES[m[0].toLowerCase()] ?? `unknown role ${m[0]}`);
    }
  });

  const assignments = allResources.filter((r) => r.type === 'Microsoft.Authorization/roleAssignments');

  test('there are role assignments to check', () => {
    expect(assignments.length).toBeGreaterThanOrEqual(Object.keys(ROLE_SCOPES).length);
  });

  test('every role assignment has a deterministic guid() name and principalType ServicePrincipal', () => {
    for (const r of assignments) {
      expect(`${r.file} ${r.symbol}: ${valueOf(r.body, 'name')}`).toMatch(/: guid\(/);
      expect(`${r.file} ${r.symbol}: ${pathValue(r.body, 'properties.principalType')}`).toMatch(/: 'ServicePrincipal'$/);
    }
  });

  test('every role assignment grants an allowed role, scoped to the one resource of the expected type', () => {
    const problems: string[] = [];
    for (const r of assignments) {
      const roleDef = pathValue(r.body, 'properties.roleDefinitionId') ?? '';
      const roleVar = [...roleVars.keys()].find((v) => new RegExp(`\\b${v}\\b`).test(roleDef));
      const role = roleVar ? ROLES[roleVars.get(roleVar)!] : undefined;
      const scope = valueOf(r.body, 'scope');
      if (!role) {
        problems.push(`${r.file} ${r.symbol}: roleDefinitionId must use a role-id var (${roleDef})`);
        continue;
      }
      const expectedType = ROLE_SCOPES[role];
      if (!expectedType) {
        problems.push(`${r.file} ${r.symbol}: '${role}' is not a role Keyturn needs`);
        continue;
      }
      if (!scope || /resourceGroup\(|subscription\(/.test(scope)) {
        problems.push(`${r.file} ${r.symbol}: '${role}' must be scoped to a resource, not ${scope ?? 'the resource group'}`);
        continue;
      }
      const symbol = scope.split('::').pop()!;
      const target = allResources.find((x) => x.file === r.file && x.symbol === symbol);
      if (target?.type !== expectedType) problems.push(`${r.file} ${r.symbol}: '${role}' scoped to ${scope} (${target?.type}), expected a ${expectedType}`);
      // guid(scope.id, principal, role): the name follows the scope, so a re-scoped grant gets a new name.
      const name = valueOf(r.body, 'name') ?? '';
      if (!name.startsWith(`guid(${scope}.id,`) || !name.includes(roleVar!)) problems.push(`${r.file} ${r.symbol}: name should be guid(${scope}.id, principalId, ${roleVar})`);
    }
    expect(problems).toEqual([]);
  });

  test('the app identity gets Key Vault Secrets Officer and Crypto Officer on the vault, EventGrid Data Sender on the topic', () => {
    const granted = assignments.map((r) => {
      const roleDef = pathValue(r.body, 'properties.roleDefinitionId') ?? '';
      const v = [...roleVars.keys()].find((x) => new RegExp(`\\b${x}\\b`).test(roleDef));
      return v ? ROLES[roleVars.get(v)!] : undefined;
    });
    for (const role of Object.keys(ROLE_SCOPES)) expect(granted).toContain(role);
  });

  test('Role Based Access Control Administrator carries the ABAC condition: only the Key Vault data roles, as the emulator enforces', () => {
    const rbacAdmins = assignments.filter((r) => /\brbacAdministratorRoleId\b/.test(pathValue(r.body, 'properties.roleDefinitionId') ?? ''));
    expect(rbacAdmins).toHaveLength(1);
    const admin = rbacAdmins[0]!;
    expect(roleVars.get('rbacAdministratorRoleId')).toBe('f58310d9-a9f6-439a-9e8d-f62e7b41a168');
    expect(pathValue(admin.body, 'properties.conditionVersion')).toBe("'2.0'");
    const file = byPath(admin.file);
    const conditionVar = pathValue(admin.body, 'properties.condition') ?? '';
    const condition = variable(file, conditionVar);
    expect(condition).toBeDefined();
    // The var list → GUIDs, then the Bicep string with its interpolation and escapes resolved.
    const listed = (variable(file, 'keyVaultDataRoleIds') ?? '').match(/\w+/g)?.map((v) => roleVars.get(v)) ?? [];
    expect([...listed].sort()).toEqual([...KEY_VAULT_DATA_ROLE_IDS].sort());
    expect(variable(file, 'keyVaultDataRoles')).toBe("join(keyVaultDataRoleIds, ', ')");
    const text = condition!.slice(1, -1).replace(/\\'/g, "'").replace(/\$\{keyVaultDataRoles\}/g, listed.join(', '));
    expect(text).toBe(onlyRolesCondition(listed as string[]));
    // Never the roles that would let Keyturn widen its own access.
    for (const forbidden of ['8e3af657-a8ff-443c-a75c-2fe8c4bcb635', '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9', 'f58310d9-a9f6-439a-9e8d-f62e7b41a168']) {
      expect(listed).not.toContain(forbidden);
    }
  });

  test('the queue role and the queue connection: Storage Queue Data Contributor on the account, KEYTURN_QUEUE as an identity connection', () => {
    const queue = assignments.filter((r) => /\bstorageQueueDataContributorRoleId\b/.test(pathValue(r.body, 'properties.roleDefinitionId') ?? ''));
    expect(queue.map((r) => valueOf(r.body, 'scope'))).toEqual(['storage']);
    const site = declared('Microsoft.Web/sites/config').find((r) => valueOf(r.body, 'name') === "'appsettings'")!;
    const props = valueOf(site.body, 'properties')!;
    expect(valueOf(props, 'KEYTURN_QUEUE__queueServiceUri')).toMatch(/^'https:\/\/\$\{storageAccountName\}\.queue\.\$\{environment\(\)\.suffixes\.storage\}'$/);
    expect(valueOf(props, 'KEYTURN_QUEUE__credential')).toBe("'managedidentity'");
    expect(valueOf(props, 'KEYTURN_QUEUE__clientId')).toBe('identityClientId');
    expect(valueOf(props, 'KEYTURN_QUEUE')).toBeUndefined(); // a connection string (key) only locally
    expect(valueOf(props, 'KEYTURN_ARM_ENDPOINT')).toBe('environment().resourceManager');
  });

  test('Cosmos data access is a data-plane sqlRoleAssignment (Built-in Data Contributor) on the account', () => {
    const sql = allResources.filter((r) => r.type === 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments');
    expect(sql).toHaveLength(1);
    for (const r of sql) {
      expect(valueOf(r.body, 'name')).toMatch(/^guid\(/);
      const roleDef = pathValue(r.body, 'properties.roleDefinitionId') ?? '';
      expect(roleDef).toContain('/sqlRoleDefinitions/');
      const roleVar = [...roleVars.keys()].find((v) => roleDef.includes(v));
      expect(roleVar && roleVars.get(roleVar)).toBe('00000000-0000-0000-0000-000000000002');
      expect(pathValue(r.body, 'properties.scope')).toMatch(/\.id$/);
      expect(pathValue(r.body, 'properties.principalId')).toBeDefined();
    }
  });

  test('no access policies, no keys or connection strings read at deploy time', () => {
    for (const f of files) {
      expect(`${f.path}: ${f.code.match(/accessPolicies/)?.[0] ?? ''}`).toBe(`${f.path}: `);
      expect(`${f.path}: ${f.code.match(/listKeys\(|listConnectionStrings\(|listKeyValue|AccountKey=|primaryMasterKey|\.listSecrets\(/)?.[0] ?? ''}`).toBe(`${f.path}: `);
    }
  });
});

describe('infra: resources are keyless and hardened', () => {
  test('Key Vault: RBAC authorization, soft delete, purge protection', () => {
    const vaults = declared('Microsoft.KeyVault/vaults');
    expect(vaults).toHaveLength(1);
    for (const v of vaults) {
      expect(pathValue(v.body, 'properties.enableRbacAuthorization')).toBe('true');
      expect(pathValue(v.body, 'properties.enablePurgeProtection')).toBe('true');
      expect(pathValue(v.body, 'properties.enableSoftDelete')).toBe('true');
    }
  });

  test('Cosmos DB: serverless, local (key) auth disabled', () => {
    const accounts = declared('Microsoft.DocumentDB/databaseAccounts');
    expect(accounts).toHaveLength(1);
    for (const a of accounts) {
      const props = valueOf(a.body, 'properties')!;
      expect(valueOf(props, 'disableLocalAuth') ?? valueOf(props, 'disableLocalAuthentication')).toBe('true');
      expect(stringLiterals(valueOf(props, 'capabilities') ?? '')).toContain('EnableServerless');
    }
  });

  test('Event Grid custom topic: local (SAS key) auth disabled, Event Grid schema', () => {
    const topics = declared('Microsoft.EventGrid/topics');
    expect(topics).toHaveLength(1);
    for (const t of topics) {
      expect(pathValue(t.body, 'properties.disableLocalAuth')).toBe('true');
      // shared/adapters/eventGridNotifier.ts publishes with the 'EventGrid' schema.
      expect(pathValue(t.body, 'properties.inputSchema')).toBe("'EventGridSchema'");
    }
  });

  test('Storage: shared keys and public blobs off; App Insights: local auth off', () => {
    expect(declared('Microsoft.Storage/storageAccounts')).toHaveLength(1);
    expect(declared('Microsoft.Insights/components')).toHaveLength(1);
    for (const s of declared('Microsoft.Storage/storageAccounts')) {
      expect(pathValue(s.body, 'properties.allowSharedKeyAccess')).toBe('false');
      expect(pathValue(s.body, 'properties.allowBlobPublicAccess')).toBe('false');
    }
    for (const c of declared('Microsoft.Insights/components')) expect(pathValue(c.body, 'properties.DisableLocalAuth')).toBe('true');
  });

  test('system topic on the vault is Microsoft.KeyVault.vaults', () => {
    const st = declared('Microsoft.EventGrid/systemTopics');
    expect(st).toHaveLength(1);
    expect(pathValue(st[0]!.body, 'properties.topicType')).toBe("'Microsoft.KeyVault.vaults'");
  });
});

describe('infra: Function App (Flex Consumption)', () => {
  const sites = declared('Microsoft.Web/sites');
  const plans = declared('Microsoft.Web/serverfarms');

  test('one Flex Consumption plan and one Linux function app on Node matching package.json engines', () => {
    expect(plans).toHaveLength(1);
    expect(pathValue(plans[0]!.body, 'sku.tier')).toBe("'FlexConsumption'");
    expect(pathValue(plans[0]!.body, 'sku.name')).toBe("'FC1'");
    expect(sites).toHaveLength(1);
    const site = sites[0]!;
    expect(valueOf(site.body, 'kind')).toBe("'functionapp,linux'");
    expect(pathValue(site.body, 'properties.httpsOnly')).toBe('true');
    expect(pathValue(site.body, 'properties.functionAppConfig.runtime.name')).toBe("'node'");
    const engines = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const major = /\d+/.exec(engines)![0];
    expect(pathValue(site.body, 'properties.functionAppConfig.runtime.version')).toBe(`'${major}'`);
    expect(pathValue(site.body, 'properties.functionAppConfig.deployment.storage.authentication.type')).toBe("'UserAssignedIdentity'");
    expect(pathValue(site.body, 'identity.type')).toBe("'UserAssigned'");
  });

  const appSettings = declared('Microsoft.Web/sites/config').find((r) => valueOf(r.body, 'name') === "'appsettings'");
  const settings = appSettings ? topLevelKeys(valueOf(appSettings.body, 'properties')!) : [];

  test('app settings are declared in one appsettings resource', () => {
    expect(appSettings).toBeDefined();
    expect(settings.length).toBeGreaterThan(0);
  });

  test("every setting the app requires (settingsSchema: not optional, no default) is set", () => {
    const shape = settingsSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
    const required = Object.keys(shape).filter((k) => !shape[k]!.safeParse(undefined).success);
    // Guard the guard: these are required today; if the schema changes, the list follows it.
    expect(required).toEqual(expect.arrayContaining(['KEYTURN_VAULTS', 'KEYTURN_COSMOS_ENDPOINT', 'KEYTURN_ISSUER']));
    expect(required.filter((k) => !settings.includes(k))).toEqual([]);
  });

  test('every KEYTURN_* setting set in Bicep is one the app reads (catches typos)', () => {
    const known = Object.keys(settingsSchema.shape);
    expect(settings.filter((s) => s.startsWith('KEYTURN_') && !known.includes(s))).toEqual([]);
  });

  test('identity everywhere: AZURE_CLIENT_ID and identity-based host storage; no keys, no local-only settings', () => {
    expect(settings).toEqual(
      expect.arrayContaining(['AZURE_CLIENT_ID', 'AzureWebJobsStorage__credential', 'AzureWebJobsStorage__clientId', 'AzureWebJobsStorage__blobServiceUri']),
    );
    const forbidden = [
      'AzureWebJobsStorage', // a connection string (key); identity settings replace it
      'KEYTURN_COSMOS_KEY',
      'KEYTURN_EVENTGRID_KEY',
      'KEYTURN_KEYVAULT_CA_FILE',
      'KEYTURN_COSMOS_CA_FILE',
      'KEYTURN_EVENTGRID_CA_FILE',
      'KEYTURN_GRAPH_CA_FILE',
      'KEYTURN_ARM_CA_FILE',
      'KEYTURN_CUSTOMER_VAULTS', // customers register their vaults; the template knows none
      'KEYTURN_CLOCK_URL',
      'KEYTURN_FAULTS',
      // Flex Consumption takes the runtime from functionAppConfig and rejects these.
      'FUNCTIONS_WORKER_RUNTIME',
      'FUNCTIONS_EXTENSION_VERSION',
      'WEBSITE_RUN_FROM_PACKAGE',
    ];
    expect(settings.filter((s) => forbidden.includes(s))).toEqual([]);
    const props = valueOf(appSettings!.body, 'properties')!;
    expect(valueOf(props, 'AzureWebJobsStorage__credential')).toBe("'managedidentity'");
  });

  test('every %SETTING% a function binding refers to (timer schedules) is set', () => {
    const referenced = new Set<string>();
    for (const f of listFiles(join(repoRoot, 'functions'), '.ts')) {
      for (const m of readFileSync(f, 'utf8').matchAll(/['"`]%([A-Za-z_][\w]*)%['"`]/g)) referenced.add(m[1]!);
    }
    // Guard the guard: today's timer schedules are found (an empty scan would pass anything).
    expect([...referenced]).toEqual(expect.arrayContaining(['KEYTURN_SWEEP_SCHEDULE', 'KEYTURN_RESUME_SCHEDULE', 'KEYTURN_SIGNING_ROLLOVER_SCHEDULE']));
    expect([...referenced].filter((s) => !settings.includes(s))).toEqual([]);
  });
});

describe('infra: Cosmos DB schema matches the app', () => {
  const cosmosFile = files.find((f) => declared('Microsoft.DocumentDB/databaseAccounts').some((r) => r.file === f.path))!;
  const declaredContainers = new Map<string, string>();
  const declaredTtl = new Map<string, number>();
  for (const m of (variable(cosmosFile, 'containers') ?? '').matchAll(/\{\s*name:\s*'([^']+)'\s*,?\s*partitionKey:\s*'([^']+)'\s*(?:,?\s*defaultTtl:\s*(-?\d+)\s*)?\}/g)) {
    declaredContainers.set(m[1]!, m[2]!);
    if (m[3] !== undefined) declaredTtl.set(m[1]!, Number(m[3]));
  }

  test('every container in CONTAINERS (shared/adapters/cosmos.ts) is declared with the same partition key', () => {
    // An Entra ID token cannot create containers through the data plane, so a missing one stops the app.
    expect(Object.fromEntries(declaredContainers)).toEqual(expect.objectContaining({ ...CONTAINERS }));
    expect([...declaredContainers.keys()].sort()).toEqual(Object.keys(CONTAINERS).sort());
  });

  test('containers with TTL in the app (CONTAINER_DEFAULT_TTL) have the same defaultTtl, and the resource sets it', () => {
    expect(Object.fromEntries(declaredTtl)).toEqual({ ...CONTAINER_DEFAULT_TTL });
    expect(declaredTtl.get('idempotencyKeys')).toBe(-1);
    const containers = declared('Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers');
    expect(containers[0]!.body).toMatch(/contains\(c,\s*'defaultTtl'\)\s*\?\s*\{\s*defaultTtl:\s*c\.defaultTtl\s*\}/);
  });

  test('the container resource loops over that list with its partition key', () => {
    const containers = declared('Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers');
    expect(containers).toHaveLength(1);
    expect(containers[0]!.body).toMatch(/paths:\s*\[\s*c\.partitionKey\s*\]/);
    expect(cosmosFile.code).toMatch(/for\s+c\s+in\s+containers\s*:/);
  });

  test("the database name defaults to the app's default (KEYTURN_COSMOS_DATABASE)", () => {
    const main = byPath('infra/main.bicep');
    const def = (settingsSchema.shape.KEYTURN_COSMOS_DATABASE as unknown as { parse(v: unknown): string }).parse(undefined);
    expect(main.code).toMatch(new RegExp(`^param\\s+cosmosDatabaseName\\s+string\\s*=\\s*'${def}'`, 'm'));
  });
});

describe('infra: Key Vault event subscription', () => {
  const subs = allResources.filter((r) => /eventSubscriptions$/.test(r.type) && !r.existing);

  test('lives only in eventSubscriptions.bicep (deployed after the code)', () => {
    expect(subs.length).toBeGreaterThan(0);
    for (const s of subs) expect(s.file).toBe('infra/eventSubscriptions.bicep');
  });

  test('includedEventTypes are valid Microsoft.KeyVault.* names and exactly the ones Keyturn handles', () => {
    const file = byPath('infra/eventSubscriptions.bicep');
    for (const s of subs) {
      const raw = pathValue(s.body, 'properties.filter.includedEventTypes') ?? '';
      const list = raw.startsWith('[') ? raw : (variable(file, raw) ?? '');
      const types = stringLiterals(list);
      expect(types.length).toBeGreaterThan(0);
      expect(types.filter((t) => !KEY_VAULT_EVENT_TYPES.has(t))).toEqual([]);
      expect([...types].sort()).toEqual([...HANDLED_EVENT_TYPES].sort());
    }
  });

  test('delivers to the keyVaultEvents function, one event per call, with retries and a blob dead letter', () => {
    const file = byPath('infra/eventSubscriptions.bicep');
    for (const s of subs) {
      expect(pathValue(s.body, 'properties.destination.endpointType')).toBe("'AzureFunction'");
      expect(pathValue(s.body, 'properties.destination.properties.resourceId')).toMatch(/\/functions\/\$\{functionName\}'$/);
      expect(pathValue(s.body, 'properties.destination.properties.maxEventsPerBatch')).toBe('1');
      expect(pathValue(s.body, 'properties.retryPolicy.maxDeliveryAttempts')).toBeDefined();
      expect(pathValue(s.body, 'properties.retryPolicy.eventTimeToLiveInMinutes')).toBeDefined();
      const deadLetter = pathValue(s.body, 'properties.deadLetterWithResourceIdentity.deadLetterDestination') ?? pathValue(s.body, 'properties.deadLetterDestination');
      expect(deadLetter && valueOf(deadLetter, 'endpointType')).toBe("'StorageBlob'");
    }
    expect(file.code).toMatch(/^param\s+functionName\s+string\s*=\s*'keyVaultEvents'/m);
    expect(byPath('infra/main.bicep').code).toMatch(/^param\s+eventGridFunctionName\s+string\s*=\s*'keyVaultEvents'/m);
  });

  // The post-deploy subscription targets a function by name: it must be registered.
  const eventGridNames = listFiles(join(repoRoot, 'functions'), '.ts').flatMap((f) =>
    [...readFileSync(f, 'utf8').matchAll(/app\.eventGrid\(\s*['"`]([^'"`]+)['"`]/g)].map((m) => m[1]!),
  );
  test('the subscribed function is registered with app.eventGrid', () => {
    expect(eventGridNames).toContain('keyVaultEvents');
  });
});

describe('infra: README', () => {
  const readme = readFileSync(join(infraDir, 'README.md'), 'utf8');
  test('says plainly that Bicep compiles online only', () => {
    expect(readme).toContain('az bicep build');
    expect(readme).toMatch(/offline/i);
    expect(readme).toContain('deployEventSubscriptions=true');
  });
});
