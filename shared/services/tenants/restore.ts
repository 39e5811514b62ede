/**
 * Tenant-key restore on the step kernel. The request verifies the backup's SHA-256
 * first (a mismatch restores nothing), then decides by what the vault holds: a
 * soft-deleted key is recovered (no backup needed), a purged or absent one restored
 * from the blob, a present one refused (KEY_PRESENT). Steps: `restore-key` (a resumed
 * step finds the key back and adopts it: one restore), `restore-notify`.
 */
import { randomBytes } from 'node:crypto';
import { KeyturnError, describeError, isKeyturnError, notFound } from '../../errors';
import {
  BACKUP_CONTAINER,
  type KeyPresence,
  type RestoreResult,
  type RestoreStep,
  type TenantBackup,
  type TenantRestore,
  checksumMismatch,
  completeRestoreStep,
  newRestore,
  restoreAction,
  restoreFailurePolicy,
  restoreId,
  restoreKernel,
  sha256Hex,
} from '../../domain/tenantBackups';
import type { Tenant } from '../../domain/tenantKeys';
import type { VaultKeys } from '../../ports';
import type { JobKind, StepRun, StepRunner } from '../jobs/runner';
import { type BackupDeps, readTenant } from './backups';
import type { RestoreStore } from './opsPorts';
import { publishTenantEvent } from './opsNotify';

export const RESTORE_KIND = 'tenant-restore';

export interface RestoreDeps extends BackupDeps {
  restores: RestoreStore;
  runner: StepRunner;
  leaseMs: number;
  maxAttempts: number;
}

async function presenceOf(keys: VaultKeys, vaultUrl: string, name: string): Promise<KeyPresence> {
  if (await keys.get({ vaultUrl, name })) return 'present';
  try {
    return (await keys.getDeleted(vaultUrl, name)) ? 'soft-deleted' : 'absent';
  } catch (e) {
    // Reading deleted keys is `deletedKeys/read`, outside Key Vault Crypto Officer's `keys/*`
    // (Keyturn's role on its vault), while recover is a key action it has: try the recovery,
    // and a recovery that finds nothing falls back to the blob (`recoverOrRestore`).
    if (!isKeyturnError(e, 'ACCESS_DENIED')) throw e;
    return 'soft-deleted';
  }
}

/** Recovers a soft-deleted key; one Key Vault does not hold (purged, or never deleted) comes back from the backup. */
async function recoverOrRestore(deps: BackupDeps, backup: TenantBackup, check: (what: string) => Promise<void>): Promise<void> {
  await check('recover the deleted key');
  try {
    await deps.keys.recover(backup.vaultUrl, backup.keyName);
    return;
  } catch (e) {
    if (!isKeyturnError(e, 'NOT_FOUND')) throw e;
  }
  const bytes = await verifiedBytes(deps, backup);
  await check('restore the key backup');
  await deps.keys.restore(backup.vaultUrl, bytes);
}

/** The backup's bytes, only when they match the recorded SHA-256 (blob metadata and record). */
async function verifiedBytes(deps: BackupDeps, backup: TenantBackup): Promise<Uint8Array> {
  const blob = await deps.blobs.get(BACKUP_CONTAINER, backup.blob);
  if (!blob) throw notFound(`The blob of backup '${backup.id}'`, { backupId: backup.id });
  if (sha256Hex(blob.bytes) !== backup.sha256 || blob.metadata.sha256 !== backup.sha256) throw checksumMismatch(backup.id);
  return blob.bytes;
}

async function backupOf(deps: BackupDeps, tenantId: string, backupId: string): Promise<TenantBackup> {
  const backup = await deps.backups.read(tenantId, backupId);
  if (!backup) throw notFound(`Backup '${backupId}' of tenant '${tenantId}'`, { tenantId, backupId });
  return backup;
}

export function restoreJob(deps: RestoreDeps): JobKind<TenantRestore, RestoreStep, RestoreResult> {
  const { log } = deps;
  return {
    kind: RESTORE_KIND,
    label: 'Restore',
    idKey: 'restoreId',
    store: deps.restores,
    leaseMs: deps.leaseMs,
    decide: (job, now, owner) => restoreKernel.decide(job, now, owner),
    claim: restoreKernel.claim,
    steps: {
      'restore-key': async ({ job, check }: StepRun<TenantRestore, RestoreStep>) => {
        const backup = await backupOf(deps, job.tenantId, job.backupId);
        const { vaultUrl, keyName } = backup;
        const presence = await presenceOf(deps.keys, vaultUrl, keyName);
        // Present: this restore's earlier claim brought it back (the request refused a present key).
        if (presence === 'soft-deleted') {
          await recoverOrRestore(deps, backup, check);
        } else if (presence === 'absent') {
          const bytes = await verifiedBytes(deps, backup);
          await check('restore the key backup');
          await deps.keys.restore(vaultUrl, bytes);
        }
        const versions = (await deps.keys.versions(vaultUrl, keyName)).map((p) => `${vaultUrl}/keys/${keyName}/${p.version}`);
        return { step: 'restore-key', versions };
      },
      'restore-notify': async ({ job, check }: StepRun<TenantRestore, RestoreStep>) => {
        const tenant = await readTenant(deps.tenants, job.tenantId);
        await check('publish the notification');
        await publishTenantEvent(deps.notifier, tenant, 'restored', job.id, { backupId: job.backupId, action: job.action, versions: job.restoredVersions ?? [] });
        return { step: 'restore-notify' };
      },
    },
    async record({ job, token, step, now }, result) {
      return { next: completeRestoreStep(job, token, result, now), written: () => log.info(`Restore step ${step} done`, { restoreId: job.id, tenantId: job.tenantId }) };
    },
    async failed({ job, token, step, now }, error) {
      const next = restoreKernel.fail(job, token, now, restoreFailurePolicy(job, deps.maxAttempts, Math.random()));
      return { next, written: () => log.warn(`Restore step ${step} failed`, { restoreId: job.id, error: describeError(error) }) };
    },
    async cleanup(job, now) {
      return { next: restoreKernel.recordCleanup(job, true, now, Math.random()), written: () => undefined };
    },
  };
}

export class RestoreService {
  private readonly kind: JobKind<TenantRestore, RestoreStep, RestoreResult>;

  constructor(private readonly deps: RestoreDeps) {
    this.kind = restoreJob(deps);
  }

  get jobKind() {
    return this.kind;
  }

  /** 200 once the key is back; a retried request drives the restore still running. */
  async restore(tenantId: string, backupId: string, requestedBy: string): Promise<Tenant> {
    const { restores, runner, keys, clock, log } = this.deps;
    await readTenant(this.deps.tenants, tenantId);
    const backup = await backupOf(this.deps, tenantId, backupId);
    let running = (await restores.running(tenantId)).find((r) => r.backupId === backupId);
    if (!running) {
      // Checksum first: a corrupted or altered blob restores nothing.
      await verifiedBytes(this.deps, backup);
      const action = restoreAction(await presenceOf(keys, backup.vaultUrl, backup.keyName), backup.keyName);
      running = newRestore({ id: restoreId(tenantId, randomBytes(4).toString('hex')), tenantId, backupId, action, requestedBy }, await clock.now());
      await restores.createOnly(running);
      log.info('Restore started', { tenantId, backupId, restoreId: running.id, action });
    }
    const after = await runner.advance(this.kind, running.id);
    if (after.status === 'failed') throw new KeyturnError('DEPENDENCY_FAILED', 'The restore failed after its retries; a new request starts it again', { restoreId: after.id });
    return readTenant(this.deps.tenants, tenantId);
  }
}
