import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { reencryptSchema, setParamsSchema } from '../shared/domain/keySetRequests';
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
