import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { incidentIdSchema } from '../shared/domain/incident';
import { httpHandler, parseWith } from '../shared/http/problem';
import { contextLogger, root } from '../shared/root';
import type { IncidentsRoot } from '../shared/roots/incidents';

/** GET /api/incidents/{incidentId}/verify: `{ok, entries, checkpoints, firstBrokenSeq?, reason?, recovery?, ledgerCheck?}` (200 either way). */
export function makeIncidentVerifyHandler(incidents: Pick<IncidentsRoot, 'verify'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const incidentId = parseWith(incidentIdSchema, request.params.incidentId, 'route.incidentId');
    const { head, ...result } = await incidents.verify(contextLogger(context), incidentId);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { incidentId, ...result, ...(head ? { head } : {}) } };
  });
}

/** GET /api/incidents/verify: every incident (those whose documents or checkpoint secrets are gone too), the ledger, and the ledger against each head. */
export function makeIncidentsVerifyAllHandler(incidents: Pick<IncidentsRoot, 'verifyAll'>) {
  return httpHandler(async (_request: HttpRequest, context: InvocationContext) => {
    const report = await incidents.verifyAll(contextLogger(context));
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: report };
  });
}

app.http('incidentVerify', { route: 'incidents/{incidentId}/verify', methods: ['GET'], authLevel: 'function', handler: makeIncidentVerifyHandler(root().incidents) });
app.http('incidentsVerifyAll', { route: 'incidents/verify', methods: ['GET'], authLevel: 'function', handler: makeIncidentsVerifyAllHandler(root().incidents) });
