import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { z } from 'zod';
import { httpHandler, parseWith } from '../shared/http/problem';
import { type KeySetsRoot, contextLogger, root } from '../shared/root';

const jobParams = z.object({ jobId: z.string().regex(/^job-[0-9a-f-]{36}$/, 'expected a job id (job-…)') });

/** GET /api/jobs/{jobId}: {job: {id, kind, state, processed, total, batches, ratePerSecond, etaSeconds, lastError}}. */
export function makeJobGetHandler(keySets: Pick<KeySetsRoot, 'jobs'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { jobId } = parseWith(jobParams, { jobId: request.params.jobId }, 'route');
    return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { job: await keySets.jobs(contextLogger(context)).get(jobId) } };
  });
}

/** POST /api/jobs/{jobId}/resume: a failed job continues from the batch that failed (202); 409 JOB_NOT_RESUMABLE otherwise. */
export function makeJobResumeHandler(keySets: Pick<KeySetsRoot, 'jobs'>) {
  return httpHandler(async (request: HttpRequest, context: InvocationContext) => {
    const { jobId } = parseWith(jobParams, { jobId: request.params.jobId }, 'route');
    return { status: 202, headers: { 'cache-control': 'no-store' }, jsonBody: { job: await keySets.jobs(contextLogger(context)).resume(jobId) } };
  });
}

app.http('jobGet', { route: 'jobs/{jobId}', methods: ['GET'], authLevel: 'function', handler: makeJobGetHandler(root().keySets) });
app.http('jobResume', { route: 'jobs/{jobId}/resume', methods: ['POST'], authLevel: 'function', handler: makeJobResumeHandler(root().keySets) });
