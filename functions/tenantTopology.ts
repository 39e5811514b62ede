import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { tenantView } from '../shared/domain/tenantKeys';
import { tenantParamsSchema } from '../shared/domain/tenantRequests';
import { topologySchema } from '../shared/domain/tenantTopology';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_NAME_HEADER, resolveRequester } from '../shared/http/requester';
import { switchTopology } from '../shared/services/tenants/topology';
import { type TenantsRoot, contextLogger, root } from '../shared/root';

/**
 * POST /api/tenants/{tenantId}/topology: `{to, keyUrl?, reason}` → 200 `{tenant}` once a key
 * of the other kind is active (a rekey; to BYOK, `keyUrl` passes the onboarding checks).
 */
export function makeTenantTopologyHandler(tenants: Pick<TenantsRoot, 'service' | 'rekeys' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const body = await readJsonBody(request, topologySchema);
    const log = contextLogger(context);
    const { requestedBy } = resolveRequester(
      { principalName: request.headers.get(PRINCIPAL_NAME_HEADER), requestedBy: body.requestedBy },
      { trustEasyAuthHeader: tenants.trustEasyAuthHeader, log },
    );
    const tenant = await switchTopology({ tenants: tenants.service(log), rekeys: tenants.rekeys(log) }, tenantId, body, requestedBy);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { tenant: tenantView(tenant) } };
  });
}

app.http('tenantTopology', {
  route: 'tenants/{tenantId}/topology',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantTopologyHandler(root().tenants),
});
