/**
 * The one place where errors become HTTP responses (RFC 9457 problem JSON), and the
 * one way HTTP bodies and route parameters are validated (zod → 400 naming the field).
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { type ErrorCode, KeyturnError, ValidationError, describeError } from '../errors';

const STATUS: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  ROTATION_IN_FLIGHT: 409,
  PRECONDITION_FAILED: 412,
  NOT_MANAGED: 409,
  DEPENDENCY_FAILED: 503,
  UNSUPPORTED: 400,
};

/** Seconds a client should wait before retrying a 503. */
const RETRY_AFTER_S = 5;

/**
 * A problem+json response. `extra` adds context but can never replace the fixed
 * members; every 503 says when to retry.
 */
export function problem(
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
  retryAfterSeconds: number = RETRY_AFTER_S,
): HttpResponseInit {
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

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'REQUEST_SEND_ERROR',
  'TimeoutError', // Cosmos DB
]);
/** Identity and cancellation failures: the managed-identity endpoint or a timeout, not the request. */
const DEPENDENCY_ERROR_NAMES = new Set([
  'RestError',
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
  'AbortError',
  'TimeoutError',
]);

/**
 * An Azure SDK or network failure (Key Vault, Cosmos DB, Storage, Event Grid): the
 * request was fine, a dependency was not. Recognised by shape so this edge needs no SDK.
 */
export function isDependencyFailure(thrown: unknown): boolean {
  if (typeof thrown !== 'object' || thrown === null) return false;
  const e = thrown as { name?: unknown; code?: unknown; statusCode?: unknown };
  if ((typeof e.name === 'string' && DEPENDENCY_ERROR_NAMES.has(e.name)) || typeof e.statusCode === 'number') return true;
  if (typeof e.code === 'number' && e.code >= 400) return true; // Cosmos ErrorResponse
  return typeof e.code === 'string' && NETWORK_CODES.has(e.code);
}

/** Maps a thrown error to a response; unknown errors become a 500 with no internals. */
export function errorResponse(thrown: unknown, log?: (msg: string) => void): HttpResponseInit {
  if (thrown instanceof ValidationError) {
    return problem(400, thrown.code, thrown.message, { field: thrown.field });
  }
  if (thrown instanceof KeyturnError) {
    return problem(STATUS[thrown.code], thrown.code, thrown.message, thrown.details);
  }
  log?.(`Unhandled error: ${describeError(thrown)}`);
  if (isDependencyFailure(thrown)) {
    return problem(503, 'DEPENDENCY_FAILED', 'A dependency (Key Vault, Cosmos DB, Storage or Event Grid) failed; retry later.');
  }
  return problem(500, 'INTERNAL_ERROR', 'The request failed; see the function logs.');
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

/** Reads and validates a JSON body; a missing, oversized or malformed body is a 400. */
export async function readJsonBody<T extends z.ZodType>(request: HttpRequest, schema: T): Promise<z.infer<T>> {
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) {
    throw new ValidationError('(body)', `body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    throw new ValidationError('(body)', 'body is not valid JSON');
  }
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
