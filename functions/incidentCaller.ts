import type { HttpRequest } from '@azure/functions';
import { actorOf } from '../shared/domain/incident';
import { ValidationError } from '../shared/errors';
import { PRINCIPAL_ID_HEADER, resolveIdentity } from '../shared/http/identity';
import { PRINCIPAL_NAME_HEADER } from '../shared/http/requester';
import type { Caller } from '../shared/services/incidents/service';

/**
 * Who writes an incident entry: the verified principal (App Service authentication's
 * headers, when trusted) or `function-key`, and apart from it what the body claims
 * (`reportedBy`, never trusted). Registers no function.
 */
export function callerOf(request: HttpRequest, trustEasyAuthHeader: boolean, reportedBy: string | undefined): Caller {
  const actor = actorOf({ principalId: request.headers.get(PRINCIPAL_ID_HEADER), principalName: request.headers.get(PRINCIPAL_NAME_HEADER) }, trustEasyAuthHeader);
  return { actor, claimedBy: reportedBy ?? null };
}

/**
 * The caller's verified identity for dual control (a fleet-wide playbook's requester or
 * approver), resolved only when asked: Easy Auth's principal id in Azure (the body's
 * `field` is then ignored), the body's declared id on the local stack only.
 */
export function identityOf(request: HttpRequest, options: { trustEasyAuthHeader: boolean; localStack: boolean }, declared: string | undefined, field: string): () => string {
  return () => resolveIdentity({ principalId: request.headers.get(PRINCIPAL_ID_HEADER), declared: options.trustEasyAuthHeader ? undefined : declared, field }, options).id;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** The optional `Idempotency-Key` header (1–200 visible ASCII characters, else a 400 naming it). */
export function idempotencyKeyOf(request: HttpRequest): string | undefined {
  const key = request.headers.get('idempotency-key') ?? undefined;
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw new ValidationError('Idempotency-Key', 'Idempotency-Key: expected 1–200 visible ASCII characters');
  return key;
}
