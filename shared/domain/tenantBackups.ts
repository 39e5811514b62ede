/**
 * Tenant-key backups and restores, as pure rules. A backup is Key Vault's own backup
 * of the tenant's key (every version; an encrypted blob only Key Vault restores, in
 * the same geography and subscription), kept in Blob storage with its SHA-256 in the
 * blob's metadata and in a record. A restore verifies that checksum first, then brings
 * the key back: recovered when it is soft-deleted, restored from the blob when it is
 * purged or absent, refused when it is present. Key Vault restores every version in the
 * state it was backed up in, so content protected before opens again.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { lazySchema } from './lazySchema';
import { KeyturnError, invalidTransition } from '../errors';
import { type FailurePolicy, type StepJob, type StepRecord, stepKernel } from './stepKernel';

/** The blob container of backups (`tenant-backups/{tenantId}/{timestamp}`). */
export const BACKUP_CONTAINER = 'tenant-backups';

export interface TenantBackup {
  /** `backup-{timestamp}-{random}`; partition: the tenant. */
  id: string;
  tenantId: string;
  /** `tenant-backups/{tenantId}/{timestamp}`. */
  blob: string;
  /** SHA-256 (hex) of the blob's bytes. */
  sha256: string;
  createdAt: string;
  /** The backed-up key: its vault and name (every version of it is in the blob). */
  vaultUrl: string;
  keyName: string;
  /** The tenant's versions (kids) of that key at the time of the backup. */
  versions: string[];
  requestedBy: string;
}

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A timestamp that sorts and is a valid blob name segment: `20261201T120000123Z`. */
export const blobTimestamp = (now: Date): string => now.toISOString().replace(/[-:.]/g, '');

export const backupBlobName = (tenantId: string, now: Date): string => `${tenantId}/${blobTimestamp(now)}`;

export function backupView(b: TenantBackup) {
  return { id: b.id, blob: `${BACKUP_CONTAINER}/${b.blob}`, sha256: b.sha256, createdAt: b.createdAt, versions: b.versions, keyName: b.keyName };
}

/** BYOK: Keyturn was not granted the backup right; the customer runs the backup itself. */
export function backupNotPermitted(tenantId: string, vaultUrl: string, keyName: string, knownName?: string): KeyturnError {
  // `{name}.vault.azure.net` in Azure; a known customer vault's name where the URL does not carry it (local).
  const vaultName = knownName ?? new URL(vaultUrl).hostname.split('.')[0] ?? vaultUrl;
  const command = `az keyvault key backup --vault-name ${vaultName} --name ${keyName} --file ${keyName}.keybackup`;
  return new KeyturnError(
    'BACKUP_NOT_PERMITTED',
    `The customer owns the backup of tenant '${tenantId}''s key and has not granted Keyturn the backup right on it; the customer backs it up with: ${command}`,
    { tenantId, command },
  );
}

export const checksumMismatch = (backupId: string) =>
  new KeyturnError('BACKUP_CHECKSUM_MISMATCH', `Backup '${backupId}' does not match its recorded SHA-256; nothing was restored`, { backupId });

export const keyPresent = (keyName: string) =>
  new KeyturnError('KEY_PRESENT', `Key '${keyName}' is present in its vault; only a deleted or purged key is restored`, { keyName });

/** What the vault holds of the key, and so what a restore does. */
export type KeyPresence = 'present' | 'soft-deleted' | 'absent';
export type RestoreAction = 'recover' | 'restore-blob';

export function restoreAction(presence: KeyPresence, keyName: string): RestoreAction {
  if (presence === 'present') throw keyPresent(keyName);
  return presence === 'soft-deleted' ? 'recover' : 'restore-blob';
}

// ---------------------------------------------------------------------------------
// The restore as a job of the step kernel: `restore-key` (recover or restore, once:
// a resumed step finds the key back and adopts it) → `restore-notify` (the
// deterministic-id notification). A retried request drives the tenant's restore that is
// still running instead of starting another.

export const RESTORE_STEPS = ['restore-key', 'restore-notify'] as const;
export type RestoreStep = (typeof RESTORE_STEPS)[number];

export interface TenantRestore extends StepJob<RestoreStep> {
  tenantId: string;
  backupId: string;
  action: RestoreAction;
  requestedBy: string;
  createdAt: string;
  /** Recorded by `restore-key`: the versions now in the vault. */
  restoredVersions?: string[];
}

/** `restore-{tenantId}-{random}`: the partition (the tenant) is read back from the id. */
export const restoreId = (tenantId: string, random: string): string => `restore-${tenantId}-${random}`;
export const tenantOfJobId = (prefix: string, id: string): string => id.slice(prefix.length + 1, id.lastIndexOf('-'));

const kernel = stepKernel<TenantRestore, RestoreStep, 'completed' | 'failed'>({
  steps: RESTORE_STEPS,
  refuse: (message) => invalidTransition(message),
  label: 'Restore',
});
export const restoreKernel = kernel;

export function newRestore(input: { id: string; tenantId: string; backupId: string; action: RestoreAction; requestedBy: string }, now: Date): TenantRestore {
  const at = now.toISOString();
  return kernel.touched({ ...input, status: 'active', step: 'restore-key', steps: {}, createdAt: at, updatedAt: at }, now);
}

export type RestoreResult = { step: 'restore-key'; versions: string[] } | { step: 'restore-notify' };

export function completeRestoreStep(job: TenantRestore, token: string, result: RestoreResult, now: Date): TenantRestore {
  const record: StepRecord = kernel.requireLease(job, result.step, token);
  const next = result.step === 'restore-key' ? { ...job, restoredVersions: result.versions } : job;
  return kernel.complete(next, result.step, record, now);
}

/** Before the key is back a restore may fail; after, it only goes forward (the notification). */
export const restoreFailurePolicy = (job: TenantRestore, maxAttempts: number, jitter: number): FailurePolicy => ({
  maxAttempts,
  jitter,
  mayFail: job.step === 'restore-key',
});

export const restoreBodySchema = lazySchema(() => z.strictObject({
  backupId: z.string().regex(/^backup-[0-9TZ]+-[0-9a-f]{8}$/, 'expected a backup id (backup-…)'),
  requestedBy: z.string().optional(),
}));

export const backupBodySchema = lazySchema(() => z.strictObject({ requestedBy: z.string().optional() }));
