/**
 * Keyturn's settings: read once at start-up from the environment (the `Values` of
 * local.settings.json under func), validated with one schema. A bad or missing
 * setting stops start-up with one message naming every bad setting.
 */
// zod/mini, not classic zod: the settings are parsed at module load (a bad one stops start-up),
// and mini's functions bundle to a few kB where classic's ~0.4 MB would load and initialise
// at every cold start. The rest of the app uses classic zod, loaded at its first use.
import * as z from 'zod/mini';
import { checkVaultUrl } from './domain/vaultUrl';
import { KeyturnError } from './errors';

/** An integer setting (environment values are strings), with its bounds. */
const int = (...checks: z.core.$ZodCheck<number>[]) => z.coerce.number().check(z.int(), ...checks);
const nonEmpty = z.string().check(z.minLength(1));
const optionalNonEmpty = z.optional(nonEmpty);
const optionalUuid = z.optional(z.uuid());
const optionalPath = z.optional(z.string().check(z.trim(), z.minLength(1)));
const url = z.url();

/** A transform's issue: mini's transforms report through the payload's `issues`. */
function reject(ctx: { issues: z.core.$ZodRawIssue[]; value: unknown }, message: string): never {
  ctx.issues.push({ code: 'custom', message, input: ctx.value });
  return z.NEVER;
}

/** `name=https://url,other=https://url2`: vault key (stable, never the URL) → vault URL. */
const vaultMap = z.pipe(z.string(), z.transform((raw: string, ctx) => {
  const vaults: Record<string, string> = Object.create(null);
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    const url = part.slice(eq + 1).trim();
    if (eq <= 0 || !/^[0-9a-zA-Z-]{1,127}$/.test(name) || !/^https:\/\/[^/\s]+\/?$/.test(url)) {
      return reject(ctx, `expected name=https://host entries, got '${part}'`);
    }
    vaults[name.toLowerCase()] = url.replace(/\/$/, '');
  }
  if (Object.keys(vaults).length === 0) return reject(ctx, 'at least one vault is required');
  return vaults;
}));

/** `name=https://url,…`: customers' own vaults (BYOK) Keyturn knows of, by their Key Vault name. */
const customerVaultMap = z.pipe(z.string(), z.transform((raw: string, ctx) => {
  const vaults: Record<string, string> = Object.create(null);
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim().toLowerCase();
    const url = part.slice(eq + 1).trim();
    if (eq <= 0 || !/^[a-z](?!.*--)[a-z0-9-]{1,22}[a-z0-9]$/.test(name) || !/^https:\/\/[^/\s]+\/?$/.test(url) || name in vaults) {
      return reject(ctx, `expected distinct vaultName=https://host entries (Key Vault names), got '${part}'`);
    }
    vaults[name] = url.replace(/\/$/, '');
  }
  return vaults;
}));

/** `eventVaultName=vaultKey,…`: how a Key Vault event's VaultName maps to a vault key. */
const nameMap = z.pipe(z.string(), z.transform((raw: string, ctx) => {
  const map: Record<string, string> = Object.create(null);
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [from, to, extra] = part.split('=').map((p) => p.trim());
    if (extra !== undefined || !from || !to || !/^[0-9a-zA-Z-]{1,127}$/.test(from) || !/^[0-9a-zA-Z-]{1,127}$/.test(to)) {
      return reject(ctx, `expected eventVaultName=vaultKey entries, got '${part}'`);
    }
    map[from.toLowerCase()] = to.toLowerCase();
  }
  return map;
}));

/**
 * `name=/subscriptions/…/providers/Microsoft.KeyVault/vaults/{vaultName},…` → name → ARM
 * resource id; `sameName`: the name must be the vault's (else an alias, e.g. KEYTURN_VAULTS').
 */
const vaultScopeMap = (sameName = true) => z.pipe(z.optional(z.string()), z.transform((raw: string | undefined, ctx) => {
  const scopes: Record<string, string> = Object.create(null);
  for (const part of (raw ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim().toLowerCase();
    const scope = part.slice(eq + 1).trim().replace(/\/$/, '');
    if (eq <= 0 || !/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.KeyVault\/vaults\/[^/]+$/i.test(scope) || (sameName && !scope.toLowerCase().endsWith(`/vaults/${name}`))) {
      return reject(ctx, `expected vaultName=/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vaultName} entries, got '${part}'`);
    }
    scopes[name] = scope;
  }
  return scopes;
}));

export const settingsSchema = z.object({
  KEYTURN_VAULTS: vaultMap,
  /** CA file of the local Key Vault emulator; when set, Key Vault clients use the emulator's auth. */
  KEYTURN_KEYVAULT_CA_FILE: optionalPath,
  /** When set, the app's clock follows the Key Vault emulator's movable clock (local only). */
  KEYTURN_CLOCK_URL: z.optional(url),
  /** Local mode only: the emulator principal (object id or directory name) the app's local credential names; default keyturn-app. */
  KEYTURN_LOCAL_PRINCIPAL: z.optional(z.string().check(z.regex(/^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[a-zA-Z][a-zA-Z0-9-]{0,63})$/, 'expected an object id (GUID) or a directory name'))),

  /** Customers' own vaults (BYOK), `name=https://url,…`: health lists them; the app holds no role there. */
  KEYTURN_CUSTOMER_VAULTS: z.optional(customerVaultMap),

  KEYTURN_STORAGE_CONNECTION: nonEmpty,
  /** The job queues' connection (as `connection: 'KEYTURN_QUEUE'` of the queue triggers): a connection string (Azurite) … */
  KEYTURN_QUEUE: optionalNonEmpty,
  /** … or, in Azure, the queue service URI with the managed identity (the Functions identity-based connection form). */
  KEYTURN_QUEUE__queueServiceUri: z.optional(z.string().check(z.regex(/^https:\/\/[^/\s?#]+\/?$/, 'expected https://{account}.queue.core.windows.net'))),
  /** Read by the Functions host's queue triggers for the identity connection (the app's own client uses AZURE_CLIENT_ID). */
  KEYTURN_QUEUE__credential: z.optional(z.literal('managedidentity')),
  KEYTURN_QUEUE__clientId: optionalUuid,

  /** Azure Resource Manager (role assignments); locally the stack's ARM endpoint. */
  KEYTURN_ARM_ENDPOINT: z._default(z.string().check(z.regex(/^https:\/\/[^/\s?#]+\/?$/, 'expected an https origin')), 'https://management.azure.com'),
  /** CA of the local ARM endpoint, trusted by the role-assignment client only. */
  KEYTURN_ARM_CA_FILE: optionalPath,

  KEYTURN_COSMOS_ENDPOINT: url,
  /** Account key; leave empty in Azure to use the managed identity. */
  KEYTURN_COSMOS_KEY: z.optional(z.string()),
  KEYTURN_COSMOS_DATABASE: z._default(z.string().check(z.regex(/^[A-Za-z0-9-_]{1,255}$/)), 'keyturn'),
  /** CA of the local Cosmos server, trusted by the Cosmos client only. */
  KEYTURN_COSMOS_CA_FILE: optionalPath,

  KEYTURN_EVENTGRID_ENDPOINT: url,
  KEYTURN_EVENTGRID_KEY: z.optional(z.string()),
  /** CA of the local Event Grid, trusted by the publisher client only. */
  KEYTURN_EVENTGRID_CA_FILE: optionalPath,

  KEYTURN_GRAPH_ENDPOINT: z._default(url, 'https://graph.microsoft.com'),
  KEYTURN_GRAPH_CA_FILE: optionalPath,

  /** NCRONTAB schedules (six fields) read by the timer functions as %SETTING%. */
  KEYTURN_SWEEP_SCHEDULE: z._default(nonEmpty, '0 0 * * * *'),
  KEYTURN_RESUME_SCHEDULE: z._default(nonEmpty, '0 * * * * *'),
  KEYTURN_SIGNING_ROLLOVER_SCHEDULE: z._default(nonEmpty, '0 0 * * * *'),
  /**
   * How long one resume run keeps taking due jobs. It must end inside the Functions host's
   * timeout (5 minutes by default, 10 at most on Consumption); the next run takes the rest.
   */
  KEYTURN_RESUME_BUDGET_SECONDS: z._default(int(z.gte(10), z.lte(540)), 240),

  KEYTURN_RENEWAL_WINDOW_DAYS: z._default(int(z.positive()), 30),
  KEYTURN_ROTATION_MAX_ATTEMPTS: z._default(int(z.positive()), 5),
  KEYTURN_DEFAULT_VALIDITY_DAYS: z._default(int(z.positive()), 365),
  KEYTURN_DEFAULT_GRACE_DAYS: z._default(int(z.gte(0)), 7),
  /** Key Vault event VaultName → vault key, for vaults whose URL does not carry their name (the local emulator). */
  KEYTURN_EVENT_VAULT_NAMES: z.optional(nameMap),
  /** How long a worker holds a rotation step before another may take it over. */
  KEYTURN_ROTATION_LEASE_SECONDS: z._default(int(z.positive()), 300),

  KEYTURN_SIGNING_VAULT: optionalNonEmpty,
  KEYTURN_SIGNING_KEY_NAME: z._default(z.string().check(z.regex(/^[0-9a-zA-Z-]{1,100}$/)), 'keyturn-signing'),
  KEYTURN_SIGNING_KEY_TYPE: z._default(z.enum(['RSA-2048', 'EC-P256']), 'RSA-2048'),
  KEYTURN_SIGNING_ROLLOVER_DAYS: z._default(int(z.positive()), 42),
  KEYTURN_SIGNING_PUBLISH_AHEAD_HOURS: z._default(int(z.positive()), 24),
  KEYTURN_TOKEN_MAX_LIFETIME_MINUTES: z._default(int(z.positive()), 60),
  KEYTURN_JWKS_MAX_AGE_SECONDS: z._default(int(z.gte(0), z.lte(300)), 300),
  /** How long a host serves the JWKS from memory; also how late other hosts may show an emergency rollover (this host: at once). */
  KEYTURN_JWKS_CACHE_MS: z._default(int(z.gte(0), z.lte(5000)), 1000),
  KEYTURN_ISSUER: url,
  KEYTURN_JWKS_URI: url,
  /** Trust `x-ms-client-principal-name` as the requester: only where App Service authentication sets it. */
  KEYTURN_TRUST_EASY_AUTH_HEADER: z._default(z.enum(['true', 'false']), 'false'),

  /** Tenant keys: the vault (alias in KEYTURN_VAULTS) holding service-managed tenant keys; default the first. */
  KEYTURN_TENANT_VAULT: optionalNonEmpty,
  /** Configured RSA size of new tenant keys; the key policy's minimum wins when larger. */
  KEYTURN_TENANT_KEY_BITS: z._default(z.enum(['2048', '3072', '4096']), '3072'),
  /** `exp` of a new service-managed tenant key version (KeyNearExpiry 30 days before it starts a rekey). */
  KEYTURN_TENANT_KEY_VALIDITY_DAYS: z._default(int(z.positive()), 365),
  /** How long a previous version stays accepted for new content after a rekey (≥ the published max-age). */
  KEYTURN_TENANT_CHANGEOVER_HOURS: z._default(int(z.positive()), 24),
  /** Cache-Control max-age of GET /api/tenants/{tenantId}/keys. */
  KEYTURN_TENANT_KEYS_MAX_AGE_SECONDS: z._default(int(z.gte(0), z.lte(86_400)), 3600),

  // Tenant keys, part 2: BYOK probes, revoke, cross-tenant access.
  /** NCRONTAB schedule of the BYOK access probes (and the detection of a new customer key version). */
  KEYTURN_TENANT_PROBE_SCHEDULE: z._default(nonEmpty, '0 */5 * * * *'),
  /** Consecutive failed probes must span this long before a BYOK tenant is `access-lost` (RBAC takes minutes to propagate). */
  KEYTURN_TENANT_ACCESS_LOST_MINUTES: z._default(int(z.gte(10), z.lte(1440)), 10),
  /** BYOK revoke: how long Keyturn keeps probing for the vault's 403 before it reports the revoke unverified. */
  KEYTURN_TENANT_REVOKE_VERIFY_HOURS: z._default(int(z.positive(), z.lte(720)), 72),
  /** Service-managed revoke: revoked keys are deleted (soft delete) after this many days. */
  KEYTURN_TENANT_REVOKED_RETENTION_DAYS: z._default(int(z.gte(0), z.lte(3650)), 90),
  /** `vaultName=/subscriptions/…/vaults/{name},…`: customer vaults (same Entra tenant) where Keyturn may remove its own role assignment on a revoke. */
  KEYTURN_BYOK_SELF_UNASSIGN: vaultScopeMap(),
  // Breach playbooks (issue 15): principals never removed, the fleet-wide approval threshold, the vaults' ARM resource ids.
  /** Comma-separated principal object ids (or local names) no playbook removes; Keyturn's own identity and KEYTURN_ADMIN_PRINCIPALS are always added. */
  KEYTURN_PROTECTED_PRINCIPALS: z.pipe(z._default(z.string(), ''), z.transform((raw) => raw.split(',').map((p) => p.trim()).filter(Boolean))),
  /** The administrators (principal ids), protected from any playbook's removal. */
  KEYTURN_ADMIN_PRINCIPALS: z.pipe(z._default(z.string(), ''), z.transform((raw) => raw.split(',').map((p) => p.trim()).filter(Boolean))),
  /** `false`: incidents record only (no playbook steps run); the incident record's own tests use it. */
  KEYTURN_PLAYBOOKS_ENABLED: z._default(z.enum(['true', 'false']), 'true'),
  /** A playbook changing more keys than this waits for a second approver (as does `all: true`). */
  KEYTURN_PLAYBOOK_APPROVAL_THRESHOLD: z._default(int(z.gte(0), z.lte(100_000)), 20),
  /** `name=/subscriptions/…/vaults/{vaultName},…` (name: the KEYTURN_VAULTS alias or customer vault name): where unauthorized-use lists role assignments. */
  KEYTURN_PLAYBOOK_VAULT_SCOPES: vaultScopeMap(false),
  /** Keyturn's own principal (object id of its managed identity): whose role assignment self-unassign removes. */
  KEYTURN_APP_PRINCIPAL_ID: optionalUuid,
  /** Cross-tenant BYOK: the client id of Keyturn's multi-tenant app registration (its federated credential trusts the managed identity). */
  KEYTURN_CROSS_TENANT_CLIENT_ID: optionalUuid,
  /** Keyturn's own Entra tenant: a BYOK customerTenantId equal to it needs no cross-tenant credential. */
  KEYTURN_HOME_TENANT_ID: optionalUuid,
  // Incidents (issue 14): the breach record's checkpoints and its daily verification.
  /** The vault (alias in KEYTURN_VAULTS) holding the checkpoint secrets `incident-{id}-head`; default the first. */
  KEYTURN_INCIDENT_VAULT: optionalNonEmpty,
  /** A checkpoint of an incident's head at least every this many entries (and on every state change). */
  KEYTURN_INCIDENT_CHECKPOINT_EVERY: z._default(int(z.gte(1), z.lte(1000)), 10),
  /** NCRONTAB (six fields) of the daily verification of every incident record. */
  KEYTURN_INCIDENT_VERIFY_SCHEDULE: z._default(nonEmpty, '0 0 3 * * *'),
  // Tenant keys part 2 (backup, restore, export).
  /** How long an export request waits for approval, and how long its package can be fetched after it (hours). */
  KEYTURN_TENANT_EXPORT_EXPIRY_HOURS: z._default(int(z.gte(1), z.lte(24)), 24),
  /** The least time between an export request and its approval (minutes; 0: none). */
  KEYTURN_TENANT_EXPORT_MIN_WAIT_MINUTES: z._default(int(z.gte(0), z.lte(10_080)), 0),
  // Tenant keys: the rekey-after-days policy (issue 11 item 6).
  /** The tenant timer rekeys a service-managed tenant whose version in use is older than this (BYOK: RekeyNeeded); unset = off. */
  KEYTURN_TENANT_REKEY_AFTER_DAYS: z.optional(int(z.positive(), z.lte(3650))),
  // Encryption key sets and batch jobs (issue 13).
  /** The vault (alias in KEYTURN_VAULTS) where Keyturn creates key sets' KEKs; default the first. */
  KEYTURN_KEYSET_VAULT: optionalNonEmpty,
  /** Configured RSA size of a new KEK; the key policy's minimum wins when larger. */
  KEYTURN_KEYSET_KEK_BITS: z._default(z.enum(['2048', '3072', '4096']), '3072'),
  /** How long a host keeps an unwrapped data key in memory (one Key Vault unwrap per key per TTL). */
  KEYTURN_KEYSET_DATA_KEY_TTL_SECONDS: z._default(int(z.gte(1), z.lte(86_400)), 300),
  /** How long a host writes with the primary it last read: other hosts follow an added key within it. */
  KEYTURN_KEYSET_PRIMARY_TTL_SECONDS: z._default(int(z.gte(0), z.lte(5)), 5),
  /** Consecutive KEK failures must span this long before a set is `unavailable`. */
  KEYTURN_KEYSET_UNAVAILABLE_AFTER_MINUTES: z._default(int(z.gte(10), z.lte(10_080)), 10),
  /** The queue of batch jobs (re-encryption, abandon), read by the `batchJobs` queue trigger as %KEYTURN_BATCH_QUEUE%. */
  KEYTURN_BATCH_QUEUE: z._default(z.string().check(z.regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'expected a queue name')), 'keyturn-batch-jobs'),
  /** How long a delivery holds its batch (well above a batch's run time); a crashed holder's batch runs again after it. */
  KEYTURN_BATCH_CLAIM_SECONDS: z._default(int(z.gte(5), z.lte(600)), 60),
  /** Dual control of key-set exports: the least time between a request and its approval. */
  KEYTURN_KEYSET_EXPORT_MIN_WAIT_MINUTES: z._default(int(z.gte(0), z.lte(10_080)), 0),

  /** Test-only fault points (`step:when`, comma separated); never set in production. */
  KEYTURN_FAULTS: z.optional(z.string()),
});

export type Settings = z.infer<typeof settingsSchema>;

export interface Config {
  vaults: Record<string, string>;
  keyVaultCaFile?: string;
  /** The local stack (the Key Vault emulator's CA is set): where body-declared identities are accepted for dual control. */
  localStack: boolean;
  /** Local mode only (KEYTURN_LOCAL_PRINCIPAL). */
  localPrincipal?: string;
  clockUrl?: string;
  /** Customers' own vaults by Key Vault name (KEYTURN_CUSTOMER_VAULTS); canonical URLs. */
  customerVaults: Record<string, string>;
  storageConnection: string;
  /** The job queues' connection: exactly one of the two, or neither (no queue functions then). */
  queue: { connectionString?: string; queueServiceUri?: string };
  arm: { endpoint: string; caFile?: string };
  cosmos: { endpoint: string; key?: string; database: string; caFile?: string };
  eventGrid: { endpoint: string; key?: string; caFile?: string };
  graph: { endpoint: string; caFile?: string };
  renewal: {
    windowDays: number;
    maxAttempts: number;
    defaultValidityDays: number;
    defaultGraceDays: number;
    eventVaultNames: Record<string, string>;
    leaseSeconds: number;
  };
  signing: {
    vault: string;
    keyName: string;
    keyType: 'RSA-2048' | 'EC-P256';
    rolloverDays: number;
    publishAheadHours: number;
    tokenMaxLifetimeMinutes: number;
    jwksMaxAgeSeconds: number;
    jwksCacheMs: number;
    issuer: string;
    jwksUri: string;
    trustEasyAuthHeader: boolean;
  };
  jobs: { resumeBudgetSeconds: number };
  tenants: {
    vault: string;
    keyBits: 2048 | 3072 | 4096;
    validityDays: number;
    changeoverHours: number;
    keysMaxAgeSeconds: number;
  };
  /** Tenant keys, part 2 (BYOK, revoke). */
  tenantsByok: {
    accessLostMinutes: number;
    revokeVerifyHours: number;
    revokedRetentionDays: number;
    /** Customer vault name → its ARM resource id, where Keyturn may remove its own assignment. */
    selfUnassign: Record<string, string>;
    appPrincipalId?: string;
    crossTenantClientId?: string;
    homeTenantId?: string;
  };
  /** Incidents (issue 14). */
  incidents: { vault: string; checkpointEvery: number };
  /** Tenant keys part 2: backup, restore, escrow and export. */
  tenantOps: { exportExpiryHours: number; exportMinWaitMinutes: number };
  /** Tenant keys: the rekey-after-days policy (absent = off). */
  tenantRekeyAge: { afterDays?: number };
  /** Encryption key sets and batch jobs (issue 13). */
  keySets: {
    vault: string;
    kekBits: 2048 | 3072 | 4096;
    dataKeyTtlSeconds: number;
    primaryTtlSeconds: number;
    unavailableAfterMinutes: number;
    batchQueue: string;
    batchClaimSeconds: number;
    exportMinWaitMinutes: number;
  };
  /** Breach playbooks (issue 15). */
  playbooks: { enabled: boolean; protectedPrincipals: string[]; adminPrincipals: string[]; approvalThreshold: number; vaultScopes: Record<string, string> };
  faults: string[];
}

export class ConfigError extends KeyturnError {
  constructor(readonly problems: { setting: string; message: string }[]) {
    super(
      'CONFIG_INVALID',
      `Keyturn cannot start: ${problems.length} setting(s) are missing or invalid: ` +
        problems.map((p) => `${p.setting} (${p.message})`).join('; '),
      { settings: problems.map((p) => p.setting) },
    );
    this.name = 'ConfigError';
  }
}

/** Empty strings count as unset, as they do in local.settings.json. */
function withoutEmpty(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/** Each setting parsed on its own: what the rules across settings can still check when others are bad. */
function parseEach(raw: Record<string, string>): Partial<Settings> {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(settingsSchema.shape)) {
    const one = (schema as z.ZodMiniType).safeParse(raw[name]);
    if (one.success) out[name] = one.data;
  }
  return out as Partial<Settings>;
}

/** A life cycle's vault setting (an alias in KEYTURN_VAULTS), else the first vault; lower-case, as the aliases are. */
const vaultOrFirst = (alias: string | undefined, vaults: Record<string, string>): string => (alias ?? Object.keys(vaults)[0]!).toLowerCase();

/** Rules across settings; each only when the settings it reads are valid on their own. */
function crossFieldProblems(s: Partial<Settings>): { setting: string; message: string }[] {
  const problems: { setting: string; message: string }[] = [];
  const vaults = s.KEYTURN_VAULTS;
  if (vaults) {
    const signingVault = vaultOrFirst(s.KEYTURN_SIGNING_VAULT, vaults);
    if (!Object.hasOwn(vaults, signingVault)) {
      problems.push({ setting: 'KEYTURN_SIGNING_VAULT', message: `'${signingVault}' is not a vault named in KEYTURN_VAULTS` });
    }
    for (const alias of Object.values(s.KEYTURN_EVENT_VAULT_NAMES ?? {})) {
      if (!Object.hasOwn(vaults, alias)) {
        problems.push({ setting: 'KEYTURN_EVENT_VAULT_NAMES', message: `'${alias}' is not a vault named in KEYTURN_VAULTS` });
      }
    }
  }
  // Customer vaults come from outside Keyturn: the anchored allow-list, as for a request's URL.
  const local = Boolean(s.KEYTURN_KEYVAULT_CA_FILE);
  for (const [name, vaultUrl] of Object.entries(s.KEYTURN_CUSTOMER_VAULTS ?? {})) {
    const checked = checkVaultUrl(vaultUrl, { local });
    if ('refused' in checked) problems.push({ setting: 'KEYTURN_CUSTOMER_VAULTS', message: `${name}: ${checked.refused}` });
    else if (vaults && Object.hasOwn(vaults, name)) problems.push({ setting: 'KEYTURN_CUSTOMER_VAULTS', message: `'${name}' is also a vault key in KEYTURN_VAULTS` });
  }
  if (s.KEYTURN_QUEUE && s.KEYTURN_QUEUE__queueServiceUri) {
    problems.push({ setting: 'KEYTURN_QUEUE', message: 'set either KEYTURN_QUEUE (connection string) or KEYTURN_QUEUE__queueServiceUri, not both' });
  }
  if (vaults && s.KEYTURN_INCIDENT_VAULT && !Object.hasOwn(vaults, s.KEYTURN_INCIDENT_VAULT.toLowerCase())) {
    problems.push({ setting: 'KEYTURN_INCIDENT_VAULT', message: `'${s.KEYTURN_INCIDENT_VAULT}' is not a vault named in KEYTURN_VAULTS` });
  }
  if (vaults && s.KEYTURN_KEYSET_VAULT && !Object.hasOwn(vaults, s.KEYTURN_KEYSET_VAULT.toLowerCase())) {
    problems.push({ setting: 'KEYTURN_KEYSET_VAULT', message: `'${s.KEYTURN_KEYSET_VAULT}' is not a vault named in KEYTURN_VAULTS` });
  }
  if (vaults && s.KEYTURN_TENANT_VAULT && !Object.hasOwn(vaults, s.KEYTURN_TENANT_VAULT.toLowerCase())) {
    problems.push({ setting: 'KEYTURN_TENANT_VAULT', message: `'${s.KEYTURN_TENANT_VAULT}' is not a vault named in KEYTURN_VAULTS` });
  }
  // Clients may keep a fetched key for max-age: the previous key must stay accepted at least that long.
  if (s.KEYTURN_TENANT_CHANGEOVER_HOURS !== undefined && s.KEYTURN_TENANT_KEYS_MAX_AGE_SECONDS !== undefined
    && s.KEYTURN_TENANT_CHANGEOVER_HOURS * 3600 < s.KEYTURN_TENANT_KEYS_MAX_AGE_SECONDS) {
    problems.push({ setting: 'KEYTURN_TENANT_CHANGEOVER_HOURS', message: 'the changeover window must be at least KEYTURN_TENANT_KEYS_MAX_AGE_SECONDS' });
  }
  // Self-unassign removes Keyturn's own assignment: outside the local stack it must know its principal.
  if (Object.keys(s.KEYTURN_BYOK_SELF_UNASSIGN ?? {}).length > 0 && !s.KEYTURN_APP_PRINCIPAL_ID && !s.KEYTURN_KEYVAULT_CA_FILE) {
    problems.push({ setting: 'KEYTURN_APP_PRINCIPAL_ID', message: 'required with KEYTURN_BYOK_SELF_UNASSIGN (the managed identity\'s object id)' });
  }
  // Fault points crash workers on purpose: only ever against the local stack.
  if (s.KEYTURN_FAULTS && !s.KEYTURN_KEYVAULT_CA_FILE && !s.KEYTURN_CLOCK_URL) {
    problems.push({
      setting: 'KEYTURN_FAULTS',
      message: 'test-only fault points are refused outside the local stack (no KEYTURN_KEYVAULT_CA_FILE or KEYTURN_CLOCK_URL)',
    });
  }
  return problems;
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const raw = withoutEmpty(env);
  // English messages (classic zod sets them when it loads; at start-up it has not).
  z.config(z.locales.en());
  // Parsed once per process: zod's compiled fast path (jit) costs more to build than this one parse saves.
  const parsed = settingsSchema.safeParse(raw, { jitless: true });
  // Every problem in one message: per setting first, then the rules across settings.
  const problems = parsed.success
    ? crossFieldProblems(parsed.data)
    : [
        ...parsed.error.issues.map((i) => ({ setting: String(i.path[0] ?? '(settings)'), message: i.message })),
        ...crossFieldProblems(parseEach(raw)),
      ];
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const s = parsed.data;
  const signingVault = vaultOrFirst(s.KEYTURN_SIGNING_VAULT, s.KEYTURN_VAULTS);
  return {
    vaults: s.KEYTURN_VAULTS,
    keyVaultCaFile: s.KEYTURN_KEYVAULT_CA_FILE,
    localStack: Boolean(s.KEYTURN_KEYVAULT_CA_FILE),
    localPrincipal: s.KEYTURN_LOCAL_PRINCIPAL,
    clockUrl: s.KEYTURN_CLOCK_URL,
    customerVaults: Object.fromEntries(
      Object.entries(s.KEYTURN_CUSTOMER_VAULTS ?? {}).map(([name, vaultUrl]) => [name, (checkVaultUrl(vaultUrl, { local: true }) as { vaultUrl: string }).vaultUrl]),
    ),
    storageConnection: s.KEYTURN_STORAGE_CONNECTION,
    queue: {
      ...(s.KEYTURN_QUEUE ? { connectionString: s.KEYTURN_QUEUE } : {}),
      ...(s.KEYTURN_QUEUE__queueServiceUri ? { queueServiceUri: s.KEYTURN_QUEUE__queueServiceUri.replace(/\/$/, '') } : {}),
    },
    arm: { endpoint: s.KEYTURN_ARM_ENDPOINT.replace(/\/$/, ''), caFile: s.KEYTURN_ARM_CA_FILE },
    cosmos: {
      endpoint: s.KEYTURN_COSMOS_ENDPOINT,
      key: s.KEYTURN_COSMOS_KEY,
      database: s.KEYTURN_COSMOS_DATABASE,
      caFile: s.KEYTURN_COSMOS_CA_FILE,
    },
    eventGrid: {
      endpoint: s.KEYTURN_EVENTGRID_ENDPOINT,
      key: s.KEYTURN_EVENTGRID_KEY,
      caFile: s.KEYTURN_EVENTGRID_CA_FILE,
    },
    graph: { endpoint: s.KEYTURN_GRAPH_ENDPOINT.replace(/\/$/, ''), caFile: s.KEYTURN_GRAPH_CA_FILE },
    renewal: {
      windowDays: s.KEYTURN_RENEWAL_WINDOW_DAYS,
      maxAttempts: s.KEYTURN_ROTATION_MAX_ATTEMPTS,
      defaultValidityDays: s.KEYTURN_DEFAULT_VALIDITY_DAYS,
      defaultGraceDays: s.KEYTURN_DEFAULT_GRACE_DAYS,
      eventVaultNames: s.KEYTURN_EVENT_VAULT_NAMES ?? {},
      leaseSeconds: s.KEYTURN_ROTATION_LEASE_SECONDS,
    },
    signing: {
      vault: signingVault,
      keyName: s.KEYTURN_SIGNING_KEY_NAME,
      keyType: s.KEYTURN_SIGNING_KEY_TYPE,
      rolloverDays: s.KEYTURN_SIGNING_ROLLOVER_DAYS,
      publishAheadHours: s.KEYTURN_SIGNING_PUBLISH_AHEAD_HOURS,
      tokenMaxLifetimeMinutes: s.KEYTURN_TOKEN_MAX_LIFETIME_MINUTES,
      jwksMaxAgeSeconds: s.KEYTURN_JWKS_MAX_AGE_SECONDS,
      jwksCacheMs: s.KEYTURN_JWKS_CACHE_MS,
      issuer: s.KEYTURN_ISSUER.replace(/\/$/, ''),
      jwksUri: s.KEYTURN_JWKS_URI,
      trustEasyAuthHeader: s.KEYTURN_TRUST_EASY_AUTH_HEADER === 'true',
    },
    jobs: { resumeBudgetSeconds: s.KEYTURN_RESUME_BUDGET_SECONDS },
    tenants: {
      vault: vaultOrFirst(s.KEYTURN_TENANT_VAULT, s.KEYTURN_VAULTS),
      keyBits: Number(s.KEYTURN_TENANT_KEY_BITS) as 2048 | 3072 | 4096,
      validityDays: s.KEYTURN_TENANT_KEY_VALIDITY_DAYS,
      changeoverHours: s.KEYTURN_TENANT_CHANGEOVER_HOURS,
      keysMaxAgeSeconds: s.KEYTURN_TENANT_KEYS_MAX_AGE_SECONDS,
    },
    tenantsByok: {
      accessLostMinutes: s.KEYTURN_TENANT_ACCESS_LOST_MINUTES,
      revokeVerifyHours: s.KEYTURN_TENANT_REVOKE_VERIFY_HOURS,
      revokedRetentionDays: s.KEYTURN_TENANT_REVOKED_RETENTION_DAYS,
      selfUnassign: s.KEYTURN_BYOK_SELF_UNASSIGN,
      appPrincipalId: s.KEYTURN_APP_PRINCIPAL_ID,
      crossTenantClientId: s.KEYTURN_CROSS_TENANT_CLIENT_ID,
      homeTenantId: s.KEYTURN_HOME_TENANT_ID,
    },
    incidents: {
      vault: vaultOrFirst(s.KEYTURN_INCIDENT_VAULT, s.KEYTURN_VAULTS),
      checkpointEvery: s.KEYTURN_INCIDENT_CHECKPOINT_EVERY,
    },
    tenantOps: { exportExpiryHours: s.KEYTURN_TENANT_EXPORT_EXPIRY_HOURS, exportMinWaitMinutes: s.KEYTURN_TENANT_EXPORT_MIN_WAIT_MINUTES },
    tenantRekeyAge: s.KEYTURN_TENANT_REKEY_AFTER_DAYS !== undefined ? { afterDays: s.KEYTURN_TENANT_REKEY_AFTER_DAYS } : {},
    keySets: {
      vault: vaultOrFirst(s.KEYTURN_KEYSET_VAULT, s.KEYTURN_VAULTS),
      kekBits: Number(s.KEYTURN_KEYSET_KEK_BITS) as 2048 | 3072 | 4096,
      dataKeyTtlSeconds: s.KEYTURN_KEYSET_DATA_KEY_TTL_SECONDS,
      primaryTtlSeconds: s.KEYTURN_KEYSET_PRIMARY_TTL_SECONDS,
      unavailableAfterMinutes: s.KEYTURN_KEYSET_UNAVAILABLE_AFTER_MINUTES,
      batchQueue: s.KEYTURN_BATCH_QUEUE,
      batchClaimSeconds: s.KEYTURN_BATCH_CLAIM_SECONDS,
      exportMinWaitMinutes: s.KEYTURN_KEYSET_EXPORT_MIN_WAIT_MINUTES,
    },
    playbooks: {
      enabled: s.KEYTURN_PLAYBOOKS_ENABLED === 'true',
      protectedPrincipals: s.KEYTURN_PROTECTED_PRINCIPALS,
      adminPrincipals: s.KEYTURN_ADMIN_PRINCIPALS,
      approvalThreshold: s.KEYTURN_PLAYBOOK_APPROVAL_THRESHOLD,
      vaultScopes: s.KEYTURN_PLAYBOOK_VAULT_SCOPES,
    },
    faults: (s.KEYTURN_FAULTS ?? '').split(',').map((f) => f.trim()).filter(Boolean),
  };
}
