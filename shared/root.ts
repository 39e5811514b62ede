/**
 * The composition root: settings are validated and SDK clients built once per
 * process, then handed to adapters and services. Function files call `root()` at
 * load, so a bad setting stops start-up with a message naming it. Module load does
 * registration only (cold start): SDK clients, and the SDKs themselves, are built on
 * first use. Only SDK types are imported here; each SDK is `require`d where it is used.
 */
import { leaseOwner } from './roots/owner';
import type { BlobServiceClient } from '@azure/storage-blob';
import { type Config, loadConfig } from './config';
import { type CosmosHandle, createCosmos } from './adapters/cosmos';
import { emulatorClock, systemClock } from './adapters/clocks';
import { eventGridNotifier } from './adapters/eventGridNotifier';
import { armedFaults } from './adapters/faults';
import { type KeyVaultClients, createKeyVaultClients, emulatorCredential, localCredential } from './adapters/keyVault/clients';
import { vaultKeys } from './adapters/keyVault/vaultKeys';
import { cosmosHealth, customerVaultHealth, keyVaultHealth, storageHealth } from './adapters/health';
import { armRoleAssignments } from './adapters/roleAssignments';
import { storageJobQueue } from './adapters/storageJobQueue';
import { httpsAgent, readCa } from './adapters/tlsAgent';
import { cosmosKeySets } from './adapters/signing/cosmosKeySets';
import { consoleLogger } from './adapters/logger';
import type { Clock, FaultPoints, JobQueue, Logger, Notifier, RoleAssignments, VaultKeys } from './ports';
import type { DependencyCheck } from './services/health';
import { KeySetPublisher, invalidatesOnWrite } from './services/signing/publication';
import { SigningKeyService, type SigningSettings, SingleFlight } from './services/signing/signingKeys';
import { signingVault } from './services/signing/signingVault';
import { TokenIssuer } from './services/signing/tokens';
import { ALG_OF } from './domain/signingKeys';
import type { TokenCredential } from '@azure/identity';
import { cosmosDeadLetterStore, cosmosIdempotencyStore, cosmosRotationStore } from './adapters/renewal/cosmosRenewalStores';
import { graphAppPasswordProvider } from './adapters/renewal/graphAppPasswordProvider';
import { keyVaultSecretStore } from './adapters/renewal/keyVaultSecretStore';
import { symmetricProvider } from './adapters/renewal/symmetricProvider';
import { signingKeyEventHandler } from './services/signing/keyEvents';
import { RenewalService } from './services/renewal/renewalService';
import { KeyVaultEventIntake } from './services/events/intake';
import type { KeyVaultEventHandler } from './services/events/ports';
import { JobRegistry, type ResumableKind } from './services/jobs/registry';
import { KeyturnError } from './errors';
import { cosmosKeyPolicyStore } from './adapters/tenants/cosmosTenants';
import { rsaBitsFor } from './domain/tenantKeyPolicy';
import type { KeyPolicyStore } from './services/tenants/ports';
import { type TenantsRoot, buildTenants } from './roots/tenants';
import { type TenantOpsRoot, buildTenantOps } from './roots/tenantOps';

export type { TenantsRoot, TenantOpsRoot };
import { type IncidentsRoot, buildIncidents } from './roots/incidents';
import { type KeySetsRoot, buildKeySets } from './roots/keySets';
import { accessLostIncident, buildPlaybooks } from './roots/playbooks';

export interface Root {
  config: Config;
  clock: Clock;
  faults: FaultPoints;
  keyVault: KeyVaultClients;
  /** Key Vault keys of any vault the clients accept: the one adapter every key life cycle uses. */
  vaultKeys: VaultKeys;
  cosmos: CosmosHandle;
  blobs: BlobServiceClient;
  notifier: Notifier;
  healthChecks: DependencyCheck[];
  signing: SigningRoot;
  renewal: RenewalRoot;
  events: EventsRoot;
  jobs: JobsRoot;
  /** The queue-triggered jobs' queue (KEYTURN_QUEUE); built on first use, CONFIG_INVALID when the setting is absent. */
  readonly jobQueue: JobQueue;
  /** Azure RBAC role assignments over ARM (KEYTURN_ARM_ENDPOINT), as the app's identity; built on first use. */
  readonly roleAssignments: RoleAssignments;
  tenants: TenantsRoot;
  /** Breach incidents: the tamper-evident record, its checkpoints and runs (issue 14). */
  incidents: IncidentsRoot;
  /** Tenant keys part 2: backup, restore, escrow, export. */
  tenantOps: TenantOpsRoot;
  /** Life cycle 5: encryption key sets. */
  keySets: KeySetsRoot;
}

/** Life cycle 4: signing-key rollover, JWKS and token signing. */
export interface SigningRoot {
  settings: SigningSettings;
  /** KEYTURN_TRUST_EASY_AUTH_HEADER: App Service authentication sets (and strips client copies of) the principal header. */
  trustEasyAuthHeader: boolean;
  jwksMaxAgeSeconds: number;
  jwksUri: string;
  /** Services are cheap; one per invocation so they log to its context. */
  service(log: Logger): SigningKeyService;
  tokens(log: Logger): TokenIssuer;
  /** One per process: it caches the rendered key set. Read-only (anonymous requests never create keys). */
  publisher: KeySetPublisher;
}

/** Config → the signing services' settings (the services never read Config). */
export function signingSettings(config: Config['signing']): SigningSettings {
  return {
    issuer: config.issuer,
    vaultAlias: config.vault,
    keyName: config.keyName,
    keyType: config.keyType,
    policy: {
      rolloverMs: config.rolloverDays * 86_400_000,
      publishAheadMs: config.publishAheadHours * 3_600_000,
      tokenMaxLifetimeMs: config.tokenMaxLifetimeMinutes * 60_000,
      jwksMaxAgeMs: config.jwksMaxAgeSeconds * 1000,
    },
  };
}

function buildSigning(
  config: Config,
  vault: { clients: KeyVaultClients; keys: VaultKeys },
  cosmos: CosmosHandle,
  clock: Clock,
  policies: KeyPolicyStore,
): SigningRoot {
  const settings = signingSettings(config.signing);
  const keys = signingVault({
    keys: vault.keys,
    vaultAlias: settings.vaultAlias,
    vaultUrlOf: (alias) => vault.clients.vaultUrl(alias),
    issuer: settings.issuer,
    // Every key creation consults the key policy: RSA signing keys grow with its minimum.
    rsaBits: async () => rsaBitsFor(2048, await policies.current()),
  });
  const stored = cosmosKeySets(() => cosmos.container('signingKeys'), () => cosmos.ensureSchema());
  const bootstrap = new SingleFlight(); // one bootstrap in flight per process
  // One per process, reading through the signing service (what tokens are signed with).
  let reader: SigningKeyService | undefined;
  const publisher = new KeySetPublisher({
    signingKeys: { read: () => (reader ??= service(consoleLogger)).read() },
    defaultAlg: ALG_OF[settings.keyType],
    cacheMs: config.signing.jwksCacheMs,
  });
  // Every key set write on this host (an emergency rollover above all) drops the cached JWKS at once.
  const sets = invalidatesOnWrite(stored, publisher);
  const service = (log: Logger) => new SigningKeyService({ keys, sets, clock, log, settings, bootstrap });
  return {
    settings,
    trustEasyAuthHeader: config.signing.trustEasyAuthHeader,
    jwksMaxAgeSeconds: config.signing.jwksMaxAgeSeconds,
    jwksUri: config.signing.jwksUri,
    service,
    tokens: (log) => new TokenIssuer({ signingKeys: service(log), keys, clock, issuer: settings.issuer, log }),
    publisher,
  };
}

/** Life cycle 1: credential renewal. */
export interface RenewalRoot {
  /** Services are cheap; one per invocation so they log to its context. */
  service(log: Logger): RenewalService;
}

function buildRenewal(
  config: Config,
  deps: {
    keyVault: KeyVaultClients;
    cosmos: CosmosHandle;
    notifier: Notifier;
    clock: Clock;
    faults: FaultPoints;
    credential: () => TokenCredential;
  },
): RenewalRoot {
  const { keyVault, cosmos, notifier, clock, faults } = deps;
  const ready = () => cosmos.ensureSchema();
  // A Graph stub on this machine (tests) accepts any token; in Azure the managed identity.
  const localGraph = /^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(config.graph.endpoint);
  // Resolved at the first token request, so the managed identity is not built at load.
  const graphCredential: TokenCredential = localGraph ? emulatorCredential : { getToken: (scopes, options) => deps.credential().getToken(scopes, options) };
  const providers = {
    symmetric: symmetricProvider,
    'entra-app-password': graphAppPasswordProvider({
      endpoint: config.graph.endpoint,
      credential: graphCredential,
      agent: httpsAgent(readCa(config.graph.caFile)),
    }),
  };
  const rotations = cosmosRotationStore(() => cosmos.container('rotations'), ready);
  const idempotency = cosmosIdempotencyStore(() => cosmos.container('idempotencyKeys'), ready);
  const secrets = keyVaultSecretStore((vault) => keyVault.secrets(vault));
  const owner = leaseOwner();
  const settings = { vaults: config.vaults, ...config.renewal };
  return {
    service: (log) => new RenewalService({ rotations, secrets, providers, idempotency, notifier, clock, faults, log, settings, owner: owner() }),
  };
}

/** The one Key Vault event intake: every life cycle's handler, asked in turn. */
export interface EventsRoot {
  /** One per invocation (it logs to its context). */
  intake(log: Logger): KeyVaultEventIntake;
}

function buildEvents(config: Config, deps: { cosmos: CosmosHandle; clock: Clock }, handlers: ((log: Logger) => KeyVaultEventHandler)[]): EventsRoot {
  const deadLetters = cosmosDeadLetterStore(() => deps.cosmos.container('deadLetters'), () => deps.cosmos.ensureSchema(), deps.clock);
  // Customers' vaults (by name) too: a BYOK key's KeyNearExpiry asks its admins for a new key.
  const settings = { vaults: { ...config.customerVaults, ...config.vaults }, eventVaultNames: config.renewal.eventVaultNames };
  return {
    intake(log) {
      const intake = new KeyVaultEventIntake({ deadLetters, clock: deps.clock, log, settings });
      for (const handler of handlers) intake.register(handler(log));
      return intake;
    },
  };
}

/** The job kinds whose due work the resume timer advances. */
export interface JobsRoot {
  /** One per invocation (it logs to its context). */
  registry(log: Logger): JobRegistry;
}

function buildJobs(config: Config, kinds: ((log: Logger) => ResumableKind)[]): JobsRoot {
  return {
    registry(log) {
      const registry = new JobRegistry(log, { budgetMs: config.jobs.resumeBudgetSeconds * 1000 });
      for (const kind of kinds) registry.register(kind(log));
      return registry;
    },
  };
}

/** `make()` on the first call, then the same value: how the root builds SDK clients on first use. */
function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

function build(env: NodeJS.ProcessEnv): Root {
  const config = loadConfig(env);
  // One managed-identity credential (one token cache) for every client that needs it; built on first use.
  const credential = lazy((): TokenCredential => {
    const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
    return new DefaultAzureCredential();
  });
  const keyVaultCa = readCa(config.keyVaultCaFile);
  const keyVault = createKeyVaultClients(config.vaults, {
    emulatorCa: keyVaultCa,
    credential,
    localPrincipal: config.localPrincipal,
    homeTenantId: config.tenantsByok.homeTenantId,
    crossTenantClientId: config.tenantsByok.crossTenantClientId,
  });
  const cosmos = createCosmos({ ...config.cosmos, ca: readCa(config.cosmos.caFile), credential });
  // A blob endpoint URL means the managed identity (Azure); otherwise a connection string (Azurite).
  const blobs = lazy(() => {
    const { BlobServiceClient } = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
    return /^https:\/\//.test(config.storageConnection)
      ? new BlobServiceClient(config.storageConnection, credential())
      : BlobServiceClient.fromConnectionString(config.storageConnection);
  });
  const notifier = eventGridNotifier({ ...config.eventGrid, ca: readCa(config.eventGrid.caFile), credential });
  const clock = config.clockUrl ? emulatorClock(config.clockUrl, httpsAgent(keyVaultCa)) : systemClock;

  const healthChecks: DependencyCheck[] = [
    storageHealth(blobs),
    cosmosHealth(cosmos),
    ...keyVault.vaultAliases().map((vaultAlias) => keyVaultHealth(keyVault, vaultAlias)),
    // Customers' vaults: reachable or not, never a reason to report the app unhealthy.
    ...Object.entries(config.customerVaults).map(([name, url]) => customerVaultHealth(name, url, httpsAgent(keyVaultCa))),
  ];

  // The schema is created at start, just after module load (the timer keeps no process
  // alive, and load itself stays registration only); a Cosmos that is not up yet is retried on first use.
  setTimeout(() => {
    cosmos.ensureSchema().catch((e: Error) => consoleLogger.warn(`Cosmos DB schema not ready yet: ${e.message.split('\n')[0]}`));
  }, 0).unref();

  const keys = vaultKeys(keyVault);
  // The one key policy store every key creation consults (signing, tenant keys, escrow, KEKs).
  const policies = cosmosKeyPolicyStore(() => cosmos.container('keyPolicies'), () => cosmos.ensureSchema());
  const signing = buildSigning(config, { clients: keyVault, keys }, cosmos, clock, policies);
  const faults = armedFaults(config.faults);
  const renewal = buildRenewal(config, { keyVault, cosmos, notifier, clock, faults, credential });
  // Renewal first (secret events), then signing (key events); tenant keys and key sets join here.
  const signingEvents = signingKeyEventHandler(signing.service);
  // Locally the same local credential as the vaults (the emulator's directory); in Azure the managed identity.
  const roleAssignments = lazy(() =>
    armRoleAssignments({ endpoint: config.arm.endpoint, credential: keyVault.local ? localCredential(config.localPrincipal) : credential(), ca: readCa(config.arm.caFile) }),
  );
  const tenantOps = buildTenantOps(config, { keyVault, keys, cosmos, blobs, notifier, clock, faults, policies });
  // A BYOK tenant's lost access opens an incident (issue 15); `incidents` is built below.
  const accessLost = (log: Logger, input: { tenantId: string; kid: string; vaultUrl: string; lostAt: string }) => accessLostIncident(incidents, log, input);
  const tenants = buildTenants(config, { keyVault, keys, cosmos, clock, faults, notifier, policies, roleAssignments, escrow: tenantOps.escrow, accessLost });
  let jobQueue: JobQueue | undefined;
  const queue = () => (jobQueue ??= buildJobQueue(config, credential));
  const keySets = buildKeySets(config, { keyVault, keys, cosmos, clock, policies: tenants.policies, queue, notifier, blobs });
  const events = buildEvents(config, { cosmos, clock }, [
    (log) => renewal.service(log).eventHandler(),
    () => signingEvents,
    () => tenants.eventHandler,
    () => keySets.eventHandler,
  ]);
  const playbooks = buildPlaybooks(config, { keyVault, vaultKeys: keys, cosmos, tenants, signing, renewal, roleAssignments, keySets });
  const incidents = buildIncidents(config, { keyVault, cosmos, notifier, clock, faults, ...(config.playbooks.enabled ? { playbooks } : {}) });
  const jobs = buildJobs(config, [
    (log) => renewal.service(log).resumable(),
    (log) => tenants.resumable(log),
    (log) => tenants.revokeResumable(log),
    (log) => tenants.noticeResumable(log),
    (log) => tenants.createResumable(log),
    (log) => incidents.resumable(log),
    ...tenantOps.resumable,
    (log) => keySets.resumable(log),
  ]);

  return {
    config, clock, faults, keyVault, vaultKeys: keys, cosmos, notifier, healthChecks, signing, renewal, events, jobs, tenants, tenantOps, incidents, keySets,
    // `blobs` is a getter: the Blob client (and its SDK) is built when first asked for.
    get blobs() {
      return blobs();
    },
    get jobQueue() {
      return queue();
    },
    get roleAssignments() {
      return roleAssignments();
    },
  };
}

function buildJobQueue(config: Config, credential: () => TokenCredential): JobQueue {
  const { connectionString, queueServiceUri } = config.queue;
  if (!connectionString && !queueServiceUri) {
    throw new KeyturnError('CONFIG_INVALID', 'No job queue: set KEYTURN_QUEUE (a connection string) or KEYTURN_QUEUE__queueServiceUri', { settings: ['KEYTURN_QUEUE'] });
  }
  return storageJobQueue({ connectionString, queueServiceUri, credential });
}

let instance: Root | undefined;

export function root(): Root {
  instance ??= build(process.env);
  return instance;
}

/** Function files log through the invocation's context (func, App Insights); re-exported so they need no adapter import. */
export { contextLogger } from './adapters/logger';
export type { KeySetsRoot } from './roots/keySets';
