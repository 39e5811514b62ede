import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { incidentIdSchema, noteSchema } from '../shared/domain/incident';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';
import { callerOf } from './incidentCaller';

/** POST /api/incidents/{incidentId}/entries `{event, evidence}`: a human note, 201 with the entry as chained. */
export function makeIncidentEntriesHandler(incidents: Pick<IncidentsRoot, 'service' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const body = await readJsonBody(request, noteSchema);
    const entry = await incidents.service(contextLogger(context)).note(incidentId, body, callerOf(request, incidents.trustEasyAuthHeader, body.reportedBy));
    return { status: 201, headers: { 'cache-control': 'no-store' }, jsonBody: { entry } };
  });
}

app.http('incidentEntries', { route: 'incidents/{incidentId}/entries', methods: ['POST'], authLevel: 'function', handler: makeIncidentEntriesHandler(root().incidents) });
