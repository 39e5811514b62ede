import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { abandonSchema, emptySchema, reencryptSchema, setParamsSchema } from '../shared/domain/keySetRequests';
import { httpHandler, parseWith, readJsonBody } from '../shared/http/problem';
import { type KeySetsRoot, contextLogger, root } from '../shared/root';

/** POST /api/keysets/{set}/reencrypt {batchSize 1–1000, default 100}: 202 {jobId}; the job runs as queue-triggered batches. */
export function makeKeySetReencryptHandler(keySets: Pick<KeySetsRoot, 'reencrypt'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    const { batchSize } = await readJsonBody(request, reencryptSchema);
    const job = await keySets.reencrypt(contextLogger(context), set, batchSize);
    return { status: 202, headers: { 'cache-control': 'no-store', location: `/api/jobs/${job.id}` }, jsonBody: { jobId: job.id } };
  });
}

app.http('keySetReencrypt', { route: 'keysets/{set}/reencrypt', methods: ['POST'], authLevel: 'function', handler: makeKeySetReencryptHandler(root().keySets) });

/** POST /api/keysets/{set}/rewrap {}: every data key re-wrapped under the KEK's new version; no data re-encrypted. */
export function makeKeySetRewrapHandler(keySets: Pick<KeySetsRoot, 'rewrap'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    await readJsonBody(request, emptySchema);
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: await keySets.rewrap(contextLogger(context), set) };
  });
}

/** POST /api/keysets/{set}/abandon {confirm: set, reason, batchSize?}: 202 {jobId}; items of older generations need re-entry. */
export function makeKeySetAbandonHandler(keySets: Pick<KeySetsRoot, 'abandon'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { set } = parseWith(setParamsSchema, { set: request.params.set }, 'route');
    const body = await readJsonBody(request, abandonSchema);
    const job = await keySets.abandon(contextLogger(context), set, body);
    return { status: 202, headers: { 'cache-control': 'no-store', location: `/api/jobs/${job.id}` }, jsonBody: { jobId: job.id } };
  });
}

app.http('keySetRewrap', { route: 'keysets/{set}/rewrap', methods: ['POST'], authLevel: 'function', handler: makeKeySetRewrapHandler(root().keySets) });
app.http('keySetAbandon', { route: 'keysets/{set}/abandon', methods: ['POST'], authLevel: 'function', handler: makeKeySetAbandonHandler(root().keySets) });
