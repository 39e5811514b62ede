import {
  DAY_MS,
  type Rotation,
  STEP_FAILURE,
  RotationStateError,
  alertDue,
  backoffMs,
  claimStep,
  completeStep,
  decideNext,
  failStep,
  invariantViolations,
  isInFlight,
  markAlerted,
  nextAttempt,
  recordCleanup,
  rotationId,
  startRotation,
  stateOf,
  stuckAlertDue,
  supersede,
} from '../../../shared/domain/rotation';
import { rotationView } from '../../../shared/services/renewal/views';

const T0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const LEASE = 60_000;
const policy = { maxAttempts: 3, jitter: 0.5 };
const E503 = { name: 'GraphError', code: 'ServiceUnavailable', statusCode: 503 };

function fresh(graceDays = 7): Rotation {
  return startRotation(
    { vault: 'Local', name: 'Db-Password', fromVersion: 'ABC123', provider: 'symmetric', validityDays: 365, graceDays, trigger: 'SecretNearExpiry' },
    T0,
  );
}

/** Claims and completes the current step as `owner`, checking the invariants after each write. */
function run(r: Rotation, now: Date, owner = 'w1'): Rotation {
  const token = `t-${r.step}-${now.getTime()}`;
  const claimed = claimStep(r, { owner, token, leaseMs: LEASE }, now);
  expect(invariantViolations(claimed)).toEqual([]);
  const results = {
    create: { step: 'create' as const, pendingVersion: 'p1', expiresOn: at(365 * DAY_MS).toISOString(), token },
    verify: { step: 'verify' as const },
    promote: { step: 'promote' as const, version: 'NEW1', expiresOn: at(365 * DAY_MS).toISOString(), token },
    notify: { step: 'notify' as const },
    retire: { step: 'retire' as const },
  };
  const done = completeStep(claimed, token, results[r.step], now);
  expect(invariantViolations(done)).toEqual([]);
  return done;
}

describe('rotation ids', () => {
  test('are deterministic and case-insensitive in vault, name and version', () => {
    expect(rotationId('Local', 'Db-Password', 'ABC123', 1)).toBe('local:db-password:abc123:1');
    expect(fresh().id).toBe(rotationId('local', 'db-password', 'abc123', 1));
    expect(fresh().credentialId).toBe('local:db-password');
  });
});

describe('decideNext and the transitions', () => {
  test('a new rotation is claimed at create, performed by its owner, waited on by others', () => {
    const r = fresh();
    expect(decideNext(r, T0, { owner: 'w1' })).toEqual({ action: 'claim', step: 'create' });
    const claimed = claimStep(r, { owner: 'w1', token: 'tok', leaseMs: LEASE }, T0);
    expect(decideNext(claimed, T0, { owner: 'w1' })).toEqual({ action: 'perform', step: 'create', token: 'tok' });
    expect(decideNext(claimed, T0, { owner: 'w2' })).toEqual({ action: 'wait', until: at(LEASE).toISOString(), reason: 'leased' });
    expect(claimed.dueAt).toBe(at(LEASE).toISOString());
    expect(() => claimStep(claimed, { owner: 'w2', token: 'x', leaseMs: LEASE }, T0)).toThrow(RotationStateError);
  });

  test('an expired lease is taken over with a new token; both tokens stay on the step', () => {
    const claimed = claimStep(fresh(), { owner: 'w1', token: 'a', leaseMs: LEASE }, T0);
    expect(decideNext(claimed, at(LEASE), { owner: 'w2' })).toEqual({ action: 'claim', step: 'create' });
    const taken = claimStep(claimed, { owner: 'w2', token: 'b', leaseMs: LEASE }, at(LEASE));
    expect(taken.steps.create?.tokens).toEqual(['a', 'b']);
    expect(() => completeStep(taken, 'a', { step: 'create', pendingVersion: 'p', expiresOn: '', token: 'a' }, at(LEASE))).toThrow(
      RotationStateError,
    );
  });

  test('create → verify → promote → notify → grace → retire → completed', () => {
    let r = fresh(7);
    for (const step of ['create', 'verify', 'promote', 'notify'] as const) {
      expect(r.step).toBe(step);
      expect(stateOf(r, T0)).toBe(step);
      r = run(r, T0);
    }
    expect(r.pending?.version).toBe('p1');
    expect(r.promoted?.version).toBe('new1');
    expect(r.retireAfter).toBe(at(7 * DAY_MS).toISOString());
    expect(stateOf(r, T0)).toBe('grace');
    expect(isInFlight(r)).toBe(false);
    expect(decideNext(r, at(7 * DAY_MS - 1), { owner: 'w1' })).toMatchObject({ action: 'wait', reason: 'grace' });
    expect(r.dueAt).toBe(r.retireAfter);
    r = run(r, at(7 * DAY_MS));
    expect(r.status).toBe('completed');
    expect(stateOf(r, at(7 * DAY_MS))).toBe('completed');
    expect(decideNext(r, at(8 * DAY_MS), { owner: 'w1' })).toEqual({ action: 'none', reason: 'completed' });
    expect(r.dueAt).toBeUndefined();
  });

  test('retire cannot be recorded before the grace period has passed', () => {
    let r = fresh(7);
    for (let i = 0; i < 4; i++) r = run(r, T0);
    // Even with a lease forced onto it, completion checks the grace period.
    const forced: Rotation = { ...r, retireAfter: T0.toISOString() };
    const claimed = claimStep(forced, { owner: 'w1', token: 't', leaseMs: LEASE }, T0);
    const early = { ...claimed, retireAfter: at(DAY_MS).toISOString() };
    expect(() => completeStep(early, 't', { step: 'retire' }, T0)).toThrow(/grace/);
  });

  test('steps cannot be skipped: a result for another step is refused', () => {
    const claimed = claimStep(fresh(), { owner: 'w1', token: 't', leaseMs: LEASE }, T0);
    expect(() => completeStep(claimed, 't', { step: 'promote', version: 'v', expiresOn: '', token: 't' }, T0)).toThrow(RotationStateError);
    expect(() => completeStep(claimed, 't', { step: 'retire' }, T0)).toThrow(RotationStateError);
  });

  test('a failed try backs off with jitter; maxAttempts failures make the rotation failed', () => {
    let r = claimStep(fresh(), { owner: 'w1', token: 't1', leaseMs: LEASE }, T0);
    r = failStep(r, 't1', E503, T0, policy);
    expect(r.status).toBe('active');
    expect(r.lease).toBeUndefined();
    expect(r.lastError).toEqual({ step: 'create', message: STEP_FAILURE.create, ...E503, at: T0.toISOString() });
    expect(decideNext(r, T0, { owner: 'w1' })).toMatchObject({ action: 'wait', reason: 'backoff', until: r.nextAttemptAt });
    const second = at(60_000);
    r = failStep(claimStep(r, { owner: 'w1', token: 't2', leaseMs: LEASE }, second), 't2', E503, second, policy);
    const third = at(600_000);
    r = failStep(claimStep(r, { owner: 'w1', token: 't3', leaseMs: LEASE }, third), 't3', E503, third, policy);
    expect(r.status).toBe('failed');
    expect(r.steps.create?.failures).toBe(3);
    expect(r.promoted).toBeUndefined();
    expect(decideNext(r, third, { owner: 'w1' })).toEqual({ action: 'none', reason: 'failed' });
    expect(invariantViolations(r)).toEqual([]);
  });

  test('backoff doubles from 30 s, is capped at 30 min, jittered within [0.5, 1)', () => {
    expect(backoffMs(1, 0)).toBe(15_000);
    expect(backoffMs(1, 0.999)).toBeLessThan(30_000);
    expect(backoffMs(2, 0)).toBe(30_000);
    expect(backoffMs(20, 0.999)).toBeLessThanOrEqual(30 * 60_000);
    expect(backoffMs(20, 0)).toBe(15 * 60_000);
  });

  test('superseded before promotion only', () => {
    const claimed = claimStep(fresh(), { owner: 'w1', token: 't', leaseMs: LEASE }, T0);
    const s = supersede(claimed, 't', 'someone else rotated', T0);
    expect(s.status).toBe('superseded');
    expect(decideNext(s, T0, { owner: 'w1' })).toEqual({ action: 'none', reason: 'superseded' });
    let r = fresh();
    for (let i = 0; i < 3; i++) r = run(r, T0);
    const c = claimStep(r, { owner: 'w1', token: 'n', leaseMs: LEASE }, T0);
    expect(() => supersede(c, 'n', 'x', T0)).toThrow(/promoted/);
  });

  test('the next attempt after a failure carries what to clean up', () => {
    let r = run(fresh(), T0); // created p1
    r = claimStep(r, { owner: 'w1', token: 'v', leaseMs: LEASE }, T0);
    r = failStep(r, 'v', E503, T0, { maxAttempts: 1, jitter: 0 });
    const next = nextAttempt(r, 'renew', at(1000));
    expect(next.id).toBe('local:db-password:abc123:2');
    expect(next.attempt).toBe(2);
    expect(next.status).toBe('active');
    expect(next.leftovers).toEqual({ fromRotation: r.id, tokens: r.steps.create!.tokens, pendingVersion: 'p1', provider: r.provider });
    expect(() => nextAttempt(fresh(), 'renew', T0)).toThrow(RotationStateError);
  });

  test('failed rotations re-alert daily, and once more when the credential expires', () => {
    const failed: Rotation = { ...fresh(), status: 'failed', endedAt: T0.toISOString() };
    const facts = (expiresOn?: Date) => ({ currentVersion: failed.fromVersion, rotations: [failed], ...(expiresOn ? { expiresOn } : {}) });
    expect(alertDue(failed, at(DAY_MS - 1), facts())).toBe(false);
    expect(alertDue(failed, at(DAY_MS), facts())).toBe(true);
    const alerted = markAlerted(failed, at(DAY_MS));
    expect(alerted.alerts).toEqual({ lastAt: at(DAY_MS).toISOString(), count: 1 });
    expect(alertDue(alerted, at(DAY_MS + 3_600_000), facts())).toBe(false);
    const exp = at(DAY_MS + 7_200_000);
    expect(alertDue(alerted, at(DAY_MS + 7_200_000), facts(exp))).toBe(true);
    const final = markAlerted(alerted, at(DAY_MS + 7_200_000));
    expect(alertDue(final, at(5 * DAY_MS), facts(exp))).toBe(false);
    expect(alertDue(fresh(), at(5 * DAY_MS), facts())).toBe(false);
  });

  test('a failed rotation stops alerting once its credential is renewed: a new version, or a later attempt', () => {
    const failed: Rotation = { ...fresh(), status: 'failed', endedAt: T0.toISOString() };
    const later = { ...nextAttempt(failed, 'renew', at(1000)), status: 'completed' as const };
    expect(alertDue(failed, at(3 * DAY_MS), { currentVersion: failed.fromVersion, rotations: [failed] })).toBe(true);
    expect(alertDue(failed, at(3 * DAY_MS), { currentVersion: 'def456', rotations: [failed] })).toBe(false);
    expect(alertDue(failed, at(3 * DAY_MS), { currentVersion: failed.fromVersion, rotations: [failed, later] })).toBe(false);
    // Expired, but renewed: no last alert either.
    expect(alertDue(failed, at(3 * DAY_MS), { currentVersion: 'def456', expiresOn: at(2 * DAY_MS), rotations: [failed] })).toBe(false);
  });

  test('the next attempt keeps the app and provider its leftovers were made on', () => {
    let r: Rotation = { ...run(fresh(), T0), appObjectId: 'app-1' };
    r = claimStep(r, { owner: 'w1', token: 'v', leaseMs: LEASE }, T0);
    r = failStep(r, 'v', E503, T0, { maxAttempts: 1, jitter: 0 });
    expect(nextAttempt(r, 'renew', at(1000)).leftovers).toMatchObject({ provider: r.provider, appObjectId: 'app-1' });
  });
});

describe('after promotion the rotation only goes forward', () => {
  const promotedAndNotified = () => {
    let r = fresh(7);
    for (let i = 0; i < 4; i++) r = run(r, T0);
    return r; // at retire, in grace
  };

  test('notify and retire never fail the rotation: capped backoff, however many failures', () => {
    let r = fresh(7);
    for (let i = 0; i < 3; i++) r = run(r, T0); // promoted, at notify
    let t = T0.getTime();
    for (let i = 1; i <= 12; i++) {
      const now = new Date(t);
      r = failStep(claimStep(r, { owner: 'w1', token: `n${i}`, leaseMs: LEASE }, now), `n${i}`, E503, now, policy);
      expect(r.status).toBe('active');
      expect(Date.parse(r.nextAttemptAt!) - t).toBeLessThanOrEqual(3_600_000);
      t = Date.parse(r.nextAttemptAt!);
    }
    expect(r.steps.notify?.failures).toBe(12);
    expect(invariantViolations(r)).toEqual([]);
    r = run(r, new Date(t));
    expect(r.step).toBe('retire');
  });

  test('a stuck step alerts after maxAttempts failures, then daily; a newly stuck step at once', () => {
    let r = promotedAndNotified();
    const grace = Date.parse(r.retireAfter!);
    const failAt = (ms: number) => {
      const now = new Date(ms);
      r = failStep(claimStep(r, { owner: 'w1', token: `r${ms}`, leaseMs: LEASE }, now), `r${ms}`, E503, now, policy);
      return stuckAlertDue(r, now, policy.maxAttempts);
    };
    expect(failAt(grace)).toBe(false);
    expect(failAt(grace + 3_600_000)).toBe(false);
    expect(failAt(grace + 7_200_000)).toBe(true);
    r = markAlerted(r, new Date(grace + 7_200_000));
    expect(r.alerts).toMatchObject({ count: 1, step: 'retire' });
    expect(failAt(grace + 10_800_000)).toBe(false);
    expect(failAt(grace + 7_200_000 + DAY_MS)).toBe(true);
    expect(r.status).toBe('active');
    expect(isInFlight(r)).toBe(true); // a renew must not mint a third credential on top of it
    expect(stuckAlertDue({ ...r, alerts: { ...r.alerts!, step: 'notify' } }, new Date(grace + 7_200_001 + DAY_MS), 3)).toBe(true);
  });

  test('in grace (retire not yet failing) the rotation is not in flight', () => {
    expect(isInFlight(promotedAndNotified())).toBe(false);
  });
});

describe('clean-up of failed and superseded rotations', () => {
  test('done: nothing is due; pending: the resume timer retries it with backoff', () => {
    const claimed = claimStep(fresh(), { owner: 'w1', token: 't', leaseMs: LEASE }, T0);
    const failed = failStep(claimed, 't', E503, T0, { maxAttempts: 1, jitter: 0 });
    expect(failed.status).toBe('failed');
    const done = recordCleanup(failed, true, T0, 0);
    expect(done.cleanup).toEqual({ state: 'done', at: T0.toISOString(), tries: 1 });
    expect(done.dueAt).toBeUndefined();
    expect(decideNext(done, at(DAY_MS), { owner: 'w1' })).toEqual({ action: 'none', reason: 'failed' });

    const pending = recordCleanup(failed, false, T0, 0);
    expect(pending.cleanup).toMatchObject({ state: 'pending', tries: 1, nextAt: at(15_000).toISOString() });
    expect(pending.dueAt).toBe(at(15_000).toISOString());
    expect(decideNext(pending, T0, { owner: 'w1' })).toMatchObject({ action: 'wait', reason: 'backoff' });
    expect(decideNext(pending, at(15_000), { owner: 'w1' })).toEqual({ action: 'cleanup' });
    const retried = recordCleanup(pending, true, at(15_000), 0);
    expect(retried.cleanup).toMatchObject({ state: 'done', tries: 2 });
    expect(retried.dueAt).toBeUndefined();
    expect(() => recordCleanup(fresh(), true, T0, 0)).toThrow(RotationStateError);
  });

  test('the view shows the clean-up and only safe error fields', () => {
    const claimed = claimStep(fresh(), { owner: 'w1', token: 't', leaseMs: LEASE }, T0);
    const failed = recordCleanup(failStep(claimed, 't', E503, T0, { maxAttempts: 1, jitter: 0 }), false, T0, 0);
    // A document written before this change may still hold raw text: the view never returns it.
    const legacy = { ...failed, lastError: { ...failed.lastError!, message: 'RestError: https://vault/secrets/x?api-version … body' } };
    const view = rotationView(legacy, T0);
    expect(view.lastError).toEqual({ step: 'create', message: STEP_FAILURE.create, name: 'GraphError', code: 'ServiceUnavailable', statusCode: 503, at: T0.toISOString() });
    expect(view.cleanup).toEqual({ state: 'pending', at: T0.toISOString(), tries: 1 });
  });
});

describe('invariants', () => {
  test('each broken ordering is reported', () => {
    const base = fresh();
    expect(invariantViolations({ ...base, promoted: { version: 'v', expiresOn: '' } })).toContain('promoted an unverified value');
    expect(invariantViolations({ ...base, notifiedAt: T0.toISOString() })).toContain('announced before promoted');
    expect(invariantViolations({ ...base, status: 'completed' })).toContain('completed without retiring');
    expect(invariantViolations({ ...base, id: 'local:x:y:1' })).toHaveLength(1);
    const early = {
      ...base,
      notifiedAt: T0.toISOString(),
      retireAfter: at(DAY_MS).toISOString(),
      steps: { retire: { tokens: ['t'], startedAt: T0.toISOString(), completedAt: T0.toISOString(), failures: 0 } },
    };
    expect(invariantViolations(early)).toContain('retired the old credential before it was announced and the grace period passed');
  });

  test('a rotation document and its view hold no value field', () => {
    let r = fresh();
    for (let i = 0; i < 4; i++) r = run(r, T0);
    const keys = JSON.stringify([r, rotationView(r, T0)]).match(/"[a-zA-Z]+":/g) ?? [];
    expect(keys.map((k) => k.toLowerCase())).not.toContain('"value":');
    expect(keys.map((k) => k.toLowerCase())).not.toContain('"secrettext":');
  });
});
