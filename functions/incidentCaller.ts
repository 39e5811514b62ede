import type { HttpRequest } from '@azure/functions';
import { actorOf } from '../shared/domain/incident';
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
