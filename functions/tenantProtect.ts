import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { CONTENT_BODY_BYTES, protectSchema, tenantParamsSchema } from '../shared/domain/tenantRequests';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { type TenantsRoot, contextLogger, root } from '../shared/root';

/** POST /api/tenants/{tenantId}/protect: `{plaintext}` (base64, ≤ 64 KiB) → `{jwe, kid}` under the active version. */
export function makeTenantProtectHandler(tenants: Pick<TenantsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const body = await readJsonBody(request, protectSchema, { maxBytes: CONTENT_BODY_BYTES });
    const result = await tenants.service(contextLogger(context)).protect(tenantId, Buffer.from(body.plaintext, 'base64'));
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: result };
  });
}

app.http('tenantProtect', {
  route: 'tenants/{tenantId}/protect',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantProtectHandler(root().tenants),
});
