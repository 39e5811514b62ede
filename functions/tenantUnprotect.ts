import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { CONTENT_BODY_BYTES, tenantParamsSchema, unprotectSchema } from '../shared/domain/tenantRequests';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { type TenantsRoot, contextLogger, root } from '../shared/root';
import type { Caller } from '../shared/services/tenants/tenantService';

/** Set by App Service authentication (Easy Auth); trusted only with KEYTURN_TRUST_EASY_AUTH_HEADER. */
const PRINCIPAL_ID_HEADER = 'x-ms-client-principal-id';

/** POST /api/tenants/{tenantId}/unprotect: `{jwe}` → `{plaintext (base64), kid}`; every bad JWE is 400 JWE_INVALID. */
export function makeTenantUnprotectHandler(tenants: Pick<TenantsRoot, 'service' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const body = await readJsonBody(request, unprotectSchema, { maxBytes: CONTENT_BODY_BYTES });
    const principalId = request.headers.get(PRINCIPAL_ID_HEADER);
    const caller: Caller = tenants.trustEasyAuthHeader && principalId ? { authenticated: true, principalId } : { authenticated: false };
    const { plaintext, kid } = await tenants.service(contextLogger(context)).unprotect(tenantId, body.jwe, caller);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { plaintext: plaintext.toString('base64'), kid } };
  });
}

app.http('tenantUnprotect', {
  route: 'tenants/{tenantId}/unprotect',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantUnprotectHandler(root().tenants),
});
