/**
 * The batch-job kernel with an in-memory store (real ETag checks) and a recording queue:
 * a message runs only with the job's cursor; duplicates, stale and concurrent deliveries
 * do nothing; a failing batch is retried until the last delivery marks the job failed;
 * resume continues from that batch; a stalled job is re-enqueued once its claim lapsed.
 */
import { type BatchJob, type BatchMessage, progressOf } from '../../../shared/domain/batchJob';
import { ConcurrencyConflict, KeyturnError } from '../../../shared/errors';
import type { Versioned } from '../../../shared/ports';
import { type BatchJobStore, BatchJobs, type BatchKind } from '../../../shared/services/jobs/batchJobs';
import { FakeClock, silentLog } from '../tenants/fakes';

class MemoryJobs implements BatchJobStore {
  docs = new Map<string, Versioned<BatchJob>>();
  private n = 0;
  async read(id: string) {
    const d = this.docs.get(id);
    return d ? structuredClone(d) : undefined;
  }
  async create(job: BatchJob) {
    if (this.docs.has(job.id)) throw new ConcurrencyConflict('exists', job.id);
    const v = { doc: structuredClone(job), etag: `e${++this.n}` };
    this.docs.set(job.id, v);
    return structuredClone(v);
  }
  async replace(job: BatchJob, etag: string) {
    if (this.docs.get(job.id)?.etag !== etag) throw new ConcurrencyConflict('changed', job.id);
    const v = { doc: structuredClone(job), etag: `e${++this.n}` };
    this.docs.set(job.id, v);
    return structuredClone(v);
  }
  async stalled(before: string) {
    return [...this.docs.values()].filter((d) => (d.doc.state === 'running' || d.doc.state === 'queued') && d.doc.updatedAt < before).map((d) => structuredClone(d));
  }
}

/** Counts 0..total in batches of `size`; `failAt` makes that batch throw. */
function countingKind(total: number, size: number, seen: number[], failAt?: { value?: number }): BatchKind {
  return {
    kind: 'count',
    async run(job) {
      const from = Number(job.cursor);
      if (failAt?.value === from) throw new KeyturnError('CIPHERTEXT_INVALID', 'bad item');
      const to = Math.min(total, from + size);
      for (let i = from; i < to; i++) seen.push(i);
      return { processed: to - from, next: to >= total ? null : String(to) };
    },
  };
}

function setup(total = 10, size = 3, failAt?: { value?: number }) {
  const store = new MemoryJobs();
  const sent: BatchMessage[] = [];
  const clock = new FakeClock(new Date('2026-01-01T00:00:00Z'));
  const seen: number[] = [];
  const jobs = new BatchJobs({
    store,
    queue: { enqueue: async (_q, m) => void sent.push(m as BatchMessage) },
    clock,
    log: silentLog,
    settings: { queue: 'q', claimMs: 60_000, maxDequeueCount: 3 },
    owner: 'test',
  }).register(countingKind(total, size, seen, failAt));
  /** Delivers queued messages (in order) until none is left. */
  const drain = async () => {
    while (sent.length) await jobs.handle(sent.shift()!, 1);
  };
  return { store, sent, clock, seen, jobs, drain };
}

describe('batch jobs', () => {
  test('run batch after batch to completion; every item once', async () => {
    const { jobs, drain, seen } = setup();
    const job = await jobs.start({ kind: 'count', subject: 's', params: {}, total: 10, cursor: '0' });
    await drain();
    expect(seen).toEqual([...Array(10).keys()]);
    expect(await jobs.get(job.id)).toMatchObject({ state: 'completed', processed: 10, total: 10, batches: 4, etaSeconds: 0, lastError: null });
  });

  test('a duplicate of a message, or a stale one, is a no-op', async () => {
    const { jobs, sent, seen, drain } = setup();
    const job = await jobs.start({ kind: 'count', subject: 's', params: {}, total: 10, cursor: '0' });
    const first = sent[0]!;
    expect(await jobs.handle(first, 1)).toBe('ran');
    expect(await jobs.handle(first, 2)).toBe('stale');
    sent.push({ ...sent[0]! }); // a duplicate of the next
    await drain();
    expect(seen).toEqual([...Array(10).keys()]);
    expect((await jobs.get(job.id)).batches).toBe(4);
  });

  test('a delivery while another holds the batch does nothing; after the claim lapses it runs', async () => {
    const { jobs, sent, store, clock } = setup();
    const job = await jobs.start({ kind: 'count', subject: 's', params: {}, total: 10, cursor: '0' });
    const stored = (await store.read(job.id))!;
    await store.replace({ ...stored.doc, claim: { batch: 0, until: new Date(clock.time.getTime() + 60_000).toISOString(), by: 'other' } }, stored.etag);
    expect(await jobs.handle(sent[0]!, 2)).toBe('stale');
    clock.advance(61_000);
    expect(await jobs.handle(sent[0]!, 3)).toBe('ran');
  });

  test('a failing batch is delivered again; its last delivery fails the job with the batch and code; resume finishes it', async () => {
    const failAt = { value: 3 as number | undefined };
    const { jobs, sent, seen } = setup(10, 3, failAt);
    const job = await jobs.start({ kind: 'count', subject: 's', params: {}, total: 10, cursor: '0' });
    await jobs.handle(sent.shift()!, 1);
    const second = sent.shift()!;
    await expect(jobs.handle(second, 1)).rejects.toThrow('bad item');
    await expect(jobs.handle(second, 2)).rejects.toThrow('bad item');
    expect(await jobs.handle(second, 3)).toBe('failed');
    const failed = await jobs.get(job.id);
    expect(failed).toMatchObject({ state: 'failed', batches: 1, lastError: { batch: 2, code: 'CIPHERTEXT_INVALID', attempts: 3, cursor: '3' } });
    expect(await jobs.handle(second, 1)).toBe('stale');
    await expect(jobs.resume(job.id)).resolves.toMatchObject({ state: 'running' });
    await expect(jobs.resume(job.id)).rejects.toMatchObject({ code: 'JOB_NOT_RESUMABLE' });
    failAt.value = undefined;
    while (sent.length) await jobs.handle(sent.shift()!, 1);
    expect(await jobs.get(job.id)).toMatchObject({ state: 'completed', processed: 10 });
    expect(seen).toEqual([...Array(10).keys()]);
  });

  test('a stalled job (no message in flight) is re-enqueued by the resume timer', async () => {
    const { jobs, sent, clock } = setup();
    await jobs.start({ kind: 'count', subject: 's', params: {}, total: 10, cursor: '0' });
    sent.length = 0; // the message was lost (host killed between the write and the enqueue)
    expect(await jobs.resumable().resumeDue(10)).toEqual({ due: 0, advanced: 0, errors: 0 });
    clock.advance(121_000);
    expect(await jobs.resumable().resumeDue(10)).toEqual({ due: 1, advanced: 1, errors: 0 });
    expect(sent).toHaveLength(1);
  });

  test('progress: items per second since the start and the seconds left at that rate', () => {
    const job = { state: 'running', startedAt: '2026-01-01T00:00:00.000Z', processed: 50, total: 150 } as BatchJob;
    expect(progressOf(job, new Date('2026-01-01T00:00:10.000Z'))).toEqual({ ratePerSecond: 5, etaSeconds: 20 });
    expect(progressOf({ ...job, startedAt: undefined }, new Date())).toEqual({ ratePerSecond: 0, etaSeconds: null });
  });
});
