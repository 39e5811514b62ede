/**
 * Health checks of the dependencies, one per kind, built by the composition root:
 * each makes the smallest real call its SDK offers. `checkHealth` runs them.
 */
import type { BlobServiceClient } from '@azure/storage-blob';
import type { DependencyCheck } from '../services/health';
import type { CosmosHandle } from './cosmos';
import type { KeyVaultClients } from './keyVault/clients';
import { type AgentSource, https } from './tlsAgent';

/** `blobs` may be a getter: the client is then built at the first check (the root builds SDK clients on first use). */
export const storageHealth = (blobs: BlobServiceClient | (() => BlobServiceClient)): DependencyCheck => ({
  name: 'storage',
  check: async () => void (await (typeof blobs === 'function' ? blobs() : blobs).getProperties()),
});

export const cosmosHealth = (cosmos: CosmosHandle): DependencyCheck => ({
  name: 'cosmos',
  check: async () => {
    await cosmos.ensureSchema();
    await cosmos.database.read();
  },
});

/** One page of one secret's properties: reachable and Keyturn's identity may list. */
export const keyVaultHealth = (clients: KeyVaultClients, vaultAlias: string): DependencyCheck => ({
  name: `keyvault:${vaultAlias}`,
  check: async () => void (await clients.secrets(vaultAlias).listPropertiesOfSecrets().byPage({ maxPageSize: 1 }).next()),
});

/**
 * A customer's own vault (BYOK): reachable when it answers an anonymous request with
 * Key Vault's 401 Bearer challenge. No token is sent (the app has no role there, and
 * its identity has no business at a vault it is not using); never required, so the
 * report never fails because of a customer's vault.
 */
export const customerVaultHealth = (vaultName: string, vaultUrl: string, agent: AgentSource): DependencyCheck => ({
  name: `keyvault:${vaultName}`,
  required: false,
  check: () =>
    new Promise<void>((resolve, reject) => {
      const request = https().get(new URL(`${vaultUrl}/secrets?api-version=7.5&maxresults=1`), { agent: agent() }, (res) => {
        res.resume();
        const challenge = String(res.headers['www-authenticate'] ?? '');
        if (res.statusCode === 401 && /^Bearer\s/i.test(challenge)) resolve();
        // The shape errorFacts reads (a status), so the report says `status N`.
        else reject(Object.assign(new Error(`vault '${vaultName}' answered ${res.statusCode} without a Bearer challenge`), { statusCode: res.statusCode }));
      });
      request.on('error', reject);
      request.setTimeout(4000, () => request.destroy(Object.assign(new Error(`vault '${vaultName}' timed out`), { code: 'ETIMEDOUT' })));
    }),
});
