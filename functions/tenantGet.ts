import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { tenantParamsSchema } from '../shared/domain/tenantRequests';
import { tenantView } from '../shared/domain/tenantKeys';
import { httpHandler, parseWith } from '../shared/http/problem';
import { type TenantsRoot, contextLogger, root } from '../shared/root';

/** GET /api/tenants/{tenantId}: the tenant, its state and its versions (no key material). */
export function makeTenantGetHandler(tenants: Pick<TenantsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const tenant = await tenants.service(contextLogger(context)).get(tenantId);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { tenant: tenantView(tenant) } };
  });
}

app.http('tenantGet', {
  route: 'tenants/{tenantId}',
  methods: ['GET'],
  authLevel: 'function',
  handler: makeTenantGetHandler(root().tenants),
});
