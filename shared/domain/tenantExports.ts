/**
 * Tenant-key export under dual control, as pure rules and the package format. A
 * request names the requester's RSA public key (≥ 3072 bits); a *different* identity
 * approves it by naming that key's SHA-256; the package is built then, encrypted to the
 * requester, and only the requester fetches it until it expires.
 *
 * The package (JSON): `{exportId, tenantId, createdAt, encryptedPassword, keys: [{kid,
 * state, pkcs8}], sha256}`. `encryptedPassword` is a random printable password (32
 * base64url characters) encrypted with RSA-OAEP (SHA-256, MGF1-SHA-256) to the
 * requester's key, base64url; each `pkcs8` is an `ENCRYPTED PRIVATE KEY` PEM (PBES2:
 * PBKDF2 + AES-256-CBC) under that password, or null for a version Keyturn holds no
 * escrow of (`exportable: false`). `sha256` is the SHA-256 (hex) of the package without
 * `sha256`, as canonical JSON (members sorted, no spaces: `jq -S -j -c 'del(.sha256)'`).
 */
import { type KeyObject, constants, createHash, publicEncrypt, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { lazySchema } from './lazySchema';
import { KeyturnError, invalidTransition } from '../errors';
import { type FailurePolicy, type StepJob, type StepRecord, stepKernel } from './stepKernel';
import type { VersionState } from './tenantKeys';

/** Blob containers: escrow copies (`{tenantId}/{version}`) and built packages (`{tenantId}/{exportId}`). */
export const ESCROW_CONTAINER = 'tenant-escrow';
export const EXPORT_CONTAINER = 'tenant-exports';

export const EXPORT_STEPS = ['export-requested', 'export-package', 'export-notify'] as const;
export type ExportStep = (typeof EXPORT_STEPS)[number];

/** `awaiting-approval` between the request's notification and the approval (the kernel does nothing then). */
export type ExportStatus = 'active' | 'awaiting-approval' | 'completed' | 'failed';

export interface ExportPackageInfo {
  /** `{tenantId}/{exportId}` in EXPORT_CONTAINER. */
  blob: string;
  sha256: string;
  createdAt: string;
  exportable: string[];
  notExportable: string[];
}

export interface TenantExport extends StepJob<ExportStep> {
  status: ExportStatus;
  tenantId: string;
  reason: string;
  requestedBy: string;
  requestedAt: string;
  /** The requester's public key (PEM SPKI; public, so it may be stored). */
  publicKeyPem: string;
  publicKeySha256: string;
  approvedBy?: string;
  approvedAt?: string;
  /** The request's expiry until approved; the package's after. */
  expiresAt: string;
  /** Cosmos DB TTL (seconds after the last write): the document goes a day after it expires. */
  ttl: number;
  package?: ExportPackageInfo;
}

export const exportIdOf = (tenantId: string): string => `export-${tenantId}-${randomBytes(8).toString('hex')}`;

/** TTL of an export document written at `now`: until it expires, plus a day so a late fetch still learns 410. */
export const exportTtlSeconds = (expiresAt: string, now: Date): number => Math.max(60, Math.ceil((Date.parse(expiresAt) - now.getTime()) / 1000) + 86_400);

const kernel = stepKernel<TenantExport, ExportStep, 'completed' | 'failed'>({
  steps: EXPORT_STEPS,
  refuse: (message) => invalidTransition(message),
  label: 'Export',
});
export const exportKernel = kernel;

export function newExport(
  input: { id: string; tenantId: string; reason: string; requestedBy: string; publicKeyPem: string; publicKeySha256: string },
  now: Date,
  expiryMs: number,
): TenantExport {
  const at = now.toISOString();
  const expiresAt = new Date(now.getTime() + expiryMs).toISOString();
  return kernel.touched(
    { ...input, status: 'active', step: 'export-requested', steps: {}, requestedAt: at, expiresAt, ttl: exportTtlSeconds(expiresAt, now), updatedAt: at },
    now,
  );
}

export type ExportResult = { step: 'export-requested' } | { step: 'export-package'; package: ExportPackageInfo } | { step: 'export-notify' };

/** Records a step; after the request's notification the export waits for its approval (nothing due). */
export function completeExportStep(job: TenantExport, token: string, result: ExportResult, now: Date): TenantExport {
  const record: StepRecord = kernel.requireLease(job, result.step, token);
  const next = kernel.complete(result.step === 'export-package' ? { ...job, package: result.package } : job, result.step, record, now);
  if (result.step === 'export-requested' && !next.approvedAt) return kernel.touched({ ...next, status: 'awaiting-approval' }, now);
  return next;
}

export const exportFailurePolicy = (job: TenantExport, maxAttempts: number, jitter: number): FailurePolicy => ({
  maxAttempts,
  jitter,
  // The notification after the package only goes forward.
  mayFail: job.step !== 'export-notify',
});

export const isExpired = (job: Pick<TenantExport, 'expiresAt'>, now: Date): boolean => Date.parse(job.expiresAt) <= now.getTime();

export const exportExpired = (exportId: string) => new KeyturnError('EXPORT_EXPIRED', `Export '${exportId}' has expired`, { exportId });
export const exportNotApproved = (exportId: string) =>
  new KeyturnError('EXPORT_NOT_APPROVED', `Export '${exportId}' has not been approved (and packaged) yet`, { exportId });

/** An approval (already checked by `approvalRefusal`): the package is built from now on and expires after `expiryMs`. */
export function approveExport(job: TenantExport, approvedBy: string, now: Date, expiryMs: number): TenantExport {
  if (job.status !== 'awaiting-approval') throw invalidTransition(`Export '${job.id}' is not awaiting approval`, { exportId: job.id });
  const at = now.toISOString();
  const expiresAt = new Date(now.getTime() + expiryMs).toISOString();
  return kernel.touched({ ...job, status: 'active', approvedBy, approvedAt: at, expiresAt, ttl: exportTtlSeconds(expiresAt, now) }, now);
}

export type ExportState = 'awaiting-approval' | 'approved' | 'ready' | 'expired' | 'failed';

export function exportState(job: TenantExport, now: Date): ExportState {
  if (isExpired(job, now)) return 'expired';
  if (job.status === 'failed') return 'failed';
  if (job.status === 'completed' || (job.package && job.approvedAt)) return 'ready';
  return job.approvedAt ? 'approved' : 'awaiting-approval';
}

export function exportView(job: TenantExport, now: Date) {
  return {
    id: job.id,
    tenantId: job.tenantId,
    state: exportState(job, now),
    reason: job.reason,
    publicKeySha256: job.publicKeySha256,
    requestedBy: job.requestedBy,
    requestedAt: job.requestedAt,
    approvedBy: job.approvedBy ?? null,
    approvedAt: job.approvedAt ?? null,
    expiresAt: job.expiresAt,
    package: job.package ? { sha256: job.package.sha256, createdAt: job.package.createdAt, exportable: job.package.exportable, notExportable: job.package.notExportable } : null,
  };
}

// ---------------------------------------------------------------------------------
// The package.

export interface PackageKeyInput {
  kid: string;
  state: VersionState;
  /** The escrowed private key; absent for a version Keyturn holds no escrow of. */
  privateKey?: KeyObject;
}

export interface PackageKey {
  kid: string;
  state: VersionState;
  exportable: boolean;
  pkcs8: string | null;
}

export interface ExportPackage {
  exportId: string;
  tenantId: string;
  createdAt: string;
  encryptedPassword: string;
  keys: PackageKey[];
  sha256: string;
}

/** RFC 8785 for the package's JSON (strings, booleans, nulls, arrays, objects): members sorted, no spaces. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export const packageDigest = (pkg: Omit<ExportPackage, 'sha256'>): string => createHash('sha256').update(canonicalJson(pkg)).digest('hex');

/**
 * Builds the package: a fresh password encrypted to the recipient, every version's
 * PKCS#8 encrypted under it. The password exists only in this call.
 */
export function buildPackage(input: { exportId: string; tenantId: string; createdAt: string; recipient: KeyObject; keys: PackageKeyInput[] }): ExportPackage {
  const password = randomBytes(24).toString('base64url'); // 32 printable characters
  const encryptedPassword = publicEncrypt(
    { key: input.recipient, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, // MGF1 follows oaepHash
    Buffer.from(password, 'utf8'),
  ).toString('base64url');
  const keys = input.keys.map((k): PackageKey => ({
    kid: k.kid,
    state: k.state,
    exportable: Boolean(k.privateKey),
    // PBES2 (PBKDF2-HMAC-SHA256 + AES-256-CBC): what `openssl pkey -passin` opens.
    pkcs8: k.privateKey ? (k.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: password }) as string) : null,
  }));
  const body = { exportId: input.exportId, tenantId: input.tenantId, createdAt: input.createdAt, encryptedPassword, keys };
  return { ...body, sha256: packageDigest(body) };
}

// ---------------------------------------------------------------------------------
// Request bodies (zod at the edge; the recipient key is checked by `recipientKey.ts`).

const HEX64 = /^[0-9a-fA-F]{64}$/;

export const exportRequestSchema = lazySchema(() => z.strictObject({
  requesterPublicKey: z.string().min(1).max(16_384),
  reason: z.string().trim().min(1).max(500),
  requestedBy: z.string().optional(),
}));

export const exportApproveSchema = lazySchema(() => z.strictObject({
  publicKeySha256: z.string().regex(HEX64, 'expected the SHA-256 (64 hex characters) of the requester key'),
  approvedBy: z.string().optional(),
}));

export const exportParamsSchema = lazySchema(() => z.object({ exportId: z.string().regex(/^export-[a-z0-9-]{3,63}-[0-9a-f]{16}$/, 'expected an export id') }));
