/**
 * The one error model. Every error Keyturn raises is a `KeyturnError` (or a subclass)
 * with a stable code from `ERROR_CODES`; `shared/http/problem.ts` maps codes to HTTP in
 * one place. Errors thrown by SDKs and the network are read by `errorFacts` only.
 * Messages and details must never contain secret values or key material.
 */

export const ERROR_CODES = [
  /** A request body, parameter or query failed validation (`field` names it). */
  'VALIDATION_FAILED',
  'NOT_FOUND',
  'CONFLICT',
  'ROTATION_IN_FLIGHT',
  /** A renew named a `fromVersion` that is no longer current, and no known rotation replaced it. */
  'VERSION_NOT_CURRENT',
  /** An `Idempotency-Key` was sent again with a different request. */
  'IDEMPOTENCY_KEY_REUSED',
  /** The first request with this `Idempotency-Key` is still running: retry shortly. */
  'IDEMPOTENCY_KEY_IN_PROGRESS',
  /** The secret exists but is not (validly) tagged for Keyturn. */
  'NOT_MANAGED',
  /** A state machine refused a transition (a forbidden move, or a step not held). */
  'INVALID_TRANSITION',
  /** A lost ETag race (`changed`) or a duplicate create (`exists`): re-read and re-decide. */
  'CONCURRENCY_CONFLICT',
  /** A step stopped before an external write: too little of its lease was left. */
  'LEASE_LAPSING',
  /** No signing keys are published yet (the first ones are being created). */
  'SIGNING_KEYS_NOT_READY',
  /** A provider has not (yet) seen the new credential: retry later (Entra replication). */
  'VERIFY_NOT_REPLICATED',
  /** The new credential is not what the provider holds (wrong or malformed value). */
  'VERIFY_MISMATCH',
  /** Key Vault, ARM or Graph refused Keyturn's own identity (401/403). Not retryable by waiting. */
  'ACCESS_DENIED',
  /** A dependency (Key Vault, Cosmos DB, Storage, Event Grid, Graph) is down or throttling. */
  'DEPENDENCY_FAILED',
  /** Tenant keys: a tenant with that id exists already. */
  'TENANT_EXISTS',
  /** Tenant keys: the tenant was revoked; no content is protected or opened. */
  'TENANT_REVOKED',
  /** Tenant keys (BYOK): the customer's vault no longer grants Keyturn access. */
  'TENANT_ACCESS_LOST',
  /** Tenant keys: a compromised BYOK key waits for the customer to name a new one. */
  'TENANT_REKEY_REQUIRED',
  /** The authenticated caller is not among the tenant's `allowedCallers`. */
  'CALLER_NOT_ALLOWED',
  /** A compact JWE that is malformed, tampered with, or not in the tenant's format. */
  'JWE_INVALID',
  /** Dual control: the approver is the requester (a second, different identity must approve). */
  'APPROVER_IS_REQUESTER',
  /** Dual control: the approval named another digest than the request's (e.g. the recipient key's SHA-256). */
  'APPROVAL_DIGEST_MISMATCH',
  /** Dual control: the minimum waiting period since the request has not passed yet. */
  'APPROVAL_TOO_EARLY',
  /** Dual control needs verified identities: App Service authentication is not trusted and this is not the local stack. */
  'DUAL_CONTROL_UNAVAILABLE',
  /** App Service authentication is trusted but the request carries no principal id. */
  'IDENTITY_REQUIRED',
  // Incidents (issue 14): the breach record.
  /** Incidents: the state machine refused a move (e.g. resolved → running). */
  'INCIDENT_TRANSITION_FORBIDDEN',
  /** Incidents: close needs `resolved`, or `contained` with every task done. */
  'INCIDENT_NOT_CLOSABLE',
  /** Incidents: a closed incident's record takes no more changes. */
  'INCIDENT_CLOSED',
  /** Incidents: the scope names ids that exist nowhere (`missing` lists them). */
  'SCOPE_NOT_FOUND',
  /** Incidents: a scope kind whose life cycle has not landed yet (key sets). */
  'SCOPE_KIND_UNSUPPORTED',
  // Tenant keys part 2 (backup, restore, export, topology switch).
  /** BYOK: the customer has not granted Keyturn the backup right on its key (the customer backs it up). */
  'BACKUP_NOT_PERMITTED',
  /** A backup blob whose SHA-256 is not the one recorded: nothing is restored. */
  'BACKUP_CHECKSUM_MISMATCH',
  /** Restore: the key is present in the vault (only a deleted or purged key is restored). */
  'KEY_PRESENT',
  /** Export: only a service-managed tenant's keys Keyturn generated can be exported (never BYOK). */
  'EXPORT_NOT_ALLOWED',
  /** Export: the package is fetched only after a second person approved the request. */
  'EXPORT_NOT_APPROVED',
  /** Export: the package (or the request) has expired. */
  'EXPORT_EXPIRED',
  /** Export: only the requester fetches the package. */
  'EXPORT_REQUESTER_ONLY',
  // Encryption key sets and batch jobs (issue 13).
  /** Key sets: a set with that id exists already with other settings (a PUT with the same ones is idempotent). */
  'KEYSET_EXISTS',
  /** Key sets: a ciphertext that does not open under its set, item and key (moved, tampered with, or of another set). */
  'CIPHERTEXT_INVALID',
  /** Key sets: a key cannot be retired while items still use it. */
  'KEY_IN_USE',
  /** Key sets: the item's value was deleted by an abandon; its owner must PUT it again. */
  'NEEDS_REENTRY',
  /** Key sets: the KEK can no longer unwrap the data keys (import a backup, or abandon). */
  'KEYSET_UNAVAILABLE',
  /** Key sets: a job of this kind runs on the set already. */
  'KEYSET_JOB_RUNNING',
  /** Batch jobs: only a failed job can be resumed. */
  'JOB_NOT_RESUMABLE',
  /** Key sets: an export in another state than the one the operation needs (e.g. approved twice). */
  'EXPORT_STATE',
  /** Key sets: an imported data key does not match the set (wrong id, not unwrappable, or not 32 bytes). */
  'IMPORT_INVALID',
  // Breach playbooks (issue 15): a step waiting for a batch job it started; an action whose life cycle is not wired; resume of a run that did not fail.
  'PLAYBOOK_STEP_WAITING',
  'PLAYBOOK_ACTION_UNAVAILABLE',
  'INCIDENT_NOT_RESUMABLE',
  // Encryption key sets, the gaps of the last session (KEK read only, retire window).
  /** Key sets: the KEK cannot be read (deleted, purged, access removed); the problem names the ways out. */
  'KEK_UNAVAILABLE',
  /** Key sets: a KEK replacement while the KEK exists. */
  'KEK_PRESENT',
  /** Key sets: a replacement of a customer's KEK (only Keyturn-owned KEKs are replaced). */
  'KEK_NOT_OWNED',
  /** Key sets: a retire while hosts may still encrypt with the key (within the primary TTL of its demotion). */
  'KEY_RETIRE_TOO_SOON',
  // Incidents, the gaps of the last session (deleted checkpoint secrets).
  /** Incidents: the checkpoint secret is soft-deleted; Key Vault refuses new checkpoints until it is recovered (the problem names the command). */
  'CHECKPOINT_DELETED',
  /** One or more settings are missing or invalid (start-up stops). */
  'CONFIG_INVALID',
  /** Test only: an armed fault point (it must escape like a crash). */
  'INJECTED_FAULT',
  'INTERNAL_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN = new Set<string>(ERROR_CODES);
export const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && KNOWN.has(code);

/** The base of every error Keyturn raises. */
export class KeyturnError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Safe, non-secret context (field names, ids). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'KeyturnError';
  }
}

export class ValidationError extends KeyturnError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('VALIDATION_FAILED', message, { field });
    this.name = 'ValidationError';
  }
}

/** A lost ETag race (`changed`) or a duplicate create (`exists`): the caller re-reads and re-decides. */
export class ConcurrencyConflict extends KeyturnError {
  constructor(
    readonly kind: 'exists' | 'changed',
    id: string,
  ) {
    super('CONCURRENCY_CONFLICT', kind === 'exists' ? `Document '${id}' already exists` : `Document '${id}' changed since it was read`, { kind });
    this.name = 'ConcurrencyConflict';
  }
}

export const notFound = (what: string, details: Record<string, unknown> = {}) =>
  new KeyturnError('NOT_FOUND', `${what} was not found`, details);

export const conflict = (message: string, details: Record<string, unknown> = {}) =>
  new KeyturnError('CONFLICT', message, details);

export const invalidTransition = (message: string, details: Record<string, unknown> = {}) =>
  new KeyturnError('INVALID_TRANSITION', message, details);

/**
 * A dependency answered that the request itself was bad (a 400 from Key Vault, e.g. an
 * unwrap of bytes that are no wrapped key): the caller's input, not an outage.
 */
export const isRefusedInput = (thrown: unknown): boolean =>
  thrown instanceof KeyturnError ? thrown.details.statusCode === 400 : failureKind(thrown) === 'bad-request';

export const isKeyturnError = (thrown: unknown, code?: ErrorCode): thrown is KeyturnError =>
  thrown instanceof KeyturnError && (code === undefined || thrown.code === code);

/** Normalises anything thrown into an Error whose message is safe to log. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : 'Unknown error');
}

/** A short description of an error for logs (its `cause` too): name/code/status and message, never bodies. */
export function describeError(thrown: unknown): string {
  const one = (x: unknown) => {
    const e = toError(x) as Error & { code?: unknown; statusCode?: unknown };
    const parts = [e.name];
    if (e.code !== undefined) parts.push(String(e.code));
    if (e.statusCode !== undefined) parts.push(`status ${String(e.statusCode)}`);
    return `${parts.join(' ')}: ${e.message}`;
  };
  const cause = thrown instanceof Error ? thrown.cause : undefined;
  return (cause === undefined ? one(thrown) : `${one(thrown)} (cause: ${one(cause)})`).slice(0, 700);
}

// ---------------------------------------------------------------------------------
// The one reader of SDK and network error shapes (no SDK import: by shape only).

/**
 * What a failure was, for deciding what to do and what to tell:
 * - `keyturn`: a KeyturnError (its code says the rest);
 * - `access-denied`: a dependency refused Keyturn's identity (401/403) — not a 503;
 * - `not-found`, `conflict` (409/412), `bad-request` (other 4xx): the dependency answered;
 * - `dependency`: down, throttling (429, 5xx), unreachable, timed out, or the identity endpoint failed;
 * - `unknown`: a bug (a 500 over HTTP).
 */
export type FailureKind = 'keyturn' | 'access-denied' | 'not-found' | 'conflict' | 'bad-request' | 'dependency' | 'unknown';

/** What may be stored and shown about a thrown error: never its text. */
export interface ErrorFacts {
  name: string;
  code?: string;
  statusCode?: number;
  kind: FailureKind;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'EHOSTUNREACH',
  'REQUEST_SEND_ERROR',
  'TimeoutError', // Cosmos DB
]);
/** Identity and cancellation failures: the managed-identity endpoint or a timeout, not the request. */
const DEPENDENCY_ERROR_NAMES = new Set([
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
  'AbortError',
  'TimeoutError',
]);

const SAFE_WORD = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The HTTP status an SDK error carries: `statusCode` (RestError: Key Vault, Event Grid,
 * Storage, ARM) or a numeric `code` (Cosmos DB's ErrorResponse, whose `code` is the
 * status). Undefined when it carries neither.
 */
export function statusOf(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null || e instanceof KeyturnError) return undefined;
  const { statusCode, code } = e as { statusCode?: unknown; code?: unknown };
  for (const candidate of [statusCode, code]) {
    if (typeof candidate === 'number' && Number.isInteger(candidate) && candidate >= 100 && candidate <= 599) return candidate;
    if (typeof candidate === 'string' && /^\d{3}$/.test(candidate)) return Number(candidate);
  }
  return undefined;
}

export function failureKind(thrown: unknown): FailureKind {
  if (thrown instanceof KeyturnError) return 'keyturn';
  if (typeof thrown !== 'object' || thrown === null) return 'unknown';
  const e = thrown as { name?: unknown; code?: unknown };
  const status = statusOf(thrown);
  if (status !== undefined) {
    if (status === 401 || status === 403) return 'access-denied';
    if (status === 404 || status === 410) return 'not-found';
    if (status === 409 || status === 412) return 'conflict';
    if (status === 408 || status === 429 || status >= 500) return 'dependency';
    if (status >= 400) return 'bad-request';
  }
  if (typeof e.name === 'string' && DEPENDENCY_ERROR_NAMES.has(e.name)) return 'dependency';
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return 'dependency';
  // A RestError without a status never reached the service (e.g. a connection failure).
  if (e.name === 'RestError') return 'dependency';
  return 'unknown';
}

/** Name, code, status and kind of a thrown error: safe to store in Cosmos DB and show over HTTP. */
export function errorFacts(thrown: unknown): ErrorFacts {
  const e = toError(thrown) as Error & { code?: unknown; statusCode?: unknown };
  const code = typeof e.code === 'number' ? String(e.code) : e.code;
  const status = statusOf(thrown);
  return {
    name: SAFE_WORD.test(e.name) ? e.name : 'Error',
    ...(typeof code === 'string' && SAFE_WORD.test(code) ? { code } : {}),
    ...(status !== undefined ? { statusCode: status } : {}),
    kind: failureKind(thrown),
  };
}

/** A dependency failure (down, throttling, unreachable) or a refusal of Keyturn's identity: not the caller's fault. */
export const isDependencyFailure = (thrown: unknown): boolean => {
  const kind = failureKind(thrown);
  return kind === 'dependency' || kind === 'access-denied' || kind === 'not-found' || kind === 'conflict' || kind === 'bad-request';
};

/**
 * A dependency's failure as a KeyturnError with a fixed message: `ACCESS_DENIED` when
 * it refused Keyturn's identity, else `DEPENDENCY_FAILED`. Details carry only the
 * failure's name, code and status (they reach HTTP answers); the original stays as
 * `cause`, for logs only.
 */
export function dependencyError(message: string, thrown: unknown, details: Record<string, unknown> = {}): KeyturnError {
  if (thrown instanceof KeyturnError) {
    if (thrown.code !== 'DEPENDENCY_FAILED' && thrown.code !== 'ACCESS_DENIED') return thrown;
    // An adapter's dependency error, re-told in the caller's words: same code and safe details.
    return Object.assign(new KeyturnError(thrown.code, message, { ...details, ...thrown.details }), { cause: thrown });
  }
  const facts = errorFacts(thrown);
  const code: ErrorCode = facts.kind === 'access-denied' ? 'ACCESS_DENIED' : 'DEPENDENCY_FAILED';
  const { kind: _kind, ...safe } = facts;
  void _kind;
  return Object.assign(new KeyturnError(code, message, { ...details, ...safe }), { cause: thrown });
}
