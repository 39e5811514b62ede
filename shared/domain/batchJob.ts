/**
 * Batch jobs driven by a queue (re-encryption, abandon, later fleet-wide rekeys): the
 * pure rules. The job document holds the cursor of its next batch under its ETag; a
 * message runs only if it carries that cursor and the batch number, so a redelivered
 * or duplicated message is a no-op and no batch is ever done twice in the count.
 */
import { z } from 'zod';

export type BatchJobState = 'queued' | 'running' | 'completed' | 'failed';

export interface BatchError {
  /** The batch (1-based) that failed. */
  batch: number;
  cursor: string;
  code: string;
  message: string;
  at: string;
  /** Deliveries of that batch that failed so far. */
  attempts: number;
}

export interface BatchJob {
  id: string;
  kind: string;
  /** What the job works on (e.g. the key set's id), for views and logs. */
  subject: string;
  state: BatchJobState;
  /** The kind's own parameters (batch size, …); never secrets. */
  params: Record<string, string | number | boolean>;
  /** The cursor of the next batch (the kind's opaque text). */
  cursor: string;
  /** Batches done so far; the next message must carry it. */
  batches: number;
  processed: number;
  total: number;
  /** The holder of the current batch, until `until` (a crashed holder's claim lapses). */
  claim?: { batch: number; until: string; by: string };
  /** Failed deliveries of the current batch. */
  attempts: number;
  lastError?: BatchError;
  createdAt: string;
  startedAt?: string;
  updatedAt: string;
  completedAt?: string;
}

/** What a queue message carries. */
export const batchMessageSchema = z.strictObject({
  jobId: z.string().regex(/^job-[0-9a-f-]{36}$/),
  batch: z.number().int().min(0),
  cursor: z.string().max(2048),
});
export type BatchMessage = z.infer<typeof batchMessageSchema>;

export const messageFor = (job: BatchJob): BatchMessage => ({ jobId: job.id, batch: job.batches, cursor: job.cursor });

/** Why a message does not run (undefined: it runs). */
export function staleReason(job: BatchJob, message: BatchMessage, now: Date): string | undefined {
  if (job.state === 'completed' || job.state === 'failed') return `job is ${job.state}`;
  if (job.batches !== message.batch || job.cursor !== message.cursor) return 'not the cursor of the next batch (a duplicate or redelivered message)';
  if (job.claim && job.claim.batch === job.batches && Date.parse(job.claim.until) > now.getTime()) return 'the batch is being run by another delivery';
  return undefined;
}

/** Items per second since the job started, and the seconds left at that rate (null while unknown). */
export function progressOf(job: BatchJob, now: Date): { ratePerSecond: number; etaSeconds: number | null } {
  if (!job.startedAt) return { ratePerSecond: 0, etaSeconds: null };
  const end = job.completedAt ? Date.parse(job.completedAt) : now.getTime();
  const seconds = Math.max(0.001, (end - Date.parse(job.startedAt)) / 1000);
  const rate = job.processed / seconds;
  if (job.state === 'completed') return { ratePerSecond: round(rate), etaSeconds: 0 };
  const left = Math.max(0, job.total - job.processed);
  return { ratePerSecond: round(rate), etaSeconds: rate > 0 ? Math.ceil(left / rate) : null };
}

const round = (n: number) => Math.round(n * 100) / 100;

export function jobView(job: BatchJob, now: Date) {
  return {
    id: job.id,
    kind: job.kind,
    subject: job.subject,
    state: job.state,
    processed: job.processed,
    total: job.total,
    batches: job.batches,
    ...progressOf(job, now),
    lastError: job.lastError ?? null,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    completedAt: job.completedAt ?? null,
  };
}
