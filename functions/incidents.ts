import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { listQuerySchema, openIncidentSchema } from '../shared/domain/incident';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';
import { callerOf, idempotencyKeyOf, identityOf } from './incidentCaller';

/**
 * POST /api/incidents (the portal's "run incident" button): 202 `{incidentId, incident}`;
 * the scope is checked first (400 listing ids that exist nowhere). `Idempotency-Key`
 * replays the answer for the same body (422 IDEMPOTENCY_KEY_REUSED for another).
 */
export function makeIncidentsCreateHandler(incidents: Pick<IncidentsRoot, 'service' | 'trustEasyAuthHeader'> & Partial<Pick<IncidentsRoot, 'localStack'>>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const key = idempotencyKeyOf(request);
    const body = await readJsonBody(request, openIncidentSchema);
    const options = { trustEasyAuthHeader: incidents.trustEasyAuthHeader, localStack: incidents.localStack ?? false };
    // A fleet-wide playbook needs a verified requester (asked only then).
    const caller = { ...callerOf(request, incidents.trustEasyAuthHeader, body.reportedBy), identity: identityOf(request, options, body.reportedBy, 'reportedBy') };
    const answer = await incidents.service(contextLogger(context)).open(body, caller, key);
    return {
      status: answer.status,
      headers: { 'cache-control': 'no-store', location: `/api/incidents/${String(answer.body.incidentId)}`, ...(answer.replayed ? { 'idempotent-replayed': 'true' } : {}) },
      jsonBody: answer.body,
    };
  });
}

/** GET /api/incidents?state=&type=&top=&continuationToken=: newest first, paged. */
export function makeIncidentsListHandler(incidents: Pick<IncidentsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const query = parseWith(listQuerySchema, Object.fromEntries(request.query.entries()), 'query');
    const page = await incidents.service(contextLogger(context)).list({ state: query.state, type: query.type }, { maxItems: query.top, continuation: query.continuationToken });
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: page };
  });
}

app.http('incidentsCreate', { route: 'incidents', methods: ['POST'], authLevel: 'function', handler: makeIncidentsCreateHandler(root().incidents) });
app.http('incidentsList', { route: 'incidents', methods: ['GET'], authLevel: 'function', handler: makeIncidentsListHandler(root().incidents) });
