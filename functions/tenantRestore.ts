import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { restoreBodySchema } from '../shared/domain/tenantBackups';
import { tenantView } from '../shared/domain/tenantKeys';
import { tenantParamsSchema } from '../shared/domain/tenantRequests';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_NAME_HEADER, resolveRequester } from '../shared/http/requester';
import { type TenantOpsRoot, contextLogger, root } from '../shared/root';

/**
 * POST /api/tenants/{tenantId}/restore: `{backupId}` → 200 `{tenant}` once the key is back
 * (recovered when soft-deleted, restored from the verified blob when purged);
 * 409 BACKUP_CHECKSUM_MISMATCH or KEY_PRESENT restore nothing.
 */
export function makeTenantRestoreHandler(ops: Pick<TenantOpsRoot, 'restore' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const body = await readJsonBody(request, restoreBodySchema);
    const log = contextLogger(context);
    const { requestedBy } = resolveRequester(
      { principalName: request.headers.get(PRINCIPAL_NAME_HEADER), requestedBy: body.requestedBy },
      { trustEasyAuthHeader: ops.trustEasyAuthHeader, log },
    );
    const tenant = await ops.restore(log).restore(tenantId, body.backupId, requestedBy);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { tenant: tenantView(tenant) } };
  });
}

app.http('tenantRestore', {
  route: 'tenants/{tenantId}/restore',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantRestoreHandler(root().tenantOps),
});
