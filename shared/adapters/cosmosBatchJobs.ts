/** Batch jobs in Cosmos DB (`batchJobs`, partitioned by id): ETag-guarded, like every state store. */
import type { BatchJob } from '../domain/batchJob';
import type { BatchJobStore } from '../services/jobs/batchJobs';
import { type ContainerRef, DocumentStore, type Ready } from './cosmos';

/** No due rule: a batch job is driven by its queue messages; the resume timer looks for stalls. */
export function cosmosBatchJobStore(container: ContainerRef, ready: Ready): BatchJobStore {
  const docs = new DocumentStore<BatchJob>(container, (j) => j.id, ready);
  return {
    read: (id) => docs.read(id, id),
    create: (job) => docs.create(job),
    replace: (job, etag) => docs.replace(job, etag),
    stalled: (before, limit) =>
      docs.query(`SELECT TOP ${Math.max(1, Math.min(100, Math.floor(limit)))} * FROM c WHERE (c.state = 'running' OR c.state = 'queued') AND c.updatedAt < @before ORDER BY c.updatedAt`, [
        { name: '@before', value: before },
      ]),
  };
}
