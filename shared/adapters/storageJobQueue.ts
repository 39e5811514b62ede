import type { TokenCredential } from '@azure/identity';
import type { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { KeyturnError, dependencyError } from '../errors';
import type { JobQueue } from '../ports';

/**
 * Enqueues jobs with @azure/storage-queue for `app.storageQueue` functions. The
 * connection is the KEYTURN_QUEUE setting: a connection string locally (Azurite), or
 * `KEYTURN_QUEUE__queueServiceUri` with the managed identity in Azure. Text is base64
 * JSON, the Functions extension's default message encoding.
 */
export function storageJobQueue(options: { connectionString?: string; queueServiceUri?: string; credential: () => TokenCredential }): JobQueue {
  let service: QueueServiceClient | undefined;
  const created = new Map<string, Promise<QueueClient>>();
  const serviceClient = (): QueueServiceClient => {
    if (service) return service;
    // Required on first use, not imported: module load pulls no SDK (cold start).
    const { QueueServiceClient } = require('@azure/storage-queue') as typeof import('@azure/storage-queue');
    if (options.connectionString) service = QueueServiceClient.fromConnectionString(options.connectionString);
    else if (options.queueServiceUri) service = new QueueServiceClient(options.queueServiceUri, options.credential());
    else throw new KeyturnError('CONFIG_INVALID', 'storageJobQueue needs a connection string or a queue service URI', { settings: ['KEYTURN_QUEUE'] });
    return service;
  };
  const queueClient = (name: string): Promise<QueueClient> => {
    let q = created.get(name);
    if (!q) {
      const client = serviceClient().getQueueClient(name);
      q = client.createIfNotExists().then(() => client);
      // A failed create is retried on the next enqueue.
      q.catch(() => created.delete(name));
      created.set(name, q);
    }
    return q;
  };
  return {
    async enqueue(queue, job, enqueueOptions = {}) {
      try {
        const client = await queueClient(queue);
        const text = Buffer.from(JSON.stringify(job), 'utf8').toString('base64');
        await client.sendMessage(text, enqueueOptions.visibleAfterSeconds ? { visibilityTimeout: enqueueOptions.visibleAfterSeconds } : {});
      } catch (e) {
        throw dependencyError(`Could not enqueue a job on queue '${queue}'`, e, { queue });
      }
    },
  };
}
