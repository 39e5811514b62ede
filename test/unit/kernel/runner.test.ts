/**
 * The step runner and the job registry with a fake job kind (a two-step "ticket") over
 * an in-memory ETag store: claim races, lease lapsing, failures with backoff, lost
 * records, and resuming the due work of several kinds.
 */
import { ConcurrencyConflict } from '../../../shared/errors';
import { type StepJob, byDueAt, isDue, stepKernel } from '../../../shared/domain/stepKernel';
import type { Versioned } from '../../../shared/ports';
import { JobRegistry, resumable } from '../../../shared/services/jobs/registry';
import { type JobKind, type JobStore, StepRunner } from '../../../shared/services/jobs/runner';

const STEPS = ['open', 'close'] as const;
type Step = (typeof STEPS)[number];
interface Ticket extends StepJob<Step> {
  status: 'active' | 'completed' | 'failed';
  opened?: string;
}

const kernel = stepKernel<Ticket, Step, 'completed' | 'failed'>({ steps: STEPS, label: 'Ticket', refuse: (m) => new Error(m) });

class Clock {
  time = new Date('2030-01-01T00:00:00Z');
  async now() {
    return new Date(this.time);
  }
  advance(ms: number) {
    this.time = new Date(this.time.getTime() + ms);
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

class Store implements JobStore<Ticket> {
  docs = new Map<string, Versioned<Ticket>>();
  private n = 0;
  beforeReplace?: (doc: Ticket) => Promise<void>;
  put(doc: Ticket) {
    this.docs.set(doc.id, { doc: structuredClone(doc), etag: String(++this.n) });
  }
  async read(id: string) {
    await tick();
    const v = this.docs.get(id);
    return v && { doc: structuredClone(v.doc), etag: v.etag };
  }
  async replace(doc: Ticket, etag: string) {
    await tick();
    await this.beforeReplace?.(doc);
    if (this.docs.get(doc.id)?.etag !== etag) throw new ConcurrencyConflict('changed', doc.id);
    this.put(doc);
    return this.docs.get(doc.id)!;
  }
  async due(now: Date, limit: number) {
    return [...this.docs.values()].map((v) => v.doc).filter((d) => isDue(d, now)).sort(byDueAt).slice(0, limit);
  }
}

const LEASE = 300_000;
const logLines: string[] = [];
const log = {
  info: (m: string) => void logLines.push(`info ${m}`),
  warn: (m: string) => void logLines.push(`warn ${m}`),
  error: (m: string) => void logLines.push(`error ${m}`),
};
const noFaults = { hit: () => {} };

function world(kindName = 'tickets') {
  const clock = new Clock();
  const store = new Store();
  const effects: string[] = [];
  const lost: string[] = [];
  const behaviour: { open?: (check: (b: string) => Promise<void>) => Promise<void>; failOpen?: number } = {};
  const kind: JobKind<Ticket, Step, { step: Step; token: string }> = {
    kind: kindName,
    label: 'Ticket',
    idKey: 'ticketId',
    store,
    leaseMs: LEASE,
    decide: kernel.decide,
    claim: kernel.claim,
    steps: {
      async open({ job, token, check }) {
        await tick();
        if (behaviour.failOpen && behaviour.failOpen-- > 0) throw new Error('provider down');
        await behaviour.open?.(check);
        await check('opening');
        effects.push(`open:${job.id}:${token}`);
        return { step: 'open', token };
      },
      async close({ job, token }) {
        effects.push(`close:${job.id}:${token}`);
        return { step: 'close', token };
      },
    },
    async record({ job, step, token, now }, result) {
      const next = kernel.complete(job, step, kernel.requireLease(job, step, token), now);
      if (result.step === 'open') next.opened = result.token;
      return { next, written: () => {} };
    },
    async failed({ job, token, now }) {
      return { next: kernel.fail(job, token, now, { maxAttempts: 3, jitter: 0, mayFail: true }), written: () => {} };
    },
    async cleanup(job, now) {
      return { next: kernel.recordCleanup(job, true, now, 0), written: () => {} };
    },
    async lost(run, result) {
      lost.push(`${run.step}:${result.token}`);
    },
  };
  let n = 0;
  const runner = (owner: string) => new StepRunner({ clock, faults: noFaults, log, owner, newToken: () => `${owner}-${++n}` });
  const add = (id: string) => store.put(kernel.touched({ id, status: 'active', step: 'open', steps: {}, updatedAt: clock.time.toISOString() }, clock.time));
  return { clock, store, effects, lost, behaviour, kind, runner, add };
}

test('concurrent runners: each step is performed once, by the run that claimed it', async () => {
  const w = world();
  w.add('t1');
  const runners = ['a', 'b', 'c'].map(w.runner);
  await Promise.all([...runners, ...runners].map((r) => r.advance(w.kind, 't1')));
  expect(w.store.docs.get('t1')!.doc.status).toBe('completed');
  expect(w.effects.filter((e) => e.startsWith('open'))).toHaveLength(1);
  expect(w.effects.filter((e) => e.startsWith('close'))).toHaveLength(1);
  // The recorded token is the one whose side effect ran.
  expect(w.effects[0]).toBe(`open:t1:${w.store.docs.get('t1')!.doc.opened}`);
});

test('a step whose lease is about to lapse is abandoned unrecorded; after expiry another runner finishes it', async () => {
  const w = world();
  w.add('t1');
  w.behaviour.open = async () => w.clock.advance(LEASE - 60_000); // slow: less than the margin left
  const first = await w.runner('a').advance(w.kind, 't1');
  expect(first.status).toBe('active');
  expect(w.effects).toEqual([]);
  const stored = w.store.docs.get('t1')!.doc;
  expect(stored.lease?.owner).toMatch(/^a:/);
  expect(stored.steps.open!.failures).toBe(0);
  expect(logLines.some((l) => l.startsWith('warn Ticket step abandoned'))).toBe(true);

  w.behaviour.open = undefined;
  expect((await w.runner('b').advance(w.kind, 't1')).status).toBe('active'); // still leased by a
  w.clock.advance(60_000);
  const done = await w.runner('b').advance(w.kind, 't1');
  expect(done.status).toBe('completed');
  expect(done.steps.open!.tokens).toHaveLength(2);
});

test('a failing step is recorded with backoff and retried once it is due', async () => {
  const w = world();
  w.add('t1');
  w.behaviour.failOpen = 2;
  const r = w.runner('a');
  const after1 = await r.advance(w.kind, 't1');
  expect(after1).toMatchObject({ status: 'active', step: 'open' });
  expect(after1.steps.open!.failures).toBe(1);
  expect(after1.dueAt).toBe(after1.nextAttemptAt);
  expect(await r.resumeDue(w.kind)).toEqual({ due: 0, advanced: 0, errors: 0 }); // not due before its backoff
  w.clock.advance(Date.parse(after1.nextAttemptAt!) - w.clock.time.getTime());
  expect(await r.resumeDue(w.kind)).toEqual({ due: 1, advanced: 1, errors: 0 });
  expect(w.store.docs.get('t1')!.doc.steps.open!.failures).toBe(2);
  w.clock.advance(3_600_000);
  await r.resumeDue(w.kind);
  expect(w.store.docs.get('t1')!.doc.status).toBe('completed');
});

test('a record that loses the race is handed to `lost`, and the runner re-reads and re-decides', async () => {
  const w = world();
  w.add('t1');
  let once = true;
  w.store.beforeReplace = async (doc) => {
    if (once && doc.opened) {
      once = false;
      // Someone else writes first (e.g. an operator's change): the record's ETag no longer matches.
      w.store.put({ ...w.store.docs.get('t1')!.doc });
    }
  };
  const done = await w.runner('a').advance(w.kind, 't1');
  expect(w.lost).toHaveLength(1);
  expect(done.status).toBe('completed');
  expect(w.effects.filter((e) => e.startsWith('open'))).toHaveLength(2); // the step ran again under its own claim
});

test('the registry resumes the due work of every kind, in due order, and one failing kind does not stop the others', async () => {
  const a = world('a-kind');
  const b = world('b-kind');
  for (const id of ['x', 'y']) a.add(id);
  b.add('z');
  a.store.docs.get('y')!.doc.dueAt = '2029-12-31T00:00:00.000Z'; // waiting longest
  const seen: string[] = [];
  const original = a.kind.steps.open;
  a.kind.steps.open = async (run) => (seen.push(run.job.id), original(run));
  const registry = new JobRegistry(log).register(resumable(a.runner('r'), a.kind)).register(resumable(b.runner('r'), b.kind));
  expect(await registry.resumeDue()).toEqual({
    due: 3,
    advanced: 3,
    errors: 0,
    kinds: { 'a-kind': { due: 2, advanced: 2, errors: 0 }, 'b-kind': { due: 1, advanced: 1, errors: 0 } },
  });
  expect(seen).toEqual(['y', 'x']);
  expect(() => registry.register(resumable(a.runner('r'), a.kind))).toThrow(/registered twice/);

  const broken = new JobRegistry(log)
    .register({ kind: 'broken', resumeDue: async () => Promise.reject(new Error('store down')) })
    .register(resumable(b.runner('r'), { ...b.kind, kind: 'b2' }));
  b.add('w');
  await expect(broken.resumeDue()).rejects.toThrow('store down');
  expect(b.store.docs.get('w')!.doc.status).toBe('completed'); // b2 ran although broken failed first
});

describe('a resume run takes due work batch after batch, within its time budget', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `t${String(i).padStart(3, '0')}`);

  test('120 due jobs are all advanced in one run (more than one batch of 50)', async () => {
    const w = world();
    for (const id of ids(120)) w.add(id);
    let queries = 0;
    const due = w.store.due.bind(w.store);
    w.store.due = (now, limit) => (queries++, due(now, limit));
    const report = await new JobRegistry(log).register(resumable(w.runner('r'), w.kind)).resumeDue();
    expect(report).toEqual({ due: 120, advanced: 120, errors: 0, kinds: { tickets: { due: 120, advanced: 120, errors: 0 } } });
    expect([...w.store.docs.values()].every((v) => v.doc.status === 'completed')).toBe(true);
    expect(queries).toBeGreaterThanOrEqual(3); // 50 + 50 + 20, then one that finds nothing
  });

  test('a job that stays due after a failed try is not taken again in the same run', async () => {
    const w = world();
    for (const id of ids(3)) w.add(id);
    const read = w.store.read.bind(w.store);
    let badReads = 0;
    w.store.read = async (id) => (id === 't001' ? (badReads++, Promise.reject(new Error('read failed'))) : read(id));
    const report = await new JobRegistry(log, { batch: 2 }).register(resumable(w.runner('r'), w.kind)).resumeDue();
    expect(report).toMatchObject({ due: 3, advanced: 2, errors: 1 });
    expect(report.budgetEnded).toBeUndefined();
    expect(badReads).toBe(1);
    expect(w.store.docs.get('t001')!.doc.status).toBe('active'); // still due: the next run tries it again
  });

  test('the budget stops the run cleanly between jobs; the next run takes the rest', async () => {
    const w = world();
    for (const id of ids(120)) w.add(id);
    // A stopwatch that each job's first step moves on by one second.
    let elapsed = 0;
    w.behaviour.open = async () => void (elapsed += 1000);
    const registry = () => new JobRegistry(log, { budgetMs: 30_000, elapsedMs: () => elapsed }).register(resumable(w.runner('r'), w.kind));
    logLines.length = 0;
    const first = await registry().resumeDue();
    expect(first).toMatchObject({ due: 30, advanced: 30, errors: 0, budgetEnded: true });
    const docs = () => [...w.store.docs.values()].map((v) => v.doc);
    // Every job it started ran to its end; none after the budget was claimed.
    expect(docs().filter((d) => d.status === 'completed')).toHaveLength(30);
    expect(docs().filter((d) => d.status === 'active' && d.lease === undefined)).toHaveLength(90);
    expect(logLines.some((l) => l.startsWith('warn Resume run stopped at its time budget'))).toBe(true);

    elapsed = 0;
    w.behaviour.open = undefined;
    expect(await registry().resumeDue()).toMatchObject({ due: 90, advanced: 90, errors: 0 });
    expect(docs().every((d) => d.status === 'completed')).toBe(true);
  });
});
