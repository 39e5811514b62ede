/**
 * The step kernel on its own, with a fake job type (a three-step "ticket" with a
 * cooling-off hold before its last step): claims, lease expiry, backoff, the due rule.
 */
import fc from 'fast-check';
import { type StepJob, backoffMs, byDueAt, isDue, stepKernel } from '../../../shared/domain/stepKernel';

const STEPS = ['open', 'work', 'close'] as const;
type Step = (typeof STEPS)[number];
interface Ticket extends StepJob<Step> {
  status: 'active' | 'completed' | 'failed' | 'cancelled';
  coolUntil?: string;
}

class TicketError extends Error {}

const kernel = stepKernel<Ticket, Step, 'completed' | 'failed' | 'cancelled', 'cooling'>({
  steps: STEPS,
  label: 'Ticket',
  refuse: (m) => new TicketError(m),
  hold: (t) => (t.step === 'close' && t.coolUntil ? { until: t.coolUntil, reason: 'cooling' } : undefined),
});

const T0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const LEASE = 60_000;
const fresh = (id = 't1'): Ticket => kernel.touched({ id, status: 'active', step: 'open', steps: {}, updatedAt: T0.toISOString() }, T0);
const policy = { maxAttempts: 3, jitter: 0.5, mayFail: true };

describe('claims', () => {
  test('a claim takes the lease with a fresh token; the holder performs, anyone else waits', () => {
    const claimed = kernel.claim(fresh(), { owner: 'a', token: 'x', leaseMs: LEASE }, T0);
    expect(claimed.lease).toEqual({ step: 'open', owner: 'a', token: 'x', expiresAt: at(LEASE).toISOString() });
    expect(claimed.steps.open).toEqual({ tokens: ['x'], startedAt: T0.toISOString(), failures: 0 });
    expect(kernel.decide(claimed, T0, 'a')).toEqual({ action: 'perform', step: 'open', token: 'x' });
    expect(kernel.decide(claimed, T0, 'b')).toEqual({ action: 'wait', until: at(LEASE).toISOString(), reason: 'leased' });
    // The job is due again when the lease expires (a crashed holder is taken over then).
    expect(claimed.dueAt).toBe(at(LEASE).toISOString());
  });

  test('of two claims decided on the same document, the second is refused once the first is applied', () => {
    const doc = fresh();
    const first = kernel.claim(doc, { owner: 'a', token: 'x', leaseMs: LEASE }, T0);
    // b read the same document, but its write is applied to what is stored now (the ETag makes it re-read).
    expect(() => kernel.claim(first, { owner: 'b', token: 'y', leaseMs: LEASE }, T0)).toThrow(TicketError);
    expect(() => kernel.claim(first, { owner: 'a', token: 'z', leaseMs: LEASE }, T0)).toThrow(/cannot claim open \(perform\)/);
  });

  test('after the lease expires another holder claims the step; its record keeps every token', () => {
    const a = kernel.claim(fresh(), { owner: 'a', token: 'x', leaseMs: LEASE }, T0);
    expect(kernel.decide(a, at(LEASE), 'b')).toEqual({ action: 'claim', step: 'open' });
    const b = kernel.claim(a, { owner: 'b', token: 'y', leaseMs: LEASE }, at(LEASE));
    expect(b.steps.open!.tokens).toEqual(['x', 'y']);
    expect(b.steps.open!.startedAt).toBe(T0.toISOString());
    // The first holder's token no longer holds the step: it cannot record anything.
    expect(() => kernel.requireLease(b, 'open', 'x')).toThrow(/not held with this token/);
    expect(() => kernel.complete(b, 'open', kernel.requireLease(b, 'open', 'y'), at(LEASE))).not.toThrow();
  });

  test('completing walks the steps in order and ends the job after the last', () => {
    let t = fresh();
    for (const [i, step] of STEPS.entries()) {
      t = kernel.claim(t, { owner: 'a', token: `k${i}`, leaseMs: LEASE }, at(i));
      t = kernel.complete(t, step, kernel.requireLease(t, step, `k${i}`), at(i));
      expect(t.lease).toBeUndefined();
    }
    expect(t).toMatchObject({ status: 'completed', endedAt: at(2).toISOString() });
    expect(t.dueAt).toBeUndefined();
    expect(kernel.decide(t, at(10), 'a')).toEqual({ action: 'none', reason: 'completed' });
    expect(() => kernel.requireLease(t, 'close', 'k2')).toThrow(TicketError);
  });

  test('a hold of the job type waits after the lease and before a claim', () => {
    let t = fresh();
    for (const [i, step] of STEPS.slice(0, 2).entries()) {
      t = kernel.claim(t, { owner: 'a', token: `k${i}`, leaseMs: LEASE }, T0);
      t = kernel.complete(t, step, kernel.requireLease(t, step, `k${i}`), T0);
    }
    t = kernel.touched({ ...t, coolUntil: at(3_600_000).toISOString() }, T0);
    expect(kernel.decide(t, T0, 'a')).toEqual({ action: 'wait', until: at(3_600_000).toISOString(), reason: 'cooling' });
    expect(t.dueAt).toBe(at(3_600_000).toISOString());
    expect(() => kernel.claim(t, { owner: 'a', token: 'k', leaseMs: LEASE }, T0)).toThrow(/\(wait\)/);
    expect(kernel.decide(t, at(3_600_000), 'a')).toEqual({ action: 'claim', step: 'close' });
  });
});

describe('failures and backoff', () => {
  test('a failed try retries after backoff; maxAttempts failures end a job that may fail', () => {
    let t = fresh();
    let now = T0;
    for (let i = 1; i <= 3; i++) {
      t = kernel.claim(t, { owner: 'a', token: `k${i}`, leaseMs: LEASE }, now);
      t = kernel.fail(t, `k${i}`, now, policy);
      expect(t.steps.open!.failures).toBe(i);
      expect(t.lease).toBeUndefined();
      if (i < 3) {
        expect(t.nextAttemptAt).toBe(new Date(now.getTime() + backoffMs(i, 0.5)).toISOString());
        expect(kernel.decide(t, now, 'a')).toMatchObject({ action: 'wait', reason: 'backoff' });
        expect(t.dueAt).toBe(t.nextAttemptAt);
        now = new Date(t.nextAttemptAt!);
      }
    }
    expect(t).toMatchObject({ status: 'failed', endedAt: now.toISOString() });
    expect(t.nextAttemptAt).toBeUndefined();
    expect(t.dueAt).toBeUndefined();
  });

  test('a job that may no longer fail keeps retrying, the backoff capped', () => {
    let t = fresh();
    let now = T0;
    for (let i = 1; i <= 12; i++) {
      t = kernel.claim(t, { owner: 'a', token: `k${i}`, leaseMs: LEASE }, now);
      t = kernel.fail(t, `k${i}`, now, { ...policy, mayFail: false });
      now = new Date(t.nextAttemptAt!);
    }
    expect(t.status).toBe('active');
    expect(t.steps.open!.failures).toBe(12);
    expect(Date.parse(t.nextAttemptAt!) - Date.parse(t.updatedAt)).toBeLessThanOrEqual(30 * 60_000);
  });

  test('backoff doubles from 30 s, is capped at 30 min, and jitter keeps it within [½, 1) of that', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 1, noNaN: true }), (failures, jitter) => {
        const base = Math.min(30_000 * 2 ** (failures - 1), 30 * 60_000);
        const ms = backoffMs(failures, jitter);
        return ms >= base / 2 && ms <= base;
      }),
    );
    expect(backoffMs(1, 0)).toBe(15_000);
    expect(backoffMs(2, 0)).toBe(30_000);
    expect(backoffMs(20, 0.999)).toBeLessThanOrEqual(30 * 60_000);
  });

  test('only the lease holder records a failure', () => {
    const t = kernel.claim(fresh(), { owner: 'a', token: 'x', leaseMs: LEASE }, T0);
    expect(() => kernel.fail(t, 'other', T0, policy)).toThrow(TicketError);
  });

  test('an ended job with a pending clean-up is due again after its backoff, and not once done', () => {
    const claimed = kernel.claim(fresh(), { owner: 'a', token: 'x', leaseMs: LEASE }, T0);
    const ended = kernel.end(claimed, 'x', 'cancelled', T0);
    expect(ended.lease).toBeUndefined();
    const pending = kernel.recordCleanup(ended, false, T0, 0);
    expect(pending.cleanup).toMatchObject({ state: 'pending', tries: 1 });
    expect(kernel.decide(pending, T0, 'a')).toMatchObject({ action: 'wait', reason: 'backoff' });
    expect(kernel.decide(pending, new Date(pending.cleanup!.nextAt!), 'a')).toEqual({ action: 'cleanup' });
    const done = kernel.recordCleanup(pending, true, new Date(pending.cleanup!.nextAt!), 0);
    expect(done.dueAt).toBeUndefined();
    expect(kernel.decide(done, at(DAY), 'a')).toEqual({ action: 'none', reason: 'cancelled' });
    expect(() => kernel.recordCleanup(fresh(), true, T0, 0)).toThrow(TicketError);
  });
});

const DAY = 86_400_000;

describe('the due rule', () => {
  test('dueAt says when a worker is needed; due order is the longest-waiting first', () => {
    const a = fresh('a'); // due now
    const b = kernel.claim(fresh('b'), { owner: 'w', token: 'x', leaseMs: LEASE }, T0); // due at lease expiry
    const c = kernel.fail(kernel.claim(fresh('c'), { owner: 'w', token: 'y', leaseMs: LEASE }, T0), 'y', T0, { ...policy, jitter: 0 }); // after 15 s
    const done = kernel.recordCleanup(kernel.end(kernel.claim(fresh('d'), { owner: 'w', token: 'z', leaseMs: LEASE }, T0), 'z', 'cancelled', T0), true, T0, 0);
    const jobs = [b, done, c, a];
    expect(jobs.filter((j) => isDue(j, T0)).map((j) => j.id)).toEqual(['a']);
    expect(jobs.filter((j) => isDue(j, at(15_000))).sort(byDueAt).map((j) => j.id)).toEqual(['a', 'c']);
    expect(jobs.filter((j) => isDue(j, at(LEASE))).sort(byDueAt).map((j) => j.id)).toEqual(['a', 'c', 'b']);
    expect(isDue(done, at(365 * DAY))).toBe(false);
  });

  test('every transition leaves dueAt consistent with the decision (property)', () => {
    type Op = { kind: 'claim' | 'complete' | 'fail' | 'tick'; owner: number; ms: number };
    const op = fc.record({ kind: fc.constantFrom('claim', 'complete', 'fail', 'tick'), owner: fc.integer({ min: 0, max: 2 }), ms: fc.integer({ min: 0, max: 120_000 }) }) as fc.Arbitrary<Op>;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        let t = fresh();
        let now = T0;
        let n = 0;
        for (const o of ops) {
          now = new Date(now.getTime() + o.ms);
          const owner = `w${o.owner}`;
          const d = kernel.decide(t, now, owner);
          if (o.kind === 'claim' && d.action === 'claim') t = kernel.claim(t, { owner, token: `k${n++}`, leaseMs: LEASE }, now);
          else if (o.kind === 'complete' && d.action === 'perform') t = kernel.complete(t, d.step, kernel.requireLease(t, d.step, d.token), now);
          else if (o.kind === 'fail' && d.action === 'perform') t = kernel.fail(t, d.token, now, policy);
          const after = kernel.decide(t, new Date(t.updatedAt), '');
          if (after.action === 'none') expect(t.dueAt).toBeUndefined();
          else if (after.action === 'wait') expect(t.dueAt).toBe(after.until);
          else expect(t.dueAt).toBe(t.updatedAt);
        }
      }),
    );
  });
});
