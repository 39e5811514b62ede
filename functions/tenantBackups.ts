import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { backupBodySchema, backupView } from '../shared/domain/tenantBackups';
import { tenantParamsSchema } from '../shared/domain/tenantRequests';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_NAME_HEADER, resolveRequester } from '../shared/http/requester';
import { type TenantOpsRoot, contextLogger, root } from '../shared/root';

/**
 * POST /api/tenants/{tenantId}/backups: `{}` → 201 `{backup}` (Key Vault's backup of the
 * tenant's key, every version, in Blob storage with its SHA-256); GET lists them.
 */
export function makeTenantBackupsHandler(ops: Pick<TenantOpsRoot, 'backups' | 'trustEasyAuthHeader'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const log = contextLogger(context);
    if (request.method === 'GET') {
      const backups = await ops.backups(log).list(tenantId);
      return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { backups: backups.map(backupView) } };
    }
    const body = await readJsonBody(request, backupBodySchema);
    const { requestedBy } = resolveRequester(
      { principalName: request.headers.get(PRINCIPAL_NAME_HEADER), requestedBy: body.requestedBy },
      { trustEasyAuthHeader: ops.trustEasyAuthHeader, log },
    );
    const backup = await ops.backups(log).create(tenantId, requestedBy);
    return { status: 201, headers: { 'cache-control': 'no-store' }, jsonBody: { backup: backupView(backup) } };
  });
}

app.http('tenantBackups', {
  route: 'tenants/{tenantId}/backups',
  methods: ['GET', 'POST'],
  authLevel: 'function',
  handler: makeTenantBackupsHandler(root().tenantOps),
});
