import { type KeySet, type NewKey, type RolloverRequest, type Transition, applyTransition, keyExpiry, newKeysFor, planEmergency, planScheduled, publishedKeys, signingKey } from '../../../shared/domain/signingKeys';
import { markExpiryNotice, markFollowUpsDone, vaultSyncNeeded } from '../../../shared/domain/signingKeyVaultSync';
import { DAY, HOUR, ISSUER, defaultPolicy as policy } from './fakes';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
let generation = 0;

function newKey(now: Date): NewKey {
  const n = ++generation;
  return {
    kid: `kid-${n}`,
    alg: 'RS256',
    vaultKey: { vault: 'local', name: `keyturn-signing-${n}`, version: `v${n}` },
    publicJwk: { kty: 'RSA', n: `n${n}`, e: 'AQAB' },
    createdAt: now.toISOString(),
    expiresAt: keyExpiry(now, policy).toISOString(),
  };
}

function apply(set: KeySet | undefined, t: Transition, now: Date, request?: RolloverRequest) {
  const newKeys = Array.from({ length: newKeysFor(t) }, () => newKey(now));
  return applyTransition(set, t, { issuer: ISSUER, now, newKeys, request });
}

/** Runs the timer plan until it has nothing left to do. */
function settle(set: KeySet | undefined, now: Date): KeySet {
  let current = set;
  for (let i = 0; i < 10; i++) {
    const t = planScheduled(current, now, policy);
    if (!t) return current!;
    current = apply(current, t, now).set;
  }
  throw new Error('did not settle');
}

const states = (set: KeySet) => Object.fromEntries(set.keys.map((k) => [k.kid, k.state]));

beforeEach(() => (generation = 0));

describe('signing key state machine', () => {
  test('When there is no key set, then the plan is a bootstrap: a signer and a published next', () => {
    expect(planScheduled(undefined, T0, policy)).toEqual({ type: 'bootstrap' });
    const { set, record } = apply(undefined, { type: 'bootstrap' }, T0);
    expect(states(set)).toEqual({ 'kid-1': 'current', 'kid-2': 'next' });
    expect(publishedKeys(set).map((k) => k.kid)).toEqual(['kid-2', 'kid-1']);
    expect(record).toMatchObject({ trigger: 'bootstrap', toKid: 'kid-1', nextKid: 'kid-2', keySetVersion: 1 });
    expect(planScheduled(set, T0, policy)).toBeUndefined();
  });

  test('When the current key has signed for the rollover period, then next → current, current → previous and a new next', () => {
    const set = settle(undefined, T0);
    expect(planScheduled(set, at(42 * DAY - 1), policy)).toBeUndefined();
    const t = planScheduled(set, at(42 * DAY), policy);
    expect(t).toEqual({ type: 'promote', trigger: 'schedule', nextKid: 'kid-2' });
    const { set: rolled, record } = apply(set, t!, at(42 * DAY));
    expect(states(rolled)).toEqual({ 'kid-1': 'previous', 'kid-2': 'current', 'kid-3': 'next' });
    expect(record).toMatchObject({ trigger: 'schedule', fromKid: 'kid-1', toKid: 'kid-2', nextKid: 'kid-3', requestedBy: 'keyturn' });
    expect(signingKey(rolled)?.signingFrom).toBe(at(42 * DAY).toISOString());
  });

  test('When the next key has been published for less than the publish-ahead time, then the roll waits for it', () => {
    // The next key was lost (e.g. expired): a new one is published at day 42, so it may sign at day 43.
    let set = settle(undefined, T0);
    set = { ...set, keys: set.keys.filter((k) => k.state !== 'next') };
    expect(planScheduled(set, at(42 * DAY), policy)).toEqual({ type: 'add-next' });
    set = apply(set, { type: 'add-next' }, at(42 * DAY)).set;
    expect(planScheduled(set, at(42 * DAY + 23 * HOUR), policy)).toBeUndefined();
    expect(planScheduled(set, at(43 * DAY), policy)).toMatchObject({ type: 'promote', trigger: 'schedule' });
  });

  test('When a previous key stopped signing, then it is retired once the longest token lifetime plus publish-ahead has passed', () => {
    let set = settle(undefined, T0);
    set = settle(set, at(42 * DAY));
    const retireAt = 42 * DAY + policy.tokenMaxLifetimeMs + policy.publishAheadMs;
    expect(planScheduled(set, at(retireAt - 1), policy)).toBeUndefined();
    expect(planScheduled(set, at(retireAt), policy)).toEqual({ type: 'retire', kids: ['kid-1'], compromised: false });
    const retired = apply(set, { type: 'retire', kids: ['kid-1'], compromised: false }, at(retireAt)).set;
    expect(states(retired)['kid-1']).toBe('retired');
    expect(retired.keys.find((k) => k.kid === 'kid-1')?.publicJwk).toBeUndefined();
    expect(publishedKeys(retired).map((k) => k.kid)).toEqual(['kid-3', 'kid-2']);
  });

  test('When a KeyNearExpiry event names the signing key, then the next is promoted as soon as it has been published for the publish-ahead time', () => {
    // A fresh next (published at day 10) and a signer with an expiry notice.
    let set = settle(undefined, T0);
    set = { ...set, keys: set.keys.filter((k) => k.state !== 'next') };
    set = apply(set, { type: 'add-next' }, at(10 * DAY)).set;
    const marked = markExpiryNotice(set, { vault: 'LOCAL', name: 'keyturn-signing-1', version: 'v1' }, 'KeyNearExpiry', at(10 * DAY));
    if (typeof marked === 'string') throw new Error(marked);
    expect(marked.key.state).toBe('current');
    expect(planScheduled(marked.set, at(10 * DAY + 23 * HOUR), policy)).toBeUndefined();
    expect(planScheduled(marked.set, at(11 * DAY), policy)).toEqual({ type: 'promote', trigger: 'expiry', nextKid: 'kid-3' });
    expect(markExpiryNotice(marked.set, { vault: 'local', name: 'keyturn-signing-1' }, 'KeyNearExpiry', at(11 * DAY))).toBe('no-change');
    expect(markExpiryNotice(marked.set, { vault: 'local', name: 'other-key' }, 'KeyNearExpiry', at(11 * DAY))).toBe('not-managed');
  });

  test('When an expiry event names the next key, then it is replaced by a fresh next (it never signed)', () => {
    const set = settle(undefined, T0);
    const marked = markExpiryNotice(set, { vault: 'local', name: 'keyturn-signing-2' }, 'KeyExpired', at(DAY));
    if (typeof marked === 'string') throw new Error(marked);
    expect(planScheduled(marked.set, at(DAY), policy)).toEqual({ type: 'add-next' });
    const replaced = apply(marked.set, { type: 'add-next' }, at(DAY)).set;
    expect(states(replaced)).toEqual({ 'kid-1': 'current', 'kid-2': 'retired', 'kid-3': 'next' });
  });

  test('When an emergency finds a usable next, then it is promoted at once even before the publish-ahead time', () => {
    const set = settle(undefined, T0);
    const t = planEmergency(set, at(HOUR), policy, { compromised: false, targetKid: 'kid-1' });
    expect(t).toEqual({ type: 'promote', trigger: 'emergency', nextKid: 'kid-2', compromisedKid: undefined });
    const { set: rolled, record } = apply(set, t!, at(HOUR), { requestedBy: 'alice', requestedByVerified: true, reason: 'drill' });
    expect(states(rolled)).toEqual({ 'kid-1': 'previous', 'kid-2': 'current', 'kid-3': 'next' });
    expect(record).toMatchObject({ trigger: 'emergency', requestedBy: 'alice', requestedByVerified: true, reason: 'drill', compromised: false, retiredKids: [] });
  });

  test('When an emergency finds no usable next, then a fresh key signs at once and a new next is published', () => {
    let set = settle(undefined, T0);
    set = { ...set, keys: set.keys.filter((k) => k.state !== 'next') };
    const t = planEmergency(set, at(HOUR), policy, { compromised: false, targetKid: 'kid-1' });
    expect(t).toMatchObject({ type: 'replace', trigger: 'emergency' });
    const { set: rolled } = apply(set, t!, at(HOUR));
    expect(states(rolled)).toEqual({ 'kid-1': 'previous', 'kid-3': 'current', 'kid-4': 'next' });
  });

  test('When the signing key is compromised, then it leaves the published set in the same transition', () => {
    const set = settle(undefined, T0);
    const t = planEmergency(set, at(HOUR), policy, { compromised: true, targetKid: 'kid-1' });
    const { set: rolled, record } = apply(set, t!, at(HOUR), { requestedBy: 'bob', requestedByVerified: false, reason: 'leaked' });
    expect(states(rolled)).toEqual({ 'kid-1': 'retired', 'kid-2': 'current', 'kid-3': 'next' });
    expect(rolled.keys.find((k) => k.kid === 'kid-1')).toMatchObject({ compromised: true, signingUntil: at(HOUR).toISOString() });
    expect(publishedKeys(rolled).map((k) => k.kid)).not.toContain('kid-1');
    expect(record).toMatchObject({ compromised: true, fromKid: 'kid-1', toKid: 'kid-2', retiredKids: ['kid-1'] });
    // The vault copy must follow: state tag and disabled.
    expect(vaultSyncNeeded(rolled).map((k) => k.kid)).toEqual(expect.arrayContaining(['kid-1', 'kid-2', 'kid-3']));
  });

  test('When a concurrent rollover already moved the compromised key out of signing, then only its removal is left', () => {
    let set = settle(undefined, T0);
    set = settle(set, at(42 * DAY)); // kid-1 is previous now
    const t = planEmergency(set, at(42 * DAY), policy, { compromised: true, targetKid: 'kid-1' });
    expect(t).toEqual({ type: 'retire', kids: ['kid-1'], compromised: true });
    const { record } = apply(set, t!, at(42 * DAY), { requestedBy: 'bob', requestedByVerified: false, reason: 'leaked' });
    expect(record).toMatchObject({ compromised: true, toKid: 'kid-2', retiredKids: ['kid-1'] });
    expect(planEmergency(set, at(42 * DAY), policy, { compromised: false, targetKid: 'kid-1' })).toBeUndefined();
  });

  test('When follow-ups finish, then the vault writes made (as written) and stored records are marked done', () => {
    const { set: boot, record } = apply(undefined, { type: 'bootstrap' }, T0);
    expect(boot.outbox).toEqual([record]);
    expect(vaultSyncNeeded(boot)).toHaveLength(2);
    const synced = [
      { kid: 'kid-1', state: 'current' as const, from: undefined },
      { kid: 'kid-2', state: 'previous' as const, from: undefined },
    ];
    const marked = markFollowUpsDone(boot, { synced, storedRecords: [] }, T0)!;
    expect(vaultSyncNeeded(marked).map((k) => k.kid)).toEqual(['kid-2']);
    expect(marked.outbox).toHaveLength(1);
    const flushed = markFollowUpsDone(marked, { synced: [], storedRecords: [record!.id] }, T0)!;
    expect(flushed.outbox).toEqual([]);
    expect(markFollowUpsDone(flushed, { synced, storedRecords: [record!.id] }, T0)).toBeUndefined();
  });

  test('Each key expires after 2 rollover periods + publish-ahead + token lifetime + 30 days', () => {
    expect(keyExpiry(T0, policy).getTime() - T0.getTime()).toBe(2 * 42 * DAY + 24 * HOUR + HOUR + 30 * DAY);
  });
});
