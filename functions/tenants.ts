import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { createTenantSchema } from '../shared/domain/tenantRequests';
import { tenantView } from '../shared/domain/tenantKeys';
import { httpHandler, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_NAME_HEADER, resolveRequester } from '../shared/http/requester';
import { type TenantsRoot, contextLogger, root } from '../shared/root';

/** POST /api/tenants: 201 with the tenant once its first key version is active (the same body again: the same tenant); 409 TENANT_EXISTS for another body. */
export function makeTenantsCreateHandler(tenants: Pick<TenantsRoot, 'service' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const body = await readJsonBody(request, createTenantSchema);
    const log = contextLogger(context);
    const { requestedBy } = resolveRequester(
      { principalName: request.headers.get(PRINCIPAL_NAME_HEADER), requestedBy: body.requestedBy },
      { trustEasyAuthHeader: tenants.trustEasyAuthHeader, log },
    );
    const tenant = await tenants.service(log).create({ ...body, requestedBy });
    return {
      status: 201,
      headers: { 'cache-control': 'no-store', location: `/api/tenants/${tenant.tenantId}` },
      jsonBody: { tenant: tenantView(tenant) },
    };
  });
}

app.http('tenantsCreate', {
  route: 'tenants',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantsCreateHandler(root().tenants),
});
