/**
 * Dual control (two people for the dangerous operations: tenant-key and key-set exports,
 * fleet-wide incident playbooks). Pure rules: a request records who asked and when, an
 * approval by a *different* identity who names the request's digest, after an optional
 * waiting period. Identities are stable ids (Easy Auth principal object ids in Azure),
 * resolved at the HTTP edge by `shared/http/identity.ts`.
 */
import { KeyturnError } from '../errors';

export interface DualControlRequest {
  requestedBy: string;
  /** ISO time the request was made. */
  requestedAt: string;
  /** What the approver must name (e.g. the recipient public key's SHA-256), when the request has one. */
  digest?: string;
}

export interface ApprovalInput {
  approvedBy: string;
  /** The digest the approver names; must equal the request's when it has one. */
  digest?: string;
}

export interface DualControlPolicy {
  /** The least time between the request and its approval (0: none). */
  minWaitMs: number;
}

/**
 * Why an approval is refused, as the error to throw; `undefined` when it may proceed.
 * Identities are compared exactly (object ids are case-stable GUIDs in Azure).
 */
export function approvalRefusal(request: DualControlRequest, approval: ApprovalInput, now: Date, policy: DualControlPolicy): KeyturnError | undefined {
  if (approval.approvedBy === request.requestedBy) {
    return new KeyturnError('APPROVER_IS_REQUESTER', 'The approver must be a different identity from the requester', { field: 'approvedBy' });
  }
  if (request.digest !== undefined && approval.digest?.toLowerCase() !== request.digest.toLowerCase()) {
    return new KeyturnError('APPROVAL_DIGEST_MISMATCH', "The approval names another digest than the request's", { field: 'digest' });
  }
  const earliest = Date.parse(request.requestedAt) + policy.minWaitMs;
  if (now.getTime() < earliest) {
    return new KeyturnError('APPROVAL_TOO_EARLY', `Approval is possible from ${new Date(earliest).toISOString()}`, { notBefore: new Date(earliest).toISOString() });
  }
  return undefined;
}
