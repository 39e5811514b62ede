/**
 * One Cosmos DB store for the jobs of every life cycle (rotations, tenant jobs, incident
 * runs, restores, exports, batch jobs): ETag-guarded reads and replaces, create-only
 * writes, and the kernel's due query (`domain/stepKernel.ts`: `dueAt` is absent once
 * nothing is left to do, so "due" is `dueAt <= now`), ordered and paged by Cosmos DB.
 * Each life cycle says only where its jobs live: the partition of a job and of an id.
 */
import type { Versioned } from '../ports';
import { type ContainerRef, DocumentStore, type QueryParam, type Ready } from './cosmos';

export interface CosmosJobStore<J> {
  read(id: string): Promise<Versioned<J> | undefined>;
  /** Throws ConcurrencyConflict('exists') when the id is taken. */
  create(job: J): Promise<Versioned<J>>;
  /** False when the id is taken (the server's 409 decides a race). */
  createOnly(job: J): Promise<boolean>;
  /** Throws ConcurrencyConflict('changed') when the ETag no longer matches. */
  replace(job: J, etag: string): Promise<Versioned<J>>;
  /** Jobs whose `dueAt` has come, in due order, at most `limit`. */
  due(now: Date, limit: number): Promise<J[]>;
  /** One page of due jobs in due order, paged by Cosmos DB (continuation tokens). */
  duePage(now: Date, page: { maxItems: number; continuation?: string }): Promise<{ items: J[]; continuation?: string }>;
}

export interface JobStoreOptions<J> {
  /** The partition key of a job document. */
  partitionOf(job: J): string;
  /** The partition of a job id; undefined: not an id of this store (no such job, nothing asked). */
  partitionOfId(id: string): string | undefined;
  /** Narrows the due rule (`c.dueAt <= @now`), e.g. to one kind's ids in a shared container. */
  dueFilter?: { where: string; params: QueryParam[] };
  /** `due` collects pages of at most this many until `limit`; absent: one page of `limit`. */
  duePageSize?: number;
  ready: Ready;
}

export function cosmosJobStore<J extends { id: string }>(container: ContainerRef, options: JobStoreOptions<J>): CosmosJobStore<J> {
  const docs = new DocumentStore<J>(container, options.partitionOf, options.ready);
  const filter = options.dueFilter ? `${options.dueFilter.where} AND ` : '';
  const dueQuery = `SELECT * FROM c WHERE ${filter}c.dueAt <= @now ORDER BY c.dueAt`;
  const duePage: CosmosJobStore<J>['duePage'] = async (now, page) => {
    const found = await docs.queryPage(dueQuery, [...(options.dueFilter?.params ?? []), { name: '@now', value: now.toISOString() }], page);
    return { items: found.items.map((v) => v.doc), ...(found.continuation ? { continuation: found.continuation } : {}) };
  };
  const pageSize = options.duePageSize;
  return {
    async read(id) {
      const partition = options.partitionOfId(id);
      return partition === undefined ? undefined : docs.read(id, partition);
    },
    create: (job) => docs.create(job),
    createOnly: async (job) => (await docs.createOnly(job)).created,
    replace: (job, etag) => docs.replace(job, etag),
    duePage,
    async due(now, limit) {
      if (pageSize === undefined) return (await duePage(now, { maxItems: limit })).items;
      const out: J[] = [];
      let continuation: string | undefined;
      do {
        const page = await duePage(now, { maxItems: Math.min(pageSize, limit - out.length), ...(continuation ? { continuation } : {}) });
        out.push(...page.items);
        continuation = page.continuation;
      } while (continuation && out.length < limit);
      return out.slice(0, limit);
    },
  };
}
