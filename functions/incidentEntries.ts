import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { incidentIdSchema, noteSchema } from '../shared/domain/incident';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';
import { callerOf, idempotencyKeyOf } from './incidentCaller';

/**
 * POST /api/incidents/{incidentId}/entries `{event, evidence}`: a human note, 201 with the
 * entry as chained; 409 INCIDENT_CLOSED once closed. `Idempotency-Key` answers the same
 * entry for the same note (422 IDEMPOTENCY_KEY_REUSED for another).
 */
export function makeIncidentEntriesHandler(incidents: Pick<IncidentsRoot, 'service' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const key = idempotencyKeyOf(request);
    const body = await readJsonBody(request, noteSchema);
    const { reportedBy, ...note } = body;
    const answer = await incidents.service(contextLogger(context)).note(incidentId, note, callerOf(request, incidents.trustEasyAuthHeader, reportedBy), key);
    return { status: answer.status, headers: { 'cache-control': 'no-store', ...(answer.replayed ? { 'idempotent-replayed': 'true' } : {}) }, jsonBody: answer.body };
  });
}

app.http('incidentEntries', { route: 'incidents/{incidentId}/entries', methods: ['POST'], authLevel: 'function', handler: makeIncidentEntriesHandler(root().incidents) });
