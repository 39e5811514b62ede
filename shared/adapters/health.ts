/**
 * Health checks of the dependencies, one per kind, built by the composition root:
 * each makes the smallest real call its SDK offers. `checkHealth` runs them.
 */
import type { BlobServiceClient } from '@azure/storage-blob';
import type { DependencyCheck } from '../services/health';
import type { CosmosHandle } from './cosmos';
import type { KeyVaultClients } from './keyVault/clients';

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
