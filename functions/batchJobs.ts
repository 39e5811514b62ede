import { type InvocationContext, app } from '@azure/functions';
import { batchMessageSchema } from '../shared/domain/batchJob';
import { type KeySetsRoot, contextLogger, root } from '../shared/root';

/**
 * The batch jobs' queue trigger: one message is one batch of one job. A malformed
 * message is dropped (logged); a failing batch throws so the queue delivers it again,
 * and its last delivery (maxDequeueCount) marks the job failed instead of poisoning.
 */
export function makeBatchJobsHandler(keySets: Pick<KeySetsRoot, 'jobs'>) {
  return async (message: unknown, context: InvocationContext): Promise<void> => {
    const log = contextLogger(context);
    const parsed = batchMessageSchema.safeParse(message);
    if (!parsed.success) {
      log.warn('Batch message dropped: not a batch job message', { field: parsed.error.issues[0]?.path.join('.') ?? '(message)' });
      return;
    }
    const dequeueCount = Number((context.triggerMetadata as { dequeueCount?: unknown } | undefined)?.dequeueCount ?? 1);
    await keySets.jobs(log).handle(parsed.data, Number.isFinite(dequeueCount) ? dequeueCount : 1);
  };
}

app.storageQueue('batchJobs', { queueName: '%KEYTURN_BATCH_QUEUE%', connection: 'KEYTURN_QUEUE', handler: makeBatchJobsHandler(root().keySets) });
