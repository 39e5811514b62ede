/**
 * The batch-job kernel (beside the step kernel): long jobs as queue-triggered batches.
 * A delivery claims the job's next batch under its ETag, runs it, then advances the
 * cursor (ETag again) and enqueues the next message. Duplicates and redeliveries find
 * another cursor (or a live claim) and do nothing; a batch that keeps failing marks the
 * job `failed` with the batch and its error, and `resume` continues from that batch.
 * A stalled job (a host killed between the advance and the enqueue) is re-enqueued by
 * the resume timer once its claim lapsed.
 */
import { randomUUID } from 'node:crypto';
import { type BatchJob, type BatchMessage, jobView, messageFor, staleReason } from '../../domain/batchJob';
import { ConcurrencyConflict, KeyturnError, describeError, errorFacts, notFound } from '../../errors';
import type { Clock, JobQueue, Logger, Versioned } from '../../ports';
import type { ResumableKind } from './registry';
import type { ResumeReport } from './runner';

export interface BatchJobStore {
  read(id: string): Promise<Versioned<BatchJob> | undefined>;
  create(job: BatchJob): Promise<Versioned<BatchJob>>;
  replace(job: BatchJob, etag: string): Promise<Versioned<BatchJob>>;
  /** Running or queued jobs not updated since `before` (stall candidates), at most `limit`. */
  stalled(before: string, limit: number): Promise<Versioned<BatchJob>[]>;
}

export interface BatchResult {
  processed: number;
  /** The next batch's cursor; null when the job is done. */
  next: string | null;
  /** Wait this long before the next batch (e.g. a final pass after a TTL). */
  delaySeconds?: number;
}

/** A kind of batch job: runs one batch from the job's cursor. Batches must be idempotent per item. */
export interface BatchKind {
  readonly kind: string;
  run(job: BatchJob, log: Logger): Promise<BatchResult>;
}

export interface BatchSettings {
  queue: string;
  /** How long a delivery holds its batch; a crashed holder's batch runs again after it. */
  claimMs: number;
  /** The queue trigger's maxDequeueCount (host.json): the last delivery marks the job failed. */
  maxDequeueCount: number;
}

export interface BatchDeps {
  store: BatchJobStore;
  queue: JobQueue;
  clock: Clock;
  log: Logger;
  settings: BatchSettings;
  /** This process, for claims. */
  owner: string;
}

export class BatchJobs {
  private readonly kinds = new Map<string, BatchKind>();

  constructor(private readonly deps: BatchDeps) {}

  register(kind: BatchKind): this {
    this.kinds.set(kind.kind, kind);
    return this;
  }

  /** Creates the job and enqueues its first batch. */
  async start(input: { kind: string; subject: string; params: BatchJob['params']; total: number; cursor: string; id?: string }): Promise<BatchJob> {
    const now = (await this.deps.clock.now()).toISOString();
    const job: BatchJob = {
      id: input.id ?? newJobId(), kind: input.kind, subject: input.subject, state: 'queued', params: input.params, cursor: input.cursor,
      batches: 0, processed: 0, total: input.total, attempts: 0, createdAt: now, updatedAt: now,
    };
    const created = await this.deps.store.create(job);
    await this.deps.queue.enqueue(this.deps.settings.queue, messageFor(job));
    this.deps.log.info('Batch job queued', { jobId: job.id, kind: job.kind, subject: job.subject, total: job.total });
    return created.doc;
  }

  async get(id: string) {
    const stored = await this.deps.store.read(id);
    if (!stored) throw notFound(`Job '${id}'`, { jobId: id });
    return jobView(stored.doc, await this.deps.clock.now());
  }

  async read(id: string): Promise<BatchJob | undefined> {
    return (await this.deps.store.read(id))?.doc;
  }

  /** A failed job continues from the batch that failed. */
  async resume(id: string) {
    const stored = await this.deps.store.read(id);
    if (!stored) throw notFound(`Job '${id}'`, { jobId: id });
    if (stored.doc.state !== 'failed') {
      throw new KeyturnError('JOB_NOT_RESUMABLE', `Job '${id}' is ${stored.doc.state}; only a failed job resumes`, { jobId: id, state: stored.doc.state });
    }
    const now = await this.deps.clock.now();
    const { claim: _claim, ...rest } = stored.doc;
    void _claim;
    const resumed = await this.deps.store.replace({ ...rest, state: 'running', attempts: 0, updatedAt: now.toISOString() }, stored.etag);
    await this.deps.queue.enqueue(this.deps.settings.queue, messageFor(resumed.doc));
    this.deps.log.info('Batch job resumed', { jobId: id, batch: resumed.doc.batches + 1 });
    return jobView(resumed.doc, now);
  }

  /**
   * One queue delivery. Resolves when the message is done with (ran, or stale); throws
   * to have the queue deliver it again (the batch failed and attempts are left).
   */
  async handle(message: BatchMessage, dequeueCount: number): Promise<'ran' | 'stale' | 'failed'> {
    const { store, clock, log, settings, owner } = this.deps;
    const stored = await store.read(message.jobId);
    if (!stored) {
      log.warn('Batch message for an unknown job: dropped', { jobId: message.jobId });
      return 'stale';
    }
    const now = await clock.now();
    const why = staleReason(stored.doc, message, now);
    if (why) {
      log.info('Batch message skipped', { jobId: message.jobId, batch: message.batch + 1, why });
      return 'stale';
    }
    const kind = this.kinds.get(stored.doc.kind);
    if (!kind) throw new KeyturnError('CONFIG_INVALID', `No batch job kind '${stored.doc.kind}' is registered`, { kind: stored.doc.kind });
    let claimed: Versioned<BatchJob>;
    try {
      claimed = await store.replace(
        {
          ...stored.doc,
          state: 'running',
          startedAt: stored.doc.startedAt ?? now.toISOString(),
          claim: { batch: stored.doc.batches, until: new Date(now.getTime() + settings.claimMs).toISOString(), by: owner },
          updatedAt: now.toISOString(),
        },
        stored.etag,
      );
    } catch (e) {
      if (e instanceof ConcurrencyConflict) return 'stale'; // another delivery took it
      throw e;
    }
    let result: BatchResult;
    try {
      result = await kind.run(claimed.doc, log);
    } catch (e) {
      return this.failed(claimed, e, dequeueCount);
    }
    const at = (await clock.now()).toISOString();
    const { claim: _c, ...job } = claimed.doc;
    void _c;
    const done = result.next === null;
    const advanced: BatchJob = {
      ...job,
      state: done ? 'completed' : 'running',
      cursor: result.next ?? job.cursor,
      batches: job.batches + 1,
      processed: job.processed + result.processed,
      attempts: 0,
      updatedAt: at,
      ...(done ? { completedAt: at } : {}),
    };
    let saved: Versioned<BatchJob>;
    try {
      saved = await store.replace(advanced, claimed.etag);
    } catch (e) {
      if (e instanceof ConcurrencyConflict) return 'stale'; // our claim lapsed and another delivery ran it
      throw e;
    }
    if (!done) await this.deps.queue.enqueue(settings.queue, messageFor(saved.doc), result.delaySeconds ? { visibleAfterSeconds: result.delaySeconds } : {});
    else log.info('Batch job completed', { jobId: job.id, kind: job.kind, processed: saved.doc.processed, batches: saved.doc.batches });
    return 'ran';
  }

  private async failed(claimed: Versioned<BatchJob>, e: unknown, dequeueCount: number): Promise<'failed'> {
    const { store, clock, log, settings } = this.deps;
    const at = (await clock.now()).toISOString();
    const facts = errorFacts(e);
    const code = e instanceof KeyturnError ? e.code : (facts.code ?? facts.name);
    const message = e instanceof KeyturnError ? e.message : `${facts.name}${facts.statusCode ? ` (status ${facts.statusCode})` : ''}`;
    const attempts = claimed.doc.attempts + 1;
    const last = dequeueCount >= settings.maxDequeueCount;
    const { claim: _c, ...job } = claimed.doc;
    void _c;
    const lastError = { batch: job.batches + 1, cursor: job.cursor, code, message, at, attempts };
    log.warn(last ? 'Batch job failed: its batch failed on every delivery' : 'Batch failed; the queue delivers it again', {
      jobId: job.id, batch: lastError.batch, code, attempts, error: describeError(e),
    });
    await store.replace({ ...job, state: last ? 'failed' : job.state, attempts, lastError, updatedAt: at }, claimed.etag).catch(() => undefined);
    if (!last) throw e;
    return 'failed';
  }

  /** The resume timer's part: re-enqueue jobs whose batch lapsed without a message in flight. */
  resumable(): ResumableKind {
    return {
      kind: 'batch-jobs',
      resumeDue: async (limit, round): Promise<ResumeReport> => {
        const now = await this.deps.clock.now();
        // A job untouched for two claim periods has no live delivery (one would have advanced or re-claimed it).
        const before = new Date(now.getTime() - 2 * this.deps.settings.claimMs).toISOString();
        const report: ResumeReport = { due: 0, advanced: 0, errors: 0 };
        for (const { doc, etag } of await this.deps.store.stalled(before, limit)) {
          if (round?.taken.has(doc.id) || round?.ended()) continue;
          round?.taken.add(doc.id);
          report.due++;
          try {
            const { claim: _c, ...rest } = doc;
            void _c;
            const touched = await this.deps.store.replace({ ...rest, updatedAt: now.toISOString() }, etag);
            await this.deps.queue.enqueue(this.deps.settings.queue, messageFor(touched.doc));
            report.advanced++;
          } catch {
            report.errors++;
          }
        }
        return report;
      },
    };
  }
}

export const newJobId = () => `job-${randomUUID()}`;
