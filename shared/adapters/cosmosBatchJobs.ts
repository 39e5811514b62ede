/** Batch jobs in Cosmos DB (`batchJobs`, partitioned by id): ETag-guarded, like every state store. */
import type { BatchJob } from '../domain/batchJob';
import type { BatchJobStore } from '../services/jobs/batchJobs';
import { type ContainerRef, DocumentStore } from './cosmos';

export function cosmosBatchJobStore(container: ContainerRef, ready: () => Promise<void>): BatchJobStore {
  const docs = new DocumentStore<BatchJob>(container, (j) => j.id);
  return {
    async read(id) {
      await ready();
      return docs.read(id, id);
    },
    async create(job) {
      await ready();
      return docs.create(job);
    },
    async replace(job, etag) {
      await ready();
      return docs.replace(job, etag);
    },
    async stalled(before, limit) {
      await ready();
      return docs.query(`SELECT TOP ${Math.max(1, Math.min(100, Math.floor(limit)))} * FROM c WHERE (c.state = 'running' OR c.state = 'queued') AND c.updatedAt < @before ORDER BY c.updatedAt`, [
        { name: '@before', value: before },
      ]);
    },
  };
}
