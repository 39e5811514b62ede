import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { decodeItemCursor, encodeItemCursor } from '../shared/domain/keySet';
import { LIST_TOP, itemParamsSchema, listItemsQuerySchema, putItemSchema, setParamsSchema } from '../shared/domain/keySetRequests';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { type KeySetsRoot, contextLogger, root } from '../shared/root';

const noStore = { 'cache-control': 'no-store' };
const itemParams = (request: HttpRequest) => parseWith(itemParamsSchema, { set: request.params.set, itemId: request.params.itemId }, 'route');

/** PUT /api/keysets/{set}/items/{itemId} {value, owner}: stored under the set's primary key (201 new, 200 replaced). */
export function makeKeySetItemPutHandler(keySets: Pick<KeySetsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set, itemId } = itemParams(request);
    const body = await readJsonBody(request, putItemSchema, { maxBytes: 128 * 1024 });
    const { created, item } = await keySets.service(contextLogger(context)).putItem(set, itemId, body);
    return { status: created ? 201 : 200, headers: noStore, jsonBody: { item } };
  });
}

/** GET /api/keysets/{set}/items/{itemId}: {value, keyId, owner, updatedAt}; 409 NEEDS_REENTRY / CIPHERTEXT_INVALID / KEYSET_UNAVAILABLE. */
export function makeKeySetItemGetHandler(keySets: Pick<KeySetsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set, itemId } = itemParams(request);
    return { status: 200, headers: noStore, jsonBody: await keySets.service(contextLogger(context)).getItem(set, itemId) };
  });
}

/** DELETE /api/keysets/{set}/items/{itemId}: 204. */
export function makeKeySetItemDeleteHandler(keySets: Pick<KeySetsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set, itemId } = itemParams(request);
    await keySets.service(contextLogger(context)).deleteItem(set, itemId);
    return { status: 204, headers: noStore };
  });
}

/** GET /api/keysets/{set}/items[?top=&continuationToken=]: ids, owners, key ids and states, never values. */
export function makeKeySetItemsListHandler(keySets: Pick<KeySetsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    const q = parseWith(listItemsQuerySchema, { top: request.query.get('top') ?? undefined, continuationToken: request.query.get('continuationToken') ?? undefined }, 'query');
    const after = q.continuationToken ? decodeItemCursor(q.continuationToken) : undefined;
    const page = await keySets.service(contextLogger(context)).listItems(set, { top: q.top ?? LIST_TOP.default, ...(after ? { after } : {}) });
    return { status: 200, headers: noStore, jsonBody: { items: page.items, ...(page.next ? { continuationToken: encodeItemCursor(page.next) } : {}) } };
  });
}

app.http('keySetItemPut', { route: 'keysets/{set}/items/{itemId}', methods: ['PUT'], authLevel: 'function', handler: makeKeySetItemPutHandler(root().keySets) });
app.http('keySetItemGet', { route: 'keysets/{set}/items/{itemId}', methods: ['GET'], authLevel: 'function', handler: makeKeySetItemGetHandler(root().keySets) });
app.http('keySetItemDelete', { route: 'keysets/{set}/items/{itemId}', methods: ['DELETE'], authLevel: 'function', handler: makeKeySetItemDeleteHandler(root().keySets) });
app.http('keySetItems', { route: 'keysets/{set}/items', methods: ['GET'], authLevel: 'function', handler: makeKeySetItemsListHandler(root().keySets) });
