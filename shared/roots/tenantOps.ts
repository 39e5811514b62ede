/**
 * Composition of the tenant-key operations of part 2: backup, restore, escrow and
 * export (stores, the Blob adapter, the escrow key in Keyturn's tenant vault, the job
 * kinds for the resume timer). `shared/root.ts` calls `buildTenantOps` once.
 */
import type { KeyPolicyStore } from '../services/tenants/ports';
import { leaseOwner } from './owner';
import type { BlobServiceClient } from '@azure/storage-blob';
import type { Config } from '../config';
import type { Clock, FaultPoints, Logger, Notifier, VaultKeys } from '../ports';
import type { KeyVaultClients } from '../adapters/keyVault/clients';
import type { CosmosHandle } from '../adapters/cosmos';
import { azureBlobObjects } from '../adapters/tenants/blobObjects';
import { cosmosBackupStore, cosmosExportStore, cosmosRestoreStore } from '../adapters/tenants/cosmosTenantOps';
import { cosmosTenantStore } from '../adapters/tenants/cosmosTenants';
import { StepRunner } from '../services/jobs/runner';
import { type ResumableKind, resumable } from '../services/jobs/registry';
import { BackupService } from '../services/tenants/backups';
import { EscrowService } from '../services/tenants/escrow';
import { ExportService } from '../services/tenants/exports';
import { RestoreService } from '../services/tenants/restore';

/** The dedicated escrow key in Keyturn's tenant vault (used by nothing but export). */
export const ESCROW_KEY_NAME = 'keyturn-tenant-escrow';

export interface TenantOpsRoot {
  /** One per process: TenantService keeps an escrow copy of each generated key through it. */
  escrow: EscrowService;
  /** One per invocation (they log to its context). */
  backups(log: Logger): BackupService;
  restore(log: Logger): RestoreService;
  exports(log: Logger): ExportService;
  /** The restore and export job kinds, for the resume timer. */
  resumable: ((log: Logger) => ResumableKind)[];
  trustEasyAuthHeader: boolean;
  localStack: boolean;
}

export function buildTenantOps(
  config: Config,
  deps: { keyVault: KeyVaultClients; keys: VaultKeys; cosmos: CosmosHandle; blobs: () => BlobServiceClient; notifier: Notifier; clock: Clock; faults: FaultPoints; policies: KeyPolicyStore },
): TenantOpsRoot {
  const ready = () => deps.cosmos.ensureSchema();
  const tenants = cosmosTenantStore(() => deps.cosmos.container('tenants'), ready);
  const policies = deps.policies;
  const backupStore = cosmosBackupStore(() => deps.cosmos.container('tenantBackups'), ready);
  const restores = cosmosRestoreStore(() => deps.cosmos.container('tenantRestores'), ready);
  const exportStore = cosmosExportStore(() => deps.cosmos.container('tenantExports'), ready);
  const blobs = azureBlobObjects(deps.blobs);
  const escrow = new EscrowService({
    keys: deps.keys,
    blobs,
    policies,
    settings: { vaultUrl: deps.keyVault.vaultUrl(config.tenants.vault), keyName: ESCROW_KEY_NAME, keyBits: config.tenants.keyBits },
  });
  const owner = leaseOwner();
  const customerVaultNames = new Map(Object.entries(config.customerVaults).map(([name, url]) => [url, name]));
  const vaultNameOf = (url: string) => customerVaultNames.get(url.replace(/\/$/, ''));
  const base = (log: Logger) => ({ tenants, keys: deps.keys, blobs, backups: backupStore, notifier: deps.notifier, clock: deps.clock, log, vaultNameOf });
  const jobs = (log: Logger) => ({
    runner: new StepRunner({ clock: deps.clock, faults: deps.faults, log, owner: owner() }),
    leaseMs: config.renewal.leaseSeconds * 1000,
    maxAttempts: config.renewal.maxAttempts,
  });
  const restore = (log: Logger) => new RestoreService({ ...base(log), ...jobs(log), restores });
  // Not `exports`: a local of that name hides CommonJS's `exports` in the compiled module.
  const exportService = (log: Logger) =>
    new ExportService({
      ...base(log),
      ...jobs(log),
      exports: exportStore,
      escrow,
      settings: { expiryMs: config.tenantOps.exportExpiryHours * 3_600_000, minWaitMs: config.tenantOps.exportMinWaitMinutes * 60_000 },
    });
  return {
    escrow,
    backups: (log) => new BackupService(base(log)),
    restore,
    exports: exportService,
    resumable: [(log) => resumable(jobs(log).runner, restore(log).jobKind), (log) => resumable(jobs(log).runner, exportService(log).jobKind)],
    trustEasyAuthHeader: config.signing.trustEasyAuthHeader,
    localStack: config.localStack,
  };
}
