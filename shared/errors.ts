/**
 * Domain errors carry a stable code; `shared/http/problem.ts` maps codes to HTTP in
 * one place. Messages and details must never contain secret values or key material.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'ROTATION_IN_FLIGHT'
  | 'PRECONDITION_FAILED'
  | 'NOT_MANAGED'
  | 'DEPENDENCY_FAILED'
  | 'UNSUPPORTED';

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
export class ConcurrencyConflict extends Error {
  constructor(
    readonly kind: 'exists' | 'changed',
    id: string,
  ) {
    super(kind === 'exists' ? `Document '${id}' already exists` : `Document '${id}' changed since it was read`);
    this.name = 'ConcurrencyConflict';
  }
}

export const notFound = (what: string, details: Record<string, unknown> = {}) =>
  new KeyturnError('NOT_FOUND', `${what} was not found`, details);

export const conflict = (message: string, details: Record<string, unknown> = {}) =>
  new KeyturnError('CONFLICT', message, details);

/** Normalises anything thrown into an Error whose message is safe to log. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : 'Unknown error');
}

/** A short description of an error for logs and records: name/code/status, never bodies. */
export function describeError(thrown: unknown): string {
  const e = toError(thrown) as Error & { code?: unknown; statusCode?: unknown };
  const parts = [e.name];
  if (e.code !== undefined) parts.push(String(e.code));
  if (e.statusCode !== undefined) parts.push(`status ${String(e.statusCode)}`);
  return `${parts.join(' ')}: ${e.message}`.slice(0, 500);
}
