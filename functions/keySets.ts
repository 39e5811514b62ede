import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { createSetSchema, emptySchema, keyParamsSchema, setParamsSchema } from '../shared/domain/keySetRequests';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { type KeySetsRoot, contextLogger, root } from '../shared/root';

const noStore = { 'cache-control': 'no-store' };

/** PUT /api/keysets/{set} {kekUrl?}: 201 with the new set (its KEK and first key); the same PUT again → 200. */
export function makeKeySetPutHandler(keySets: Pick<KeySetsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    const body = await readJsonBody(request, createSetSchema);
    const { created, view } = await keySets.service(contextLogger(context)).createSet(set, body);
    return { status: created ? 201 : 200, headers: { ...noStore, location: `/api/keysets/${set}` }, jsonBody: { keySet: view } };
  });
}

/** GET /api/keysets/{set}: keys, items per key, `exportStale`. */
export function makeKeySetGetHandler(keySets: Pick<KeySetsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    return { status: 200, headers: noStore, jsonBody: { keySet: await keySets.service(contextLogger(context)).view(set) } };
  });
}

/** POST /api/keysets/{set}/keys {}: a new primary key; from this answer on new writes use it. */
export function makeKeySetAddKeyHandler(keySets: Pick<KeySetsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    await readJsonBody(request, emptySchema);
    return { status: 201, headers: noStore, jsonBody: { keySet: await keySets.service(contextLogger(context)).addKey(set) } };
  });
}

/** POST /api/keysets/{set}/keys/{keyId}/retire: 409 KEY_IN_USE while an item uses it. */
export function makeKeySetRetireKeyHandler(keySets: Pick<KeySetsRoot, 'service'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set, keyId } = parseWith(keyParamsSchema, { set: request.params.set, keyId: request.params.keyId }, 'route');
    return { status: 200, headers: noStore, jsonBody: { keySet: await keySets.service(contextLogger(context)).retireKey(set, keyId) } };
  });
}

app.http('keySetPut', { route: 'keysets/{set}', methods: ['PUT'], authLevel: 'function', handler: makeKeySetPutHandler(root().keySets) });
app.http('keySetGet', { route: 'keysets/{set}', methods: ['GET'], authLevel: 'function', handler: makeKeySetGetHandler(root().keySets) });
app.http('keySetAddKey', { route: 'keysets/{set}/keys', methods: ['POST'], authLevel: 'function', handler: makeKeySetAddKeyHandler(root().keySets) });
app.http('keySetRetireKey', { route: 'keysets/{set}/keys/{keyId}/retire', methods: ['POST'], authLevel: 'function', handler: makeKeySetRetireKeyHandler(root().keySets) });
