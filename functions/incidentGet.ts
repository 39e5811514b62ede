import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { incidentIdSchema } from '../shared/domain/incident';
import { httpHandler, parseWith } from '../shared/http/problem';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';

/** GET /api/incidents/{incidentId}: the incident, its timeline (oldest first), tasks and metrics; 404 if unknown. */
export function makeIncidentGetHandler(incidents: Pick<IncidentsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const view = await incidents.service(contextLogger(context)).get(incidentId);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: view };
  });
}

app.http('incidentGet', { route: 'incidents/{incidentId}', methods: ['GET'], authLevel: 'function', handler: makeIncidentGetHandler(root().incidents) });
