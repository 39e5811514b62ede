/**
 * Tenant-key export under dual control, on the step kernel. `request` records the
 * requester's key (its SHA-256 is what the approver names) and notifies the admins
 * (`export-requested`); the export then waits. `approve`, by another identity naming
 * that SHA-256 after the optional minimum wait, starts `export-package` (every version's
 * escrowed private key, encrypted to the requester; the package blob is create-only,
 * so a resumed step adopts the one an earlier claim wrote) and `export-notify`. Only
 * the requester fetches the package, until it expires. BYOK keys are never exported.
 */
import { createPublicKey } from 'node:crypto';
import { ConcurrencyConflict, KeyturnError, describeError, notFound } from '../../errors';
import { approvalRefusal } from '../../domain/dualControl';
import { parseRecipientKey } from '../../domain/recipientKey';
import {
  EXPORT_CONTAINER,
  type ExportPackage,
  type ExportPackageInfo,
  type ExportResult,
  type ExportStep,
  type PackageKeyInput,
  type TenantExport,
  approveExport,
  buildPackage,
  completeExportStep,
  exportExpired,
  exportFailurePolicy,
  exportIdOf,
  exportKernel,
  exportNotApproved,
  isExpired,
  newExport,
} from '../../domain/tenantExports';
import type { JobKind, StepRun, StepRunner } from '../jobs/runner';
import { type BackupDeps, readTenant } from './backups';
import type { EscrowService } from './escrow';
import type { ExportStore } from './opsPorts';
import { publishTenantEvent } from './opsNotify';

export const EXPORT_KIND = 'tenant-export';

export interface ExportSettings {
  expiryMs: number;
  minWaitMs: number;
}

export interface ExportDeps extends BackupDeps {
  exports: ExportStore;
  escrow: EscrowService;
  runner: StepRunner;
  leaseMs: number;
  maxAttempts: number;
  settings: ExportSettings;
}

const packageBlob = (job: TenantExport) => `${job.tenantId}/${job.id}`;

function infoOf(job: TenantExport, pkg: ExportPackage): ExportPackageInfo {
  return {
    blob: packageBlob(job),
    sha256: pkg.sha256,
    createdAt: pkg.createdAt,
    exportable: pkg.keys.filter((k) => k.exportable).map((k) => k.kid),
    notExportable: pkg.keys.filter((k) => !k.exportable).map((k) => k.kid),
  };
}

const parsePackage = (bytes: Uint8Array) => JSON.parse(Buffer.from(bytes).toString('utf8')) as ExportPackage;

export function exportJob(deps: ExportDeps): JobKind<TenantExport, ExportStep, ExportResult> {
  const { log } = deps;
  return {
    kind: EXPORT_KIND,
    label: 'Export',
    idKey: 'exportId',
    store: deps.exports,
    leaseMs: deps.leaseMs,
    decide: (job, now, owner) => exportKernel.decide(job, now, owner),
    claim: exportKernel.claim,
    steps: {
      'export-requested': async ({ job, check }: StepRun<TenantExport, ExportStep>) => {
        const tenant = await readTenant(deps.tenants, job.tenantId);
        await check('publish the notification');
        await publishTenantEvent(deps.notifier, tenant, 'exportRequested', job.id, {
          exportId: job.id,
          requestedBy: job.requestedBy,
          reason: job.reason,
          publicKeySha256: job.publicKeySha256,
        });
        return { step: 'export-requested' };
      },
      'export-package': async ({ job, now, check }: StepRun<TenantExport, ExportStep>) => {
        if (!job.approvedAt) throw exportNotApproved(job.id);
        // An earlier claim's package (create-only): adopted, never built twice.
        const earlier = await deps.blobs.get(EXPORT_CONTAINER, packageBlob(job));
        if (earlier) return { step: 'export-package', package: infoOf(job, parsePackage(earlier.bytes)) };
        const tenant = await readTenant(deps.tenants, job.tenantId);
        const keys: PackageKeyInput[] = [];
        for (const v of tenant.versions) {
          // Only versions Keyturn generated have an escrow copy; the others are listed as not exportable.
          const privateKey = await deps.escrow.open(job.tenantId, v.kid, v.version);
          keys.push({ kid: v.kid, state: v.state, ...(privateKey ? { privateKey } : {}) });
        }
        const pkg = buildPackage({ exportId: job.id, tenantId: job.tenantId, createdAt: now.toISOString(), recipient: createPublicKey(job.publicKeyPem), keys });
        await check('store the package');
        if (!(await deps.blobs.putOnly(EXPORT_CONTAINER, packageBlob(job), Buffer.from(JSON.stringify(pkg)), { sha256: pkg.sha256, expiresat: job.expiresAt }))) {
          const raced = await deps.blobs.get(EXPORT_CONTAINER, packageBlob(job));
          if (!raced) throw new KeyturnError('DEPENDENCY_FAILED', 'The package blob vanished; retry');
          return { step: 'export-package', package: infoOf(job, parsePackage(raced.bytes)) };
        }
        return { step: 'export-package', package: infoOf(job, pkg) };
      },
      'export-notify': async ({ job, check }: StepRun<TenantExport, ExportStep>) => {
        const tenant = await readTenant(deps.tenants, job.tenantId);
        await check('publish the notification');
        await publishTenantEvent(deps.notifier, tenant, 'exported', job.id, {
          exportId: job.id,
          requestedBy: job.requestedBy,
          approvedBy: job.approvedBy,
          packageSha256: job.package?.sha256,
          exportable: job.package?.exportable ?? [],
          notExportable: job.package?.notExportable ?? [],
          expiresAt: job.expiresAt,
        });
        return { step: 'export-notify' };
      },
    },
    async record({ job, token, step, now }, result) {
      return { next: completeExportStep(job, token, result, now), written: () => log.info(`Export step ${step} done`, { exportId: job.id, tenantId: job.tenantId }) };
    },
    async failed({ job, token, step, now }, error) {
      const next = exportKernel.fail(job, token, now, exportFailurePolicy(job, deps.maxAttempts, Math.random()));
      return { next, written: () => log.warn(`Export step ${step} failed`, { exportId: job.id, error: describeError(error) }) };
    },
    async cleanup(job, now) {
      // A failed export leaves no package to remove (it is written last and create-only).
      return { next: exportKernel.recordCleanup(job, true, now, Math.random()), written: () => undefined };
    },
  };
}

export class ExportService {
  private readonly kind: JobKind<TenantExport, ExportStep, ExportResult>;

  constructor(private readonly deps: ExportDeps) {
    this.kind = exportJob(deps);
  }

  get jobKind() {
    return this.kind;
  }

  async request(tenantId: string, input: { requesterPublicKey: string; reason: string }, requestedBy: string): Promise<TenantExport> {
    const { exports: store, runner, clock, log, settings } = this.deps;
    const tenant = await readTenant(this.deps.tenants, tenantId);
    if (tenant.topology === 'byok') {
      throw new KeyturnError('EXPORT_NOT_ALLOWED', `Tenant '${tenantId}' brings its own key: a BYOK key is never exported (the customer holds it)`, { tenantId });
    }
    if (tenant.state === 'revoked') throw new KeyturnError('TENANT_REVOKED', `Tenant '${tenantId}' is revoked`, { tenantId });
    const recipient = parseRecipientKey(input.requesterPublicKey, 'requesterPublicKey');
    const job = newExport(
      {
        id: exportIdOf(tenantId),
        tenantId,
        reason: input.reason,
        requestedBy,
        publicKeyPem: recipient.key.export({ type: 'spki', format: 'pem' }) as string,
        publicKeySha256: recipient.sha256,
      },
      await clock.now(),
      settings.expiryMs,
    );
    await store.createOnly(job);
    log.info('Export requested', { tenantId, exportId: job.id, requestedBy, publicKeySha256: recipient.sha256 });
    return runner.advance(this.kind, job.id);
  }

  async read(tenantId: string, exportId: string): Promise<TenantExport> {
    const stored = await this.deps.exports.read(exportId);
    if (!stored || stored.doc.tenantId !== tenantId) throw notFound(`Export '${exportId}' of tenant '${tenantId}'`, { tenantId, exportId });
    return stored.doc;
  }

  async approve(tenantId: string, exportId: string, input: { publicKeySha256: string }, approvedBy: string): Promise<TenantExport> {
    const { exports: store, runner, clock, log, settings } = this.deps;
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await store.read(exportId);
      if (!stored || stored.doc.tenantId !== tenantId) throw notFound(`Export '${exportId}' of tenant '${tenantId}'`, { tenantId, exportId });
      let job = stored.doc;
      const now = await clock.now();
      if (isExpired(job, now)) throw exportExpired(exportId);
      const refusal = approvalRefusal(
        { requestedBy: job.requestedBy, requestedAt: job.requestedAt, digest: job.publicKeySha256 },
        { approvedBy, digest: input.publicKeySha256 },
        now,
        { minWaitMs: settings.minWaitMs },
      );
      if (refusal) throw refusal;
      if (!job.approvedAt) {
        // The request's own notification first (a crash may have left it undone).
        if (job.status === 'active') job = await runner.advance(this.kind, exportId);
        if (job.status === 'active') {
          throw new KeyturnError('DEPENDENCY_FAILED', 'The export request is still being recorded by another worker; retry shortly', { exportId });
        }
        if (job.status !== 'awaiting-approval') continue;
        try {
          const current = await store.read(exportId);
          if (!current || current.doc.status !== 'awaiting-approval') continue;
          await store.replace(approveExport(current.doc, approvedBy, now, settings.expiryMs), current.etag);
          log.info('Export approved', { tenantId, exportId, approvedBy });
        } catch (e) {
          if (e instanceof ConcurrencyConflict) continue;
          throw e;
        }
      }
      const after = await runner.advance(this.kind, exportId);
      if (after.status === 'failed') throw new KeyturnError('DEPENDENCY_FAILED', 'The export failed after its retries; request a new one', { exportId });
      return after;
    }
    throw new KeyturnError('DEPENDENCY_FAILED', `Export '${exportId}' kept changing; retry`, { exportId });
  }

  /** The package, for its requester only, between its approval and its expiry. */
  async package(tenantId: string, exportId: string, requester: string): Promise<ExportPackage> {
    const job = await this.read(tenantId, exportId);
    if (requester !== job.requestedBy) throw new KeyturnError('EXPORT_REQUESTER_ONLY', 'Only the requester fetches the package', { exportId });
    if (isExpired(job, await this.deps.clock.now())) throw exportExpired(exportId);
    if (!job.package) throw exportNotApproved(exportId);
    const blob = await this.deps.blobs.get(EXPORT_CONTAINER, job.package.blob);
    if (!blob) throw exportExpired(exportId); // removed by the lifecycle rule
    return parsePackage(blob.bytes);
  }
}
