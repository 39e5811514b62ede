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
import { type KeyVaultClients, createKeyVaultClients } from './adapters/keyVaultClients';
import { httpsAgent, readCa } from './adapters/tlsAgent';
import type { Clock, FaultPoints, Notifier } from './ports';
import type { DependencyCheck } from './services/health';

export interface Root {
  config: Config;
  clock: Clock;
  faults: FaultPoints;
  keyVault: KeyVaultClients;
  cosmos: CosmosHandle;
  blobs: BlobServiceClient;
  notifier: Notifier;
  healthChecks: DependencyCheck[];
}

function build(env: NodeJS.ProcessEnv): Root {
  const config = loadConfig(env);
  const keyVaultCa = readCa(config.keyVaultCaFile);
  const keyVault = createKeyVaultClients(config.vaults, { emulatorCa: keyVaultCa });
  const cosmos = createCosmos({ ...config.cosmos, ca: readCa(config.cosmos.caFile) });
  const blobs = BlobServiceClient.fromConnectionString(config.storageConnection);
  const notifier = eventGridNotifier({ ...config.eventGrid, ca: readCa(config.eventGrid.caFile) });
  const clock = config.clockUrl ? emulatorClock(config.clockUrl, httpsAgent(keyVaultCa)) : systemClock;

  const healthChecks: DependencyCheck[] = [
    { name: 'storage', check: async () => void (await blobs.getProperties()) },
    { name: 'cosmos', check: async () => void (await cosmos.database.read()) },
    ...keyVault.vaultKeys().map((vault) => ({
      name: `keyvault:${vault}`,
      check: async () => void (await keyVault.secrets(vault).listPropertiesOfSecrets().byPage({ maxPageSize: 1 }).next()),
    })),
  ];

  return { config, clock, faults: armedFaults(config.faults), keyVault, cosmos, blobs, notifier, healthChecks };
}

let instance: Root | undefined;

export function root(): Root {
  instance ??= build(process.env);
  return instance;
}
