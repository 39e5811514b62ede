import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { createHash } from 'node:crypto';
import { tenantParamsSchema } from '../shared/domain/tenantRequests';
import { httpHandler, parseWith } from '../shared/http/problem';
import { type TenantsRoot, contextLogger, root } from '../shared/root';
import { matchesEtag } from '../shared/services/signing/publication';

/**
 * GET /api/tenants/{tenantId}/keys (anonymous, like a JWKS): the public keys accepted for
 * new content, cacheable for the configured max-age, with an ETag (304 when unchanged).
 */
export function makeTenantKeysHandler(tenants: Pick<TenantsRoot, 'service' | 'keysMaxAgeSeconds'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const body = JSON.stringify(await tenants.service(contextLogger(context)).publishedKeys(tenantId));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    const headers = { 'cache-control': `public, max-age=${tenants.keysMaxAgeSeconds}`, etag };
    if (matchesEtag(request.headers.get('if-none-match'), etag)) return { status: 304, headers };
    return { status: 200, headers: { ...headers, 'content-type': 'application/json' }, body };
  });
}

app.http('tenantKeys', {
  route: 'tenants/{tenantId}/keys',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: makeTenantKeysHandler(root().tenants),
});
