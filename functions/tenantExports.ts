import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { exportApproveSchema, exportParamsSchema, exportRequestSchema, exportView } from '../shared/domain/tenantExports';
import { tenantParamsSchema } from '../shared/domain/tenantRequests';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { PRINCIPAL_ID_HEADER, resolveIdentity } from '../shared/http/identity';
import { type TenantOpsRoot, contextLogger, root } from '../shared/root';

type Ops = Pick<TenantOpsRoot, 'exports' | 'trustEasyAuthHeader' | 'localStack'>;

const identity = (ops: Ops, request: HttpRequest, declared: unknown, field: string) =>
  resolveIdentity({ principalId: request.headers.get(PRINCIPAL_ID_HEADER), declared, field }, { trustEasyAuthHeader: ops.trustEasyAuthHeader, localStack: ops.localStack }).id;

const NO_STORE = { 'cache-control': 'no-store' };

/** POST /api/tenants/{tenantId}/exports: `{requesterPublicKey, reason, requestedBy?}` → 201 `{export}` awaiting approval. */
export function makeTenantExportRequestHandler(ops: Ops) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const body = await readJsonBody(request, exportRequestSchema);
    const requestedBy = identity(ops, request, body.requestedBy, 'requestedBy');
    const job = await ops.exports(contextLogger(context)).request(tenantId, body, requestedBy);
    return { status: 201, headers: NO_STORE, jsonBody: { export: exportView(job, new Date(job.updatedAt)) } };
  });
}

/** POST …/exports/{exportId}/approve: `{publicKeySha256, approvedBy?}` by another identity → 200 `{export}` with its package built. */
export function makeTenantExportApproveHandler(ops: Ops) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const { exportId } = parseWith(exportParamsSchema, { exportId: request.params.exportId }, 'route');
    const body = await readJsonBody(request, exportApproveSchema);
    const approvedBy = identity(ops, request, body.approvedBy, 'approvedBy');
    const job = await ops.exports(contextLogger(context)).approve(tenantId, exportId, body, approvedBy);
    return { status: 200, headers: NO_STORE, jsonBody: { export: exportView(job, new Date(job.updatedAt)) } };
  });
}

/** GET …/exports/{exportId}/package[?requestedBy=]: the package, for the requester only, until it expires. */
export function makeTenantExportPackageHandler(ops: Ops) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { tenantId } = parseWith(tenantParamsSchema, { tenantId: request.params.tenantId }, 'route');
    const { exportId } = parseWith(exportParamsSchema, { exportId: request.params.exportId }, 'route');
    const declared = request.query.get('requestedBy') ?? undefined;
    const requester = identity(ops, request, declared, 'requestedBy');
    const pkg = await ops.exports(contextLogger(context)).package(tenantId, exportId, requester);
    return { status: 200, headers: NO_STORE, jsonBody: pkg };
  });
}

app.http('tenantExportRequest', {
  route: 'tenants/{tenantId}/exports',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantExportRequestHandler(root().tenantOps),
});

app.http('tenantExportApprove', {
  route: 'tenants/{tenantId}/exports/{exportId}/approve',
  methods: ['POST'],
  authLevel: 'function',
  handler: makeTenantExportApproveHandler(root().tenantOps),
});

app.http('tenantExportPackage', {
  route: 'tenants/{tenantId}/exports/{exportId}/package',
  methods: ['GET'],
  authLevel: 'function',
  handler: makeTenantExportPackageHandler(root().tenantOps),
});
