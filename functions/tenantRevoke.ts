import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { revokeSchema, tenantParamsSchema } from '../shared/domain/tenantRequests';
import { tenantView } from '../shared/domain/tenantKeys';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_NAME_HEADER, resolveRequester } from '../shared/http/requester';
import { type TenantsRoot, contextLogger, root } from '../shared/root';

/**
 * POST /api/tenants/{tenantId}/revoke: `{confirm (= tenantId), reason}` → 200 once all use
 * has stopped, with `{complete, remaining}`; posting it again finishes what is left.
 */
export function makeTenantRevokeHandler(tenants: Pick<TenantsRoot, 'revoke' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const body = await readJsonBody(request, revokeSchema);
    const log = contextLogger(context);
    const { requestedBy } = resolveRequester(
      { principalName: request.headers.get(PRINCIPAL_NAME_HEADER), requestedBy: body.requestedBy },
      { trustEasyAuthHeader: tenants.trustEasyAuthHeader, log },
    );
    const { tenant, complete, remaining } = await tenants.revoke(log, tenantId, { confirm: body.confirm, reason: body.reason, requestedBy });
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { tenant: tenantView(tenant), complete, remaining } };
  });
}

app.http('tenantRevoke', {
  route: 'tenants/{tenantId}/revoke',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantRevokeHandler(root().tenants),
});
