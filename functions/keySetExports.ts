import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { emptySchema, exportApproveSchema, exportParamsSchema, exportRequestSchema, importSchema, setParamsSchema } from '../shared/domain/keySetRequests';
import { PRINCIPAL_ID_HEADER, resolveIdentity } from '../shared/http/identity';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { type KeySetsRoot, contextLogger, root } from '../shared/root';

const noStore = { 'cache-control': 'no-store' };
type Root = Pick<KeySetsRoot, 'requestExport' | 'approveExport' | 'kek' | 'replaceKek' | 'importKeys' | 'identity'>;

/** POST /api/keysets/{set}/exports {recipientPublicKey, reason, requestedBy?}: 201, awaiting a second identity's approval. */
export function makeKeySetExportRequestHandler(keySets: Root) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    const body = await readJsonBody(request, exportRequestSchema);
    const who = resolveIdentity({ principalId: request.headers.get(PRINCIPAL_ID_HEADER), declared: body.requestedBy, field: 'requestedBy' }, keySets.identity);
    const exported = await keySets.requestExport(contextLogger(context), set, { recipientPublicKey: body.recipientPublicKey, reason: body.reason, requestedBy: who.id });
    return { status: 201, headers: { ...noStore, location: `/api/keysets/${set}/exports/${exported.exportId}` }, jsonBody: { export: exported } };
  });
}

/** POST /api/keysets/{set}/exports/{exportId}/approve {publicKeySha256, approvedBy?}: writes the file; answers its blob name and checksum. */
export function makeKeySetExportApproveHandler(keySets: Root) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set, exportId } = parseWith(exportParamsSchema, { set: request.params.set, exportId: request.params.exportId }, 'route');
    const body = await readJsonBody(request, exportApproveSchema);
    const who = resolveIdentity({ principalId: request.headers.get(PRINCIPAL_ID_HEADER), declared: body.approvedBy, field: 'approvedBy' }, keySets.identity);
    const exported = await keySets.approveExport(contextLogger(context), set, exportId, { publicKeySha256: body.publicKeySha256, approvedBy: who.id });
    return { status: 200, headers: noStore, jsonBody: { export: exported } };
  });
}

/** GET /api/keysets/{set}/kek: the current KEK's public key (JWK and PEM), what an import encrypts data keys to. Read only: 409 KEK_UNAVAILABLE when it is gone. */
export function makeKeySetKekHandler(keySets: Root) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    return { status: 200, headers: noStore, jsonBody: await keySets.kek(contextLogger(context), set) };
  });
}

/** POST /api/keysets/{set}/kek/replace {}: a new Keyturn-owned KEK for one that is deleted or purged (409 KEK_PRESENT while it exists). */
export function makeKeySetKekReplaceHandler(keySets: Root) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    await readJsonBody(request, emptySchema);
    return { status: 200, headers: noStore, jsonBody: await keySets.replaceKek(contextLogger(context), set) };
  });
}

/** POST /api/keysets/{set}/import {keys: [{keyId, wrapped}]}: data keys re-encrypted to the current KEK; the set is available again. */
export function makeKeySetImportHandler(keySets: Root) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    const body = await readJsonBody(request, importSchema, { maxBytes: 1024 * 1024 });
    return { status: 200, headers: noStore, jsonBody: await keySets.importKeys(contextLogger(context), set, body) };
  });
}

app.http('keySetExportRequest', { route: 'keysets/{set}/exports', methods: ['POST'], authLevel: 'function', handler: makeKeySetExportRequestHandler(root().keySets) });
app.http('keySetExportApprove', { route: 'keysets/{set}/exports/{exportId}/approve', methods: ['POST'], authLevel: 'function', handler: makeKeySetExportApproveHandler(root().keySets) });
app.http('keySetKek', { route: 'keysets/{set}/kek', methods: ['GET'], authLevel: 'function', handler: makeKeySetKekHandler(root().keySets) });
app.http('keySetKekReplace', { route: 'keysets/{set}/kek/replace', methods: ['POST'], authLevel: 'function', handler: makeKeySetKekReplaceHandler(root().keySets) });
app.http('keySetImport', { route: 'keysets/{set}/import', methods: ['POST'], authLevel: 'function', handler: makeKeySetImportHandler(root().keySets) });
