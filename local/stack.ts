/**
 * The local stack: Azurite, the Cosmos server, the local Event Grid, the Key Vault
 * emulator (Keyturn's vault and a customer's BYOK vault, one clock, RBAC) and the
 * local ARM endpoint for role assignments, wired together (Keyturn's vault's system
 * topic is subscribed to the app's Event Grid function on the functions host). `npm run stack` runs only this, for
 * people who run `func start` themselves; `npm start` adds the local host.
 */
import { join, resolve } from 'node:path';
import { type RunningAzurite, startAzurite } from './azurite';
import { type RunningCosmos, startCosmos } from './cosmos';
import { startEventGrid, subscriptionsFromEnv } from './eventgrid';
import { startArm } from './arm';
import { Authorization, CUSTOMER_VAULT, DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION, startKeyVaultEmulators } from './keyvault';
import { assertPortFree, portSetting } from './ports';
import { PRINCIPALS } from './keyvault/principals';
import { type LocalTls, ensureLocalTls } from './tls';

export interface StackPorts {
  blob: number;
  queue: number;
  table: number;
  cosmos: number;
  keyVault: number;
  eventGrid: number;
  /** The customer's vault (`contoso-byok`); a free port when absent. */
  keyVaultByok?: number;
  /** The local ARM endpoint; a free port when absent. */
  arm?: number;
}

export const DEFAULT_PORTS: Required<StackPorts> = { blob: 10000, queue: 10001, table: 10002, cosmos: 8081, keyVault: 8443, eventGrid: 8444, keyVaultByok: 8445, arm: 8446 };

/** Every port 0: what tests and `--ephemeral` use. */
export const EPHEMERAL_PORTS: StackPorts = { blob: 0, queue: 0, table: 0, cosmos: 0, keyVault: 0, eventGrid: 0, keyVaultByok: 0, arm: 0 };

export function portsFromEnv(env: NodeJS.ProcessEnv): StackPorts {
  return {
    blob: portSetting(env, 'AZURITE_BLOB_PORT', DEFAULT_PORTS.blob),
    queue: portSetting(env, 'AZURITE_QUEUE_PORT', DEFAULT_PORTS.queue),
    table: portSetting(env, 'AZURITE_TABLE_PORT', DEFAULT_PORTS.table),
    cosmos: portSetting(env, 'COSMOS_PORT', DEFAULT_PORTS.cosmos),
    keyVault: portSetting(env, 'KEYVAULT_PORT', DEFAULT_PORTS.keyVault),
    eventGrid: portSetting(env, 'EVENTGRID_PORT', DEFAULT_PORTS.eventGrid),
    keyVaultByok: portSetting(env, 'KEYVAULT_BYOK_PORT', DEFAULT_PORTS.keyVaultByok),
    arm: portSetting(env, 'ARM_PORT', DEFAULT_PORTS.arm),
  };
}

/** The vault key the app uses for the emulated vault (KEYTURN_VAULTS). */
export const LOCAL_VAULT_KEY = 'local';

export interface StackOptions {
  ports: StackPorts;
  /** On-disk state under this folder; in memory when absent (tests). */
  dataDir?: string;
  /** Where the CA and server certificate live (default `{dataDir}/keyvault` or a temp dir). */
  tlsDir: string;
  /** The functions host that receives the vault's events. */
  hostUrl: string;
  /** Faster Event Grid retries for tests. */
  eventGridRetryDelaysMs?: number[];
  /** Role assignments per ARM list page (default 20; ARM_PAGE_SIZE). */
  armPageSize?: number;
  log?: (line: string) => void;
}

export type RunningStack = Awaited<ReturnType<typeof startStack>>;

/** The one line the stack logs when the vault's clock drops a functions host. */
export function listenerDroppedLine(url: string, reason: string): string {
  return `WARN clock: dropped the functions host at ${url.replace(/\/admin\/host\/clock$/, '')} as a clock listener (${reason}); its timers stop following clock moves until it registers again (its next clock check).`;
}

export async function startStack(options: StackOptions) {
  const log = options.log ?? (() => {});
  // The emulator logs every request; that is noise unless asked for (KEYTURN_VERBOSE=1).
  const verbose = process.env.KEYTURN_VERBOSE === '1';
  const keyVaultLog = (line: string) => {
    if (verbose || !/^keyvault: (GET|PUT|POST|PATCH|DELETE) /.test(line)) log(line);
  };
  const tls: LocalTls = await ensureLocalTls(options.tlsDir);
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    // In parallel: a slow one must not keep the others (Azurite) running past a kill deadline.
    await Promise.allSettled(closers.map((close) => close()));
  };
  try {
    const azurite: RunningAzurite = await startAzurite({
      ports: { blob: options.ports.blob, queue: options.ports.queue, table: options.ports.table },
      dataDir: options.dataDir && join(options.dataDir, 'azurite'),
      log,
    });
    closers.push(() => azurite.close());
    const cosmos: RunningCosmos = await startCosmos({
      port: options.ports.cosmos,
      tls,
      dataDir: options.dataDir && join(options.dataDir, 'cosmos'),
      log,
    });
    closers.push(() => cosmos.close());
    await assertPortFree(options.ports.eventGrid, 'EVENTGRID_PORT');
    await assertPortFree(options.ports.keyVault, 'KEYVAULT_PORT');
    await assertPortFree(options.ports.keyVaultByok ?? 0, 'KEYVAULT_BYOK_PORT');
    await assertPortFree(options.ports.arm ?? 0, 'ARM_PORT');
    const eventGrid = await startEventGrid({
      port: options.ports.eventGrid,
      tls,
      subscriptions: subscriptionsFromEnv(process.env),
      ...(options.eventGridRetryDelaysMs ? { retry: { delaysMs: options.eventGridRetryDelaysMs } } : {}),
      caForEndpoints: tls.ca,
      log,
    });
    closers.push(() => eventGrid.close());
    // One set of role assignments for both vaults and ARM, persisted with the vaults.
    const authorization = new Authorization(DEFAULT_SUBSCRIPTION, options.dataDir && join(options.dataDir, 'keyvault', 'role-assignments.json'));
    const vaults = await startKeyVaultEmulators({
      vaults: [
        // Purge protection as in infra/ (and as BYOK requires of a customer's vault).
        { vaultName: 'keyturn-local', port: options.ports.keyVault, purgeProtection: true, ...(options.dataDir ? { dataDir: join(options.dataDir, 'keyvault', 'data') } : {}) },
        { vaultName: CUSTOMER_VAULT, port: options.ports.keyVaultByok ?? 0, purgeProtection: true, ...(options.dataDir ? { dataDir: join(options.dataDir, 'keyvault', CUSTOMER_VAULT) } : {}) },
      ],
      tlsDir: options.tlsDir,
      authorization,
      events: {
        publish: (topic, events) => eventGrid.publish(topic, events),
        // Bounded: a subscriber that is down must not stall every clock move.
        settle: () => eventGrid.drain({ timeoutMs: 5000 }),
      },
      // Faults come from KEYVAULT_FAULTS / KEYVAULT_FAULTS_SEED, read by the emulator itself.
      log: keyVaultLog,
      // Loud even when the emulator's own lines are filtered: that host's timers stop following the clock.
      onListenerDropped: (url, reason) => log(listenerDroppedLine(url, reason)),
    });
    closers.push(() => vaults.close());
    const keyVault = vaults.vault('keyturn-local');
    const customerVault = vaults.vault(CUSTOMER_VAULT);
    const arm = await startArm({
      port: options.ports.arm ?? 0,
      tls,
      authorization,
      topology: { subscriptionId: DEFAULT_SUBSCRIPTION, resourceGroup: DEFAULT_RESOURCE_GROUP, vaults: vaults.vaults.map((v) => v.vaultName) },
      ...(options.armPageSize ? { pageSize: options.armPageSize } : {}),
      log: (line) => {
        if (verbose || !/^arm: (GET|PUT|POST|PATCH|DELETE) /.test(line)) log(line);
      },
    });
    closers.push(() => arm.close());

    eventGrid.addSubscription({
      name: 'keyturn-keyvault-events',
      topic: keyVault.topic,
      endpoint: `${options.hostUrl}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`,
      schema: 'EventGridSchema',
    });

    /** The app settings that point Keyturn at this stack. */
    const settings: Record<string, string> = {
      AzureWebJobsStorage: azurite.connectionString,
      KEYTURN_VAULTS: `${LOCAL_VAULT_KEY}=${keyVault.url}`,
      KEYTURN_EVENT_VAULT_NAMES: `${keyVault.vaultName}=${LOCAL_VAULT_KEY}`,
      KEYTURN_KEYVAULT_CA_FILE: tls.caFile,
      KEYTURN_CLOCK_URL: `${keyVault.url}/management/vault/time`,
      KEYTURN_CUSTOMER_VAULTS: `${customerVault.vaultName}=${customerVault.url}`,
      KEYTURN_STORAGE_CONNECTION: azurite.connectionString,
      KEYTURN_QUEUE: azurite.connectionString,
      KEYTURN_ARM_ENDPOINT: arm.url,
      KEYTURN_ARM_CA_FILE: tls.caFile,
      KEYTURN_COSMOS_ENDPOINT: cosmos.endpoint,
      KEYTURN_COSMOS_KEY: cosmos.key,
      KEYTURN_COSMOS_CA_FILE: tls.caFile,
      KEYTURN_EVENTGRID_ENDPOINT: eventGrid.customTopic.endpoint,
      KEYTURN_EVENTGRID_KEY: eventGrid.customTopic.key,
      KEYTURN_EVENTGRID_CA_FILE: tls.caFile,
      KEYTURN_ISSUER: options.hostUrl,
      KEYTURN_JWKS_URI: `${options.hostUrl}/api/.well-known/jwks.json`,
    };

    return { tls, azurite, cosmos, eventGrid, keyVault, customerVault, vaults: vaults.vaults, arm, authorization, settings, close: closeAll };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

export function describeStack(stack: RunningStack): string[] {
  return [
    `Storage (Azurite)     blob http://127.0.0.1:${stack.azurite.blobPort}  queue :${stack.azurite.queuePort}  table :${stack.azurite.tablePort}`,
    `Cosmos DB             ${stack.cosmos.endpoint}  (well-known emulator key)`,
    `Key Vault emulator    ${stack.keyVault.url}  (vault '${stack.keyVault.vaultName}', CA ${stack.tls.caFile})`,
    `  clock               ${stack.keyVault.url}/management/vault/time  (PUT .../time/all?seconds=N moves it, for every vault)`,
    `Customer vault (BYOK) ${stack.customerVault.url}  (vault '${stack.customerVault.vaultName}', same CA and clock; the app has no role there)`,
    `ARM role assignments  ${stack.arm.url}  (subscription ${DEFAULT_SUBSCRIPTION}, resource group ${DEFAULT_RESOURCE_GROUP}; AuthorizationManagementClient, api-version 2022-04-01)`,
    `Principals            ${PRINCIPALS.map((p) => `${p.name} ${p.objectId}`).join(', ')}`,
    `  tokens              unsigned JWTs whose oid names the principal (credentialFor() in local/keyvault/principals.ts)`,
    `Event Grid (local)    ${stack.eventGrid.url}  (Keyturn topic ${stack.eventGrid.customTopic.endpoint})`,
    `  deliveries          ${stack.eventGrid.url}/management/deliveries`,
  ];
}

/** `node dist/local/stack.js [--memory] [--ephemeral] [--json]` */
async function main(): Promise<void> {
  const args = new Set(process.argv.slice(2));
  const memory = args.has('--memory');
  const projectRoot = resolve(__dirname, '..', '..');
  const dataDir = memory ? undefined : join(projectRoot, '.keyturn');
  const tlsDir = process.env.KEYTURN_TLS_DIR ?? join(projectRoot, '.keyturn', 'keyvault');
  const ports = args.has('--ephemeral')
    ? EPHEMERAL_PORTS
    : portsFromEnv(process.env);
  const hostUrl = process.env.KEYTURN_HOST_URL ?? `http://127.0.0.1:${portSetting(process.env, 'PORT', 7071)}`;
  const retry = process.env.EVENTGRID_RETRY_DELAYS_MS?.split(',').map(Number);
  const stack = await startStack({
    ports,
    dataDir,
    tlsDir,
    hostUrl,
    eventGridRetryDelaysMs: retry,
    ...(process.env.ARM_PAGE_SIZE ? { armPageSize: Number(process.env.ARM_PAGE_SIZE) } : {}),
    log: (line) => console.error(line),
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await stack.close();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  if (args.has('--json')) {
    console.log(
      `KEYTURN_STACK ${JSON.stringify({
        settings: stack.settings,
        keyVault: { url: stack.keyVault.url, vaultName: stack.keyVault.vaultName, topic: stack.keyVault.topic },
        vaults: stack.vaults.map((v) => ({ url: v.url, vaultName: v.vaultName, topic: v.topic, scope: v.scope })),
        arm: { url: stack.arm.url, subscriptionId: DEFAULT_SUBSCRIPTION, resourceGroup: DEFAULT_RESOURCE_GROUP },
        eventGrid: { url: stack.eventGrid.url },
        caFile: stack.tls.caFile,
      })}`,
    );
  } else {
    console.log('Keyturn local stack is running:');
    for (const line of describeStack(stack)) console.log(`  ${line}`);
    console.log(`  Vault events go to   ${hostUrl}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`);
    console.log('Press Ctrl-C to stop.');
  }
}

if (require.main === module) {
  main().catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
