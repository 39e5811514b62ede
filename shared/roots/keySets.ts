/**
 * Life cycle 5: encryption key sets (envelope encryption, keys, batch jobs, export and
 * abandon). Built once per process: the unwrapped-key cache, the use reservations and
 * the set cache are per process by design (one unwrap per data key per TTL).
 */
import type { Config } from '../config';
import type { CosmosHandle } from '../adapters/cosmos';
import type { KeyVaultClients } from '../adapters/keyVault/clients';
import { cosmosEncryptionKeySetStore } from '../adapters/keySets/cosmosEncryptionKeySets';
import type { Clock, Logger, VaultKeys } from '../ports';
import { DataKeyCache, UseReservations } from '../services/keySets/dataKeys';
import { KeySetService, SetCache } from '../services/keySets/keySetService';
import type { KeyPolicyStore } from '../services/tenants/ports';

export interface KeySetsRoot {
  /** One per invocation (it logs to its context); the caches behind it are the process's. */
  service(log: Logger): KeySetService;
  /** Key Vault unwraps of data keys this process made (tests, bench). */
  unwraps(): number;
}

export interface KeySetsDeps {
  keyVault: KeyVaultClients;
  keys: VaultKeys;
  cosmos: CosmosHandle;
  clock: Clock;
  policies: KeyPolicyStore;
}

export function buildKeySets(config: Config, deps: KeySetsDeps): KeySetsRoot {
  const ready = () => deps.cosmos.ensureSchema();
  const store = cosmosEncryptionKeySetStore(() => deps.cosmos.container('keySets'), () => deps.cosmos.container('keySetItems'), ready);
  const cache = new DataKeyCache(deps.keys, config.keySets.dataKeyTtlSeconds * 1000);
  const uses = new UseReservations(store);
  const sets = new SetCache();
  const settings = {
    vaultUrl: deps.keyVault.vaultUrl(config.keySets.vault),
    kekBits: config.keySets.kekBits,
    primaryTtlMs: config.keySets.primaryTtlSeconds * 1000,
    unavailableAfterMs: config.keySets.unavailableAfterMinutes * 60_000,
  };
  const checkedVaultUrl = (raw: string, field: string) => deps.keyVault.checkedUrl(raw, field);
  return {
    service: (log) => new KeySetService({ store, keys: deps.keys, policies: deps.policies, clock: deps.clock, log, cache, uses, sets, settings, checkedVaultUrl }),
    unwraps: () => cache.unwraps,
  };
}
