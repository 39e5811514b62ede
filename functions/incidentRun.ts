import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { claimedBySchema, incidentIdSchema } from '../shared/domain/incident';
import { lazySchema } from '../shared/domain/lazySchema';
import { requesterSchema } from '../shared/domain/signingKeys';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';
import { callerOf, identityOf } from './incidentCaller';

const approveSchema = lazySchema(() => z.strictObject({ approvedBy: requesterSchema.optional(), reportedBy: claimedBySchema.optional() }));

/**
 * POST /api/incidents/{incidentId}/approve `{approvedBy?}`: a second identity lets a
 * fleet-wide playbook run (409 APPROVER_IS_REQUESTER for the requester). Identities:
 * Easy Auth's principal id in Azure; `approvedBy` on the local stack only.
 */
export function makeIncidentApproveHandler(incidents: Pick<IncidentsRoot, 'service' | 'trustEasyAuthHeader' | 'localStack'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const body = await readJsonBody(request, approveSchema);
    const options = { trustEasyAuthHeader: incidents.trustEasyAuthHeader, localStack: incidents.localStack };
    const caller = { ...callerOf(request, incidents.trustEasyAuthHeader, body.reportedBy), identity: identityOf(request, options, body.approvedBy, 'approvedBy') };
    const result = await incidents.service(contextLogger(context)).approve(incidentId, caller);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: result };
  });
}

/** POST /api/incidents/{incidentId}/resume: a run that ended `failed` continues at its failed step; an active run is driven now. */
export function makeIncidentResumeHandler(incidents: Pick<IncidentsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const result = await incidents.service(contextLogger(context)).resume(incidentId);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: result };
  });
}

app.http('incidentApprove', { route: 'incidents/{incidentId}/approve', methods: ['POST'], authLevel: 'function', handler: makeIncidentApproveHandler(root().incidents) });
app.http('incidentResume', { route: 'incidents/{incidentId}/resume', methods: ['POST'], authLevel: 'function', handler: makeIncidentResumeHandler(root().incidents) });
