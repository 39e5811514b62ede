/**
 * The composition root: settings are validated and SDK clients built once per
 * process, then handed to adapters and services. Function files call `root()` at
 * load, so a bad setting stops start-up with a message naming it.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { type Config, loadConfig } from './config';
import { type CosmosHandle, createCosmos } from './adapters/cosmos';
import { emulatorClock, systemClock } from './adapters/clocks';
import { eventGridNotifier } from './adapters/eventGridNotifier';
import { armedFaults } from './adapters/faults';
import { type KeyVaultClients, createKeyVaultClients, emulatorCredential } from './adapters/keyVaultClients';
import { httpsAgent, readCa } from './adapters/tlsAgent';
import { cosmosKeySets } from './adapters/signing/cosmosKeySets';
import { keyVaultSigningKeys } from './adapters/signing/keyVaultSigningKeys';
import { consoleLogger } from './adapters/logger';
import type { Clock, FaultPoints, Logger, Notifier } from './ports';
import type { DependencyCheck } from './services/health';
import { KeySetPublisher } from './services/signing/publication';
import { SigningKeyService, type SigningSettings, SingleFlight, signingSettings } from './services/signing/signingKeys';
import { TokenIssuer } from './services/signing/tokens';
import { ALG_OF } from './domain/signingKeys';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { cosmosDeadLetterStore, cosmosRotationStore } from './adapters/renewal/cosmosRenewalStores';
import { graphAppPasswordProvider } from './adapters/renewal/graphAppPasswordProvider';
import { keyVaultSecretStore } from './adapters/renewal/keyVaultSecretStore';
import { symmetricProvider } from './adapters/renewal/symmetricProvider';
import { signingKeyEventHandler } from './services/signing/keyEvents';
import { RenewalService } from './services/renewal/renewalService';
import { KeyVaultEventIntake } from './services/events/intake';
import type { KeyVaultEventHandler } from './services/events/ports';
import { JobRegistry, type ResumableKind } from './services/jobs/registry';

export interface Root {
  config: Config;
  clock: Clock;
  faults: FaultPoints;
  keyVault: KeyVaultClients;
  cosmos: CosmosHandle;
  blobs: BlobServiceClient;
  notifier: Notifier;
  healthChecks: DependencyCheck[];
  signing: SigningRoot;
  renewal: RenewalRoot;
  events: EventsRoot;
  jobs: JobsRoot;
}

/** Life cycle 4: signing-key rollover, JWKS and token signing. */
export interface SigningRoot {
  settings: SigningSettings;
  jwksMaxAgeSeconds: number;
  jwksUri: string;
  /** Services are cheap; one per invocation so they log to its context. */
  service(log: Logger): SigningKeyService;
  tokens(log: Logger): TokenIssuer;
  /** One per process: it caches the rendered key set. Read-only (anonymous requests never create keys). */
  publisher: KeySetPublisher;
}

function buildSigning(config: Config, keyVault: KeyVaultClients, cosmos: CosmosHandle, clock: Clock): SigningRoot {
  const settings = signingSettings(config.signing);
  const keys = keyVaultSigningKeys(keyVault, { vault: settings.vault, issuer: settings.issuer });
  const sets = cosmosKeySets(cosmos.container('signingKeys'), () => cosmos.ensureSchema());
  const bootstrap = new SingleFlight(); // one bootstrap in flight per process
  const service = (log: Logger) => new SigningKeyService({ keys, sets, clock, log, settings, bootstrap });
  return {
    settings,
    jwksMaxAgeSeconds: config.signing.jwksMaxAgeSeconds,
    jwksUri: config.signing.jwksUri,
    service,
    tokens: (log) => new TokenIssuer({ signingKeys: service(log), keys, clock, issuer: settings.issuer, log }),
    publisher: new KeySetPublisher({ signingKeys: service(consoleLogger), defaultAlg: ALG_OF[settings.keyType] }),
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
  const graphCredential: TokenCredential = localGraph ? emulatorCredential : deps.credential();
  const providers = {
    symmetric: symmetricProvider,
    'entra-app-password': graphAppPasswordProvider({
      endpoint: config.graph.endpoint,
      credential: graphCredential,
      agent: httpsAgent(readCa(config.graph.caFile)),
    }),
  };
  const rotations = cosmosRotationStore(cosmos.container('rotations'), ready);
  const secrets = keyVaultSecretStore((vault) => keyVault.secrets(vault));
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const settings = { vaults: config.vaults, ...config.renewal };
  return {
    service: (log) => new RenewalService({ rotations, secrets, providers, notifier, clock, faults, log, settings, owner }),
  };
}

/** The one Key Vault event intake: every life cycle's handler, asked in turn. */
export interface EventsRoot {
  /** One per invocation (it logs to its context). */
  intake(log: Logger): KeyVaultEventIntake;
}

function buildEvents(config: Config, deps: { cosmos: CosmosHandle; clock: Clock }, handlers: ((log: Logger) => KeyVaultEventHandler)[]): EventsRoot {
  const deadLetters = cosmosDeadLetterStore(deps.cosmos.container('deadLetters'), () => deps.cosmos.ensureSchema());
  const settings = { vaults: config.vaults, eventVaultNames: config.renewal.eventVaultNames };
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

function buildJobs(kinds: ((log: Logger) => ResumableKind)[]): JobsRoot {
  return {
    registry(log) {
      const registry = new JobRegistry(log);
      for (const kind of kinds) registry.register(kind(log));
      return registry;
    },
  };
}

function build(env: NodeJS.ProcessEnv): Root {
  const config = loadConfig(env);
  // One managed-identity credential (one token cache) for every client that needs it; built on first use.
  let identity: TokenCredential | undefined;
  const credential = () => (identity ??= new DefaultAzureCredential());
  const keyVaultCa = readCa(config.keyVaultCaFile);
  const keyVault = createKeyVaultClients(config.vaults, { emulatorCa: keyVaultCa, credential });
  const cosmos = createCosmos({ ...config.cosmos, ca: readCa(config.cosmos.caFile), credential });
  // A blob endpoint URL means the managed identity (Azure); otherwise a connection string (Azurite).
  const blobs = /^https:\/\//.test(config.storageConnection)
    ? new BlobServiceClient(config.storageConnection, credential())
    : BlobServiceClient.fromConnectionString(config.storageConnection);
  const notifier = eventGridNotifier({ ...config.eventGrid, ca: readCa(config.eventGrid.caFile), credential });
  const clock = config.clockUrl ? emulatorClock(config.clockUrl, httpsAgent(keyVaultCa)) : systemClock;

  const healthChecks: DependencyCheck[] = [
    { name: 'storage', check: async () => void (await blobs.getProperties()) },
    {
      name: 'cosmos',
      check: async () => {
        await cosmos.ensureSchema();
        await cosmos.database.read();
      },
    },
    ...keyVault.vaultKeys().map((vault) => ({
      name: `keyvault:${vault}`,
      check: async () => void (await keyVault.secrets(vault).listPropertiesOfSecrets().byPage({ maxPageSize: 1 }).next()),
    })),
  ];

  // The schema is created at start; a Cosmos that is not up yet is retried on first use.
  cosmos.ensureSchema().catch((e: Error) => consoleLogger.warn(`Cosmos DB schema not ready yet: ${e.message.split('\n')[0]}`));

  const signing = buildSigning(config, keyVault, cosmos, clock);
  const faults = armedFaults(config.faults);
  const renewal = buildRenewal(config, { keyVault, cosmos, notifier, clock, faults, credential });
  // Renewal first (secret events), then signing (key events); tenant keys and key sets join here.
  const signingEvents = signingKeyEventHandler(signing.service);
  const events = buildEvents(config, { cosmos, clock }, [(log) => renewal.service(log).eventHandler(), () => signingEvents]);
  const jobs = buildJobs([(log) => renewal.service(log).resumable()]);

  return { config, clock, faults, keyVault, cosmos, blobs, notifier, healthChecks, signing, renewal, events, jobs };
}

let instance: Root | undefined;

export function root(): Root {
  instance ??= build(process.env);
  return instance;
}
