/**
 * Life cycle 5: encryption key sets (envelope encryption, keys, batch jobs, export and
 * abandon). Built once per process: the unwrapped-key cache, the use reservations and
 * the set cache are per process by design (one unwrap per data key per TTL).
 */
import { leaseOwner } from './owner';
import type { Config } from '../config';
import type { CosmosHandle } from '../adapters/cosmos';
import type { KeyVaultClients } from '../adapters/keyVault/clients';
import { cosmosEncryptionKeySetStore } from '../adapters/keySets/cosmosEncryptionKeySets';
import type { Clock, JobQueue, Logger, VaultKeys } from '../ports';
import { cosmosBatchJobStore } from '../adapters/cosmosBatchJobs';
import { consoleLogger } from '../adapters/logger';
import { BatchJobs } from '../services/jobs/batchJobs';
import type { ResumableKind } from '../services/jobs/registry';
import { type KeySetJobDeps, reencryptKind, startReencrypt } from '../services/keySets/reencrypt';
import type { BatchJob } from '../domain/batchJob';
import type { BlobServiceClient } from '@azure/storage-blob';
import type { Notifier } from '../ports';
import { blobExportFiles } from '../adapters/keySets/blobExportFiles';
import { abandonKind, startAbandon } from '../services/keySets/abandon';
import { type ExportDeps, approveExport, importKeys, requestExport } from '../services/keySets/exportImport';
import { currentKek, replaceLostKek } from '../services/keySets/kek';
import { keySetKekEventHandler, rewrapKeySet } from '../services/keySets/rewrap';
import type { KeyVaultEventHandler } from '../services/events/ports';
import { DataKeyCache, UseReservations } from '../services/keySets/dataKeys';
import { KeySetService, SetCache } from '../services/keySets/keySetService';
import type { KeyPolicyStore } from '../services/tenants/ports';

export interface KeySetsRoot {
  /** One per invocation (it logs to its context); the caches behind it are the process's. */
  service(log: Logger): KeySetService;
  /** Key Vault unwraps of data keys this process made (tests, bench). */
  unwraps(): number;
  /** The batch-job kernel with the key-set kinds registered (one per invocation). */
  jobs(log: Logger): BatchJobs;
  reencrypt(log: Logger, setId: string, batchSize: number): Promise<BatchJob>;
  /** Stalled batch jobs, for the resume timer. */
  resumable(log: Logger): ResumableKind;
  rewrap(log: Logger, setId: string): ReturnType<typeof rewrapKeySet>;
  /** KeyNearExpiry/KeyExpired of a set's KEK → rewrap. */
  eventHandler: KeyVaultEventHandler;
  requestExport(log: Logger, setId: string, input: Parameters<typeof requestExport>[3]): ReturnType<typeof requestExport>;
  approveExport(log: Logger, setId: string, exportId: string, input: Parameters<typeof approveExport>[4]): ReturnType<typeof approveExport>;
  /** Read only: 409 KEK_UNAVAILABLE when the KEK is gone. */
  kek(log: Logger, setId: string): ReturnType<typeof currentKek>;
  /** POST …/kek/replace: a new Keyturn-owned KEK for one that is gone. */
  replaceKek(log: Logger, setId: string): ReturnType<typeof replaceLostKek>;
  importKeys(log: Logger, setId: string, input: Parameters<typeof importKeys>[3]): ReturnType<typeof importKeys>;
  abandon(log: Logger, setId: string, input: { confirm: string; reason: string; batchSize: number }): Promise<BatchJob>;
  /** Dual control's identity rules (shared/http/identity.ts). */
  identity: { trustEasyAuthHeader: boolean; localStack: boolean };
  /** Every set's id, a page at a time (the playbooks' `all: true`). */
  listSetIds(page: { maxItems: number; continuation?: string }): Promise<{ setIds: string[]; continuation?: string }>;
}

export interface KeySetsDeps {
  keyVault: KeyVaultClients;
  keys: VaultKeys;
  cosmos: CosmosHandle;
  clock: Clock;
  policies: KeyPolicyStore;
  /** The job queue, built on first use (KEYTURN_QUEUE). */
  queue: () => JobQueue;
  notifier: Notifier;
  blobs: () => BlobServiceClient;
}

/** The queue trigger's maxDequeueCount (host.json extensions.queues): the last delivery marks a job failed. */
export const MAX_DEQUEUE_COUNT = 5;


export function buildKeySets(config: Config, deps: KeySetsDeps): KeySetsRoot {
  const ready = () => deps.cosmos.ensureSchema();
  const store = cosmosEncryptionKeySetStore(() => deps.cosmos.container('keySets'), () => deps.cosmos.container('keySetItems'), ready);
  const cache = new DataKeyCache(deps.keys, config.keySets.dataKeyTtlSeconds * 1000, Date.now, (setUid, keyId) =>
    consoleLogger.info('Key set: data key unwrapped by Key Vault', { setUid, keyId, pid: process.pid }),
  );
  const uses = new UseReservations(store);
  const sets = new SetCache();
  const settings = {
    vaultUrl: deps.keyVault.vaultUrl(config.keySets.vault),
    kekBits: config.keySets.kekBits,
    primaryTtlMs: config.keySets.primaryTtlSeconds * 1000,
    unavailableAfterMs: config.keySets.unavailableAfterMinutes * 60_000,
  };
  const checkedVaultUrl = (raw: string, field: string) => deps.keyVault.checkedUrl(raw, field);
  const service = (log: Logger) => new KeySetService({ store, keys: deps.keys, policies: deps.policies, clock: deps.clock, log, cache, uses, sets, settings, checkedVaultUrl });
  const jobStore = cosmosBatchJobStore(() => deps.cosmos.container('batchJobs'), ready);
  const owner = leaseOwner();
  const jobDeps: KeySetJobDeps = { store, clock: deps.clock, service, primaryTtlMs: settings.primaryTtlMs };
  const batchSettings = { queue: config.keySets.batchQueue, claimMs: config.keySets.batchClaimSeconds * 1000, maxDequeueCount: MAX_DEQUEUE_COUNT };
  // Resolved at the first enqueue: without KEYTURN_QUEUE only starting a job fails (CONFIG_INVALID).
  const queue: JobQueue = { enqueue: (name, job, options) => deps.queue().enqueue(name, job, options) };
  const jobs = (log: Logger) =>
    new BatchJobs({ store: jobStore, queue, clock: deps.clock, log, settings: batchSettings, owner: owner() }).register(reencryptKind(jobDeps)).register(abandonKind(abandonDeps));
  const abandonDeps = { ...jobDeps, keys: deps.keys, notifier: deps.notifier };
  const rewrapDeps = { store, keys: deps.keys, clock: deps.clock, service };
  const exportDeps: ExportDeps = {
    store, keys: deps.keys, clock: deps.clock, service, files: blobExportFiles(deps.blobs), minWaitMs: config.keySets.exportMinWaitMinutes * 60_000,
  };
  const vaultUrlOf = (alias: string) => (deps.keyVault.vaultAliases().includes(alias) ? deps.keyVault.vaultUrl(alias) : undefined);
  return {
    service,
    unwraps: () => cache.unwraps,
    jobs,
    reencrypt: (log, setId, batchSize) => startReencrypt(jobs(log), jobDeps, log, setId, batchSize),
    resumable: (log) => jobs(log).resumable(),
    rewrap: (log, setId) => rewrapKeySet(rewrapDeps, log, setId),
    eventHandler: keySetKekEventHandler({ ...rewrapDeps, vaultUrlOf }),
    requestExport: (log, setId, input) => requestExport(exportDeps, log, setId, input),
    approveExport: (log, setId, exportId, input) => approveExport(exportDeps, log, setId, exportId, input),
    kek: (log, setId) => currentKek(exportDeps, log, setId),
    replaceKek: (log, setId) => replaceLostKek(exportDeps, log, setId),
    importKeys: (log, setId, input) => importKeys(exportDeps, log, setId, input),
    abandon: (log, setId, input) => startAbandon(jobs(log), abandonDeps, log, setId, input),
    identity: { trustEasyAuthHeader: config.signing.trustEasyAuthHeader, localStack: config.localStack },
    async listSetIds(page) {
      const listed = await store.listSets(page);
      return { setIds: listed.items.map((s) => s.doc.setId), ...(listed.continuation ? { continuation: listed.continuation } : {}) };
    },
  };
}
