/**
 * The one place where errors become HTTP responses (RFC 9457 problem JSON), and the
 * one way HTTP bodies and route parameters are validated (zod → 400 naming the field).
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { MAX_JSON_DEPTH, jsonTextExceedsDepth, prototypeKeyPath } from '../domain/jsonDepth';
import { type ErrorCode, KeyturnError, ValidationError, describeError, failureKind, isDependencyFailure, isErrorCode } from '../errors';

/** Every code's HTTP status: exhaustive, so a new code cannot be added without one. */
const STATUS: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  ROTATION_IN_FLIGHT: 409,
  VERSION_NOT_CURRENT: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  IDEMPOTENCY_KEY_IN_PROGRESS: 409,
  NOT_MANAGED: 409,
  INVALID_TRANSITION: 409,
  CONCURRENCY_CONFLICT: 409,
  LEASE_LAPSING: 503,
  SIGNING_KEYS_NOT_READY: 503,
  VERIFY_NOT_REPLICATED: 503,
  VERIFY_MISMATCH: 502,
  TENANT_EXISTS: 409,
  TENANT_REVOKED: 409,
  TENANT_ACCESS_LOST: 409,
  TENANT_REKEY_REQUIRED: 409,
  JWE_INVALID: 400,
  CALLER_NOT_ALLOWED: 403,
  ACCESS_DENIED: 403,
  DEPENDENCY_FAILED: 503,
  APPROVER_IS_REQUESTER: 409,
  APPROVAL_DIGEST_MISMATCH: 409,
  APPROVAL_TOO_EARLY: 409,
  DUAL_CONTROL_UNAVAILABLE: 409,
  IDENTITY_REQUIRED: 401,
  // Incidents (issue 14).
  INCIDENT_TRANSITION_FORBIDDEN: 409,
  INCIDENT_NOT_CLOSABLE: 409,
  INCIDENT_CLOSED: 409,
  SCOPE_NOT_FOUND: 400,
  SCOPE_KIND_UNSUPPORTED: 400,
  // Tenant keys part 2 (backup, restore, export, topology switch).
  BACKUP_NOT_PERMITTED: 409,
  BACKUP_CHECKSUM_MISMATCH: 409,
  KEY_PRESENT: 409,
  EXPORT_NOT_ALLOWED: 409,
  EXPORT_NOT_APPROVED: 409,
  EXPORT_EXPIRED: 410,
  EXPORT_REQUESTER_ONLY: 403,
  // Encryption key sets and batch jobs (issue 13).
  KEYSET_EXISTS: 409,
  CIPHERTEXT_INVALID: 409,
  KEY_IN_USE: 409,
  NEEDS_REENTRY: 409,
  KEYSET_UNAVAILABLE: 409,
  KEYSET_JOB_RUNNING: 409,
  JOB_NOT_RESUMABLE: 409,
  EXPORT_STATE: 409,
  IMPORT_INVALID: 400,
  // Breach playbooks (issue 15)
  PLAYBOOK_STEP_WAITING: 503,
  PLAYBOOK_ACTION_UNAVAILABLE: 409,
  INCIDENT_NOT_RESUMABLE: 409,
  // Encryption key sets, the gaps of the last session (KEK read only, retire window).
  KEK_UNAVAILABLE: 409,
  KEK_PRESENT: 409,
  KEK_NOT_OWNED: 409,
  KEY_RETIRE_TOO_SOON: 409,
  // Incidents, the gaps of the last session (deleted checkpoint secrets).
  CHECKPOINT_DELETED: 409,
  CONFIG_INVALID: 500,
  INJECTED_FAULT: 500,
  INTERNAL_ERROR: 500,
};

export const statusOfCode = (code: ErrorCode): number => STATUS[code];

/** Seconds a client should wait before retrying a 503. */
const RETRY_AFTER_S = 5;

/**
 * A problem+json response for a known code. `extra` adds context but can never replace
 * the fixed members; every 503 says when to retry.
 */
export function problem(
  code: ErrorCode,
  detail: string,
  extra: Record<string, unknown> = {},
  retryAfterSeconds: number = RETRY_AFTER_S,
): HttpResponseInit {
  if (!isErrorCode(code)) throw new Error(`problem(): unknown error code '${String(code)}'`);
  const status = STATUS[code];
  return {
    status,
    headers: {
      'content-type': 'application/problem+json',
      'cache-control': 'no-store',
      ...(status === 503 ? { 'retry-after': String(retryAfterSeconds) } : {}),
    },
    jsonBody: { ...extra, type: 'about:blank', title: code, status, code, detail },
  };
}

/** Maps a thrown error to a response; unknown errors become a 500 with no internals. */
export function errorResponse(thrown: unknown, log?: (msg: string) => void): HttpResponseInit {
  if (thrown instanceof ValidationError) {
    return problem(thrown.code, thrown.message, { field: thrown.field });
  }
  if (thrown instanceof KeyturnError) {
    if (STATUS[thrown.code] >= 500) log?.(`Request failed: ${describeError(thrown)}`);
    return problem(thrown.code, thrown.message, thrown.details);
  }
  log?.(`Unhandled error: ${describeError(thrown)}`);
  const kind = failureKind(thrown);
  if (kind === 'access-denied') {
    return problem('ACCESS_DENIED', 'A dependency (Key Vault, ARM or Graph) refused Keyturn\'s identity; check its role assignments.');
  }
  if (isDependencyFailure(thrown)) {
    return problem('DEPENDENCY_FAILED', 'A dependency (Key Vault, Cosmos DB, Storage or Event Grid) failed; retry later.');
  }
  return problem('INTERNAL_ERROR', 'The request failed; see the function logs.');
}

/** zod issue → ValidationError naming the first bad field (dotted path). */
export function toValidationError(error: z.ZodError, prefix = ''): ValidationError {
  const issue = error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  const field = [prefix, path].filter(Boolean).join('.') || prefix || '(body)';
  return new ValidationError(field, `${field}: ${issue?.message ?? 'invalid'}`);
}

export function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix = ''): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw toValidationError(parsed.error, prefix);
  return parsed.data;
}

const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads and validates a JSON body; a missing, oversized, too deep or malformed body is a 400.
 * `maxBytes` raises the limit for a route whose body carries data (base64 content).
 */
export async function readJsonBody<T extends z.ZodType>(request: HttpRequest, schema: T, options: { maxBytes?: number } = {}): Promise<z.infer<T>> {
  const text = await request.text();
  const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
  if (Buffer.byteLength(text) > maxBytes) {
    throw new ValidationError('(body)', `body is larger than ${maxBytes} bytes`);
  }
  // Before anything recursive (zod, logging) sees it; the scan itself does not recurse.
  if (jsonTextExceedsDepth(text, MAX_JSON_DEPTH)) {
    throw new ValidationError('(body)', `body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let json: unknown;
  try {
    json = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    throw new ValidationError('(body)', 'body is not valid JSON');
  }
  // `__proto__` stays plain data in JSON.parse but becomes a prototype swap when copied, so
  // it could change what a schema sees: refused wherever it appears.
  const protoPath = prototypeKeyPath(json);
  if (protoPath !== null) throw new ValidationError(protoPath, `${protoPath}: '__proto__' is not a valid name`);
  return parseWith(schema, json);
}

/** Wraps a handler so every error goes through `errorResponse`. */
export function httpHandler<Args extends unknown[]>(
  fn: (...args: Args) => Promise<HttpResponseInit>,
): (...args: Args) => Promise<HttpResponseInit> {
  return async (...args: Args) => {
    try {
      return await fn(...args);
    } catch (thrown) {
      const context = args[1] as { error?: (m: string) => void } | undefined;
      return errorResponse(thrown, (m) => context?.error?.(m));
    }
  };
}
