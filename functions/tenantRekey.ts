import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { rekeySchema, tenantParamsSchema } from '../shared/domain/tenantRequests';
import { tenantView } from '../shared/domain/tenantKeys';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_NAME_HEADER, resolveRequester } from '../shared/http/requester';
import { type TenantsRoot, contextLogger, root } from '../shared/root';

/**
 * POST /api/tenants/{tenantId}/rekey: 200 with the tenant once the new version is active
 * (the previous one stays accepted for the changeover window); naming `fromKid` makes a
 * retry a no-op.
 */
export function makeTenantRekeyHandler(tenants: Pick<TenantsRoot, 'rekeys' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const body = await readJsonBody(request, rekeySchema);
    const log = contextLogger(context);
    const { requestedBy } = resolveRequester(
      { principalName: request.headers.get(PRINCIPAL_NAME_HEADER), requestedBy: body.requestedBy },
      { trustEasyAuthHeader: tenants.trustEasyAuthHeader, log },
    );
    const { reason, fromKid, keyUrl, compromised } = body;
    const result = await tenants.rekeys(log).rekey(tenantId, { reason, fromKid, keyUrl, compromised, requestedBy });
    return {
      status: 200,
      headers: { 'cache-control': 'no-store' },
      jsonBody: { tenant: tenantView(result.tenant), rekeyId: result.rekeyId ?? null, started: result.started },
    };
  });
}

app.http('tenantRekey', {
  route: 'tenants/{tenantId}/rekey',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantRekeyHandler(root().tenants),
});
