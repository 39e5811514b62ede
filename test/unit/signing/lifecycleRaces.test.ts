/**
 * Races and partial failures of the signing-key life cycle: a slow Key Vault write that
 * lands after an emergency, a key set write whose outcome the client never saw, and
 * emergency rollovers that are retried.
 */
import { type KeySet, type SigningKey, planEmergency, publishedKeys, signingKey } from '../../../shared/domain/signingKeys';
import { markFollowUpsDone, vaultSyncNeeded } from '../../../shared/domain/signingKeyVaultSync';
import { ValidationError } from '../../../shared/errors';
import { SigningKeyService } from '../../../shared/services/signing/signingKeys';
import { DAY, HOUR, defaultPolicy, silentLog, signingWorld } from './fakes';

const claims = { sub: 'svc-1', aud: 'api://orders' };
type World = ReturnType<typeof signingWorld>;

const keyOf = async (world: World, kid: string): Promise<SigningKey> => (await world.service.read())!.set.keys.find((k) => k.kid === kid)!;
/** Key Vault keys no entry of the set points at. */
const orphans = async (world: World) => {
  const known = new Set((await world.service.read())!.set.keys.map((k) => `${k.vaultKey.name}/${k.vaultKey.version}`));
  return [...world.keys.keys.entries()].filter(([id]) => !known.has(id)).map(([, k]) => k);
};

describe('a compromised key stays disabled in Key Vault', () => {
  test('When the timer\'s slow "current" write lands after an emergency disabled the key, then the key shows as lagging and the timer disables it again', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    const next = keysNamed((await world.service.read())!.set, 'next')[0]!;
    world.clock.advance(42 * DAY);
    // The timer promotes `next`; its Key Vault write of "current" is slow, and an emergency
    // declares the new signer compromised (and disables it) before that write lands.
    const operator = new SigningKeyService({ ...world.deps, log: silentLog });
    let emergencyRan = false;
    world.keys.beforeSetState = async (ref, state) => {
      if (emergencyRan || ref.name !== next.vaultKey.name || state !== 'current') return;
      emergencyRan = true;
      const result = await operator.emergency({ reason: 'leaked', compromised: true, kid: next.kid });
      expect(result).toMatchObject({ disabledInKeyVault: true, record: { retiredKids: [next.kid] } });
      expect(world.keys.get(next.vaultKey).enabled).toBe(false);
    };
    await world.service.runSchedule();
    expect(emergencyRan).toBe(true);
    expect(world.keys.get(next.vaultKey)).toMatchObject({ enabled: false, state: 'retired' });
    expect(await keyOf(world, next.kid)).toMatchObject({ state: 'retired', compromised: true, vaultState: 'retired' });
    // Idempotent: another run has nothing to write.
    await world.service.runSchedule();
    expect(world.keys.get(next.vaultKey).enabled).toBe(false);
  });

  test('When a follow-up wrote a state the key has since left, then the written state is recorded and the key lags', () => {
    const set = setWith({ kid: 'kid-1', state: 'retired', vaultState: 'next', compromised: true });
    const marked = markFollowUpsDone(set, { synced: [{ kid: 'kid-1', state: 'current', from: 'next' }], storedRecords: [] }, new Date())!;
    expect(marked.keys[0]!.vaultState).toBe('current');
    expect(vaultSyncNeeded(marked).map((k) => k.kid)).toEqual(['kid-1']);
  });

  test('When another follow-up recorded a different write meanwhile, then which landed last is unknown and the key lags', () => {
    // The emergency recorded "retired" after this follow-up read "next" and wrote "current".
    const set = setWith({ kid: 'kid-1', state: 'retired', vaultState: 'retired', compromised: true });
    const marked = markFollowUpsDone(set, { synced: [{ kid: 'kid-1', state: 'current', from: 'next' }], storedRecords: [] }, new Date())!;
    expect(marked.keys[0]!.vaultState).toBeUndefined();
    expect(vaultSyncNeeded(marked).map((k) => k.kid)).toEqual(['kid-1']);
    // The same write recorded twice changes nothing.
    const same = markFollowUpsDone(set, { synced: [{ kid: 'kid-1', state: 'retired', from: 'next' }], storedRecords: [] }, new Date());
    expect(same).toBeUndefined();
  });
});

describe('a key set write whose outcome is unknown', () => {
  test('When the bootstrap write commits but the answer is lost, then its keys stay enabled and the next token request signs with them', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    world.sets.failAfterCommit = () => true;
    await expect(world.tokens().issue({ claims, expiresInSeconds: 600 })).rejects.toMatchObject({ code: 'ECONNRESET' });
    const { set } = (await world.service.read())!;
    for (const key of publishedKeys(set)) expect(world.keys.get(key.vaultKey).enabled).toBe(true);
    const issued = await world.tokens().issue({ claims, expiresInSeconds: 600 });
    expect(issued.kid).toBe(signingKey(set)!.kid);
  });

  test('When an emergency write commits but the answer is lost, then the promoted signer and the new next stay enabled', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    world.sets.failAfterCommit = () => true;
    await expect(world.service.emergency({ reason: 'drill', compromised: false })).rejects.toMatchObject({ code: 'ECONNRESET' });
    const { set } = (await world.service.read())!;
    expect(set.keys.map((k) => k.state)).toEqual(['previous', 'current', 'next']);
    for (const key of publishedKeys(set)) expect(world.keys.get(key.vaultKey).enabled).toBe(true);
    await expect(world.tokens().issue({ claims, expiresInSeconds: 600 })).resolves.toMatchObject({ kid: signingKey(set)!.kid });
  });

  test('When a write fails before it commits, then the keys it created are disabled and the error is rethrown', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    const before = (await world.service.read())!.set;
    world.sets.failBeforeCommit = () => true;
    await expect(world.service.emergency({ reason: 'drill', compromised: false })).rejects.toMatchObject({ name: 'RestError' });
    world.sets.failBeforeCommit = undefined;
    expect((await world.service.read())!.set).toEqual(before);
    const unused = await orphans(world);
    expect(unused).toHaveLength(1);
    expect(unused[0]).toMatchObject({ enabled: false, state: 'retired' });
  });
});

describe('retrying an emergency rollover', () => {
  test('When a compromised emergency is retried with the same kid, then nothing more happens and the earlier record is returned', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    const compromised = signingKey((await world.service.read())!.set)!;
    const first = await world.service.emergency({ reason: 'leaked', compromised: true, kid: compromised.kid });
    const retry = await world.service.emergency({ reason: 'leaked', compromised: true, kid: compromised.kid });
    expect(retry.record).toEqual(first.record);
    expect(retry).toMatchObject({ signingKid: first.signingKid, publishedKids: first.publishedKids, disabledInKeyVault: true });
    expect(world.sets.records).toHaveLength(2); // bootstrap and the one emergency
    const signer = signingKey((await world.service.read())!.set)!;
    expect(signer.kid).toBe(first.signingKid);
    expect(world.keys.get(signer.vaultKey).enabled).toBe(true);
  });

  test('When Key Vault failed the disable and the caller retries with the kid, then the retry only disables the key', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    const compromised = signingKey((await world.service.read())!.set)!;
    world.keys.failSetState = (ref, state) => ref.name === compromised.vaultKey.name && state === 'retired';
    const first = await world.service.emergency({ reason: 'leaked', compromised: true, kid: compromised.kid });
    expect(first.disabledInKeyVault).toBe(false);
    world.keys.failSetState = undefined;
    const retry = await world.service.emergency({ reason: 'leaked', compromised: true, kid: compromised.kid });
    expect(retry).toMatchObject({ record: first.record, signingKid: first.signingKid, disabledInKeyVault: true });
    expect(world.keys.get(compromised.vaultKey).enabled).toBe(false);
    expect(world.sets.records).toHaveLength(2);
  });

  test('When the kid names no key of the issuer, then the request is refused naming kid and nothing rolls', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.runSchedule();
    const before = (await world.service.read())!.set;
    const error = await world.service.emergency({ reason: 'leaked', compromised: true, kid: 'A'.repeat(43) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'kid' });
    expect((await world.service.read())!.set).toEqual(before);
  });

  test('When an emergency can choose between nexts, then it prefers one published for min(publish-ahead, JWKS max-age)', () => {
    const now = new Date('2026-02-01T00:00:00Z');
    const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
    const expiresAt = new Date(now.getTime() + 100 * DAY).toISOString();
    const key = (kid: string, state: SigningKey['state'], publishedAt: string): SigningKey => ({
      kid,
      alg: 'ES256',
      vaultKey: { vault: 'local', name: kid, version: 'v1' },
      state,
      createdAt: publishedAt,
      expiresAt,
      publishedAt,
      ...(state === 'current' ? { signingFrom: publishedAt } : {}),
    });
    // Published 10 minutes ago: past the 5-minute max-age, though not past the 24 h publish-ahead.
    const set = setWith(key('young', 'next', ago(60_000)), key('signer', 'current', ago(10 * DAY)), key('settled', 'next', ago(10 * 60_000)));
    const policy = { ...defaultPolicy, publishAheadMs: 24 * HOUR, jwksMaxAgeMs: 5 * 60_000 };
    expect(planEmergency(set, now, policy, { compromised: true, targetKid: 'signer' })).toMatchObject({ type: 'promote', nextKid: 'settled' });
    // With only young nexts, the first usable one is promoted as before.
    const young = setWith(key('young', 'next', ago(60_000)), key('signer', 'current', ago(10 * DAY)));
    expect(planEmergency(young, now, policy, { compromised: true, targetKid: 'signer' })).toMatchObject({ type: 'promote', nextKid: 'young' });
  });
});

function keysNamed(set: KeySet, state: SigningKey['state']): SigningKey[] {
  return set.keys.filter((k) => k.state === state);
}

function setWith(...keys: Partial<SigningKey>[]): KeySet {
  const full = keys.map(
    (k, i): SigningKey => ({
      kid: `kid-${i + 1}`,
      alg: 'ES256',
      vaultKey: { vault: 'local', name: `k-${i + 1}`, version: 'v1' },
      state: 'next',
      createdAt: '2026-01-01T00:00:00.000Z',
      expiresAt: '2027-01-01T00:00:00.000Z',
      publishedAt: '2026-01-01T00:00:00.000Z',
      ...k,
    }),
  );
  return { id: 'keyset', issuer: 'https://keyturn.test', version: 1, nextGeneration: full.length + 1, keys: full, updatedAt: '2026-01-01T00:00:00.000Z' };
}
