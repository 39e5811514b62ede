import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { closeSchema, incidentIdSchema } from '../shared/domain/incident';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';
import { callerOf } from './incidentCaller';

/** POST /api/incidents/{incidentId}/close `{resolution}`: from resolved, or contained with every task done; else 409. */
export function makeIncidentCloseHandler(incidents: Pick<IncidentsRoot, 'service' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const body = await readJsonBody(request, closeSchema);
    const result = await incidents.service(contextLogger(context)).close(incidentId, body.resolution, callerOf(request, incidents.trustEasyAuthHeader, body.reportedBy));
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: result };
  });
}

app.http('incidentClose', { route: 'incidents/{incidentId}/close', methods: ['POST'], authLevel: 'function', handler: makeIncidentCloseHandler(root().incidents) });
