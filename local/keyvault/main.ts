/**
 * Stand-alone Key Vault emulator (Keyturn's vault and the customer's `contoso-byok`,
 * with RBAC as in `npm start`) plus the local Event Grid it publishes into:
 * `npm run emulator:keyvault` (node dist/local/keyvault/main.js). Role assignments
 * are the seeded ones (no ARM endpoint here; `npm run stack` has one).
 *
 * Env: KEYVAULT_PORT (8443), KEYVAULT_BYOK_PORT (8445), EVENTGRID_PORT (8444), KEYVAULT_DATA_DIR
 * (.keyturn/keyvault; empty = in memory), KEYVAULT_TLS_DIR (.keyturn/keyvault),
 * KEYVAULT_FAULTS / KEYVAULT_FAULTS_SEED, EVENTGRID_SUBSCRIPTIONS (JSON list).
 * Both servers share one local CA: {KEYVAULT_TLS_DIR}/ca.pem.
 */
import { join, resolve } from 'node:path';
import { startEventGrid, subscriptionsFromEnv } from '../eventgrid';
import { assertPortFree, portSetting } from '../ports';
import { ensureLocalTls } from '../tls';
import { Authorization, CUSTOMER_VAULT, DEFAULT_SUBSCRIPTION, startKeyVaultEmulators } from './index';

async function main(): Promise<void> {
  // The same folders as `npm start`, whatever the current directory: one vault, one CA.
  const keyturnDir = join(resolve(__dirname, '..', '..', '..'), '.keyturn', 'keyvault');
  const tlsDir = process.env.KEYVAULT_TLS_DIR || keyturnDir;
  const dataDir = process.env.KEYVAULT_DATA_DIR ?? join(keyturnDir, 'data');
  const gridPort = portSetting(process.env, 'EVENTGRID_PORT', 8444);
  const vaultPort = portSetting(process.env, 'KEYVAULT_PORT', 8443);
  const byokPort = portSetting(process.env, 'KEYVAULT_BYOK_PORT', 8445);
  await assertPortFree(byokPort, 'KEYVAULT_BYOK_PORT');
  await assertPortFree(gridPort, 'EVENTGRID_PORT');
  await assertPortFree(vaultPort, 'KEYVAULT_PORT');
  const tls = await ensureLocalTls(tlsDir);
  const grid = await startEventGrid({ port: gridPort, tls, subscriptions: subscriptionsFromEnv(process.env) });
  const group = await startKeyVaultEmulators({
    vaults: [
      { vaultName: 'keyturn-local', port: vaultPort, purgeProtection: true, ...(dataDir ? { dataDir } : {}) },
      { vaultName: CUSTOMER_VAULT, port: byokPort, purgeProtection: true, ...(dataDir ? { dataDir: join(dataDir, '..', CUSTOMER_VAULT) } : {}) },
    ],
    tlsDir,
    authorization: new Authorization(DEFAULT_SUBSCRIPTION, dataDir ? join(dataDir, '..', 'role-assignments.json') : undefined),
    events: { publish: (topic, events) => grid.publish(topic, events) },
    log: (line) => console.log(line),
  });
  const vault = group.vault('keyturn-local');
  for (const v of group.vaults) console.log(`[keyvault] vault ${v.vaultName} at ${v.url}; system topic ${v.topic}`);
  console.log(`[keyvault] Event Grid at ${grid.url}`);
  console.log(`[keyvault] clients trust ${vault.caFile}; move the clock with PUT ${vault.url}/management/vault/time/all?seconds=N`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void Promise.allSettled([group.close(), grid.close()]).then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`[keyvault] failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
