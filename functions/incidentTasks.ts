import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { incidentIdSchema, taskIdSchema, taskSchema, taskUpdateSchema } from '../shared/domain/incident';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';
import { callerOf } from './incidentCaller';

/** POST /api/incidents/{incidentId}/tasks `{title, assignee?, blocking?}`: 201; the incident shows awaiting-action while a blocking task is open. */
export function makeIncidentTaskCreateHandler(incidents: Pick<IncidentsRoot, 'service' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const body = await readJsonBody(request, taskSchema);
    const result = await incidents.service(contextLogger(context)).addTask(incidentId, body, callerOf(request, incidents.trustEasyAuthHeader, body.reportedBy));
    return { status: 201, headers: { 'cache-control': 'no-store' }, jsonBody: result };
  });
}

/** POST /api/incidents/{incidentId}/tasks/{taskId} `{state: open|done, note, finding?}`. */
export function makeIncidentTaskUpdateHandler(incidents: Pick<IncidentsRoot, 'service' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const taskId = parseWith(taskIdSchema, request.params.taskId, 'route.taskId');
    const body = await readJsonBody(request, taskUpdateSchema);
    const result = await incidents.service(contextLogger(context)).updateTask(incidentId, taskId, body, callerOf(request, incidents.trustEasyAuthHeader, body.reportedBy));
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: result };
  });
}

app.http('incidentTaskCreate', { route: 'incidents/{incidentId}/tasks', methods: ['POST'], authLevel: 'function', handler: makeIncidentTaskCreateHandler(root().incidents) });
app.http('incidentTaskUpdate', { route: 'incidents/{incidentId}/tasks/{taskId}', methods: ['POST'], authLevel: 'function', handler: makeIncidentTaskUpdateHandler(root().incidents) });
