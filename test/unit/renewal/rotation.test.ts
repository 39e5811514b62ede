import {
  DAY_MS,
  type Rotation,
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
  rotationId,
  rotationView,
  startRotation,
  stateOf,
  supersede,
} from '../../../shared/domain/rotation';

const T0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const LEASE = 60_000;
const policy = { maxAttempts: 3, jitter: 0.5 };

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
    r = failStep(r, 't1', 'Graph 503', T0, policy);
    expect(r.status).toBe('active');
    expect(r.lease).toBeUndefined();
    expect(r.lastError).toEqual({ step: 'create', message: 'Graph 503', at: T0.toISOString() });
    expect(decideNext(r, T0, { owner: 'w1' })).toMatchObject({ action: 'wait', reason: 'backoff', until: r.nextAttemptAt });
    const second = at(60_000);
    r = failStep(claimStep(r, { owner: 'w1', token: 't2', leaseMs: LEASE }, second), 't2', 'again', second, policy);
    const third = at(600_000);
    r = failStep(claimStep(r, { owner: 'w1', token: 't3', leaseMs: LEASE }, third), 't3', 'and again', third, policy);
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
    r = failStep(r, 'v', 'verify failed', T0, { maxAttempts: 1, jitter: 0 });
    const next = nextAttempt(r, 'renew', at(1000));
    expect(next.id).toBe('local:db-password:abc123:2');
    expect(next.attempt).toBe(2);
    expect(next.status).toBe('active');
    expect(next.leftovers).toEqual({ fromRotation: r.id, tokens: r.steps.create!.tokens, pendingVersion: 'p1' });
    expect(() => nextAttempt(fresh(), 'renew', T0)).toThrow(RotationStateError);
  });

  test('failed rotations re-alert daily, and once more when the credential expires', () => {
    const failed: Rotation = { ...fresh(), status: 'failed', endedAt: T0.toISOString() };
    expect(alertDue(failed, at(DAY_MS - 1))).toBe(false);
    expect(alertDue(failed, at(DAY_MS))).toBe(true);
    const alerted = markAlerted(failed, at(DAY_MS));
    expect(alerted.alerts).toEqual({ lastAt: at(DAY_MS).toISOString(), count: 1 });
    expect(alertDue(alerted, at(DAY_MS + 3_600_000))).toBe(false);
    const exp = at(DAY_MS + 7_200_000);
    expect(alertDue(alerted, at(DAY_MS + 7_200_000), exp)).toBe(true);
    const final = markAlerted(alerted, at(DAY_MS + 7_200_000));
    expect(alertDue(final, at(5 * DAY_MS), exp)).toBe(false);
    expect(alertDue(fresh(), at(5 * DAY_MS))).toBe(false);
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
