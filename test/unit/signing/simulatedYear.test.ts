/**
 * A year of hourly timer runs on a fake clock. At every instant: at least two keys
 * are published once the first rollover has happened, the signing key has been
 * published for the publish-ahead time, and every unexpired token still verifies
 * against the published set (jose, real signatures).
 */
import { createLocalJWKSet, jwtVerify } from 'jose';
import { type RolloverPolicy, publishedKeys, signingKey } from '../../../shared/domain/signingKeys';
import { KeySetPublisher } from '../../../shared/services/signing/publication';
import { DAY, HOUR, ISSUER, signingWorld } from './fakes';

interface Scenario {
  name: string;
  policy: RolloverPolicy;
  keyType: 'RSA-2048' | 'EC-P256';
  /** Hours (from the start) at which Key Vault reports the signing key near expiry. */
  nearExpiryAt?: number[];
  /** Hours at which an operator asks for a (not compromised) emergency rollover. */
  emergencyAt?: number[];
}

async function simulateYear(s: Scenario) {
  const world = signingWorld({ policy: s.policy, keyType: s.keyType });
  const tokens = world.tokens();
  const publisher = new KeySetPublisher({ signingKeys: world.service, defaultAlg: s.keyType === 'EC-P256' ? 'ES256' : 'RS256' });
  let live: { token: string; exp: number; kid: string }[] = [];
  const lifetime = s.policy.tokenMaxLifetimeMs / 1000;
  /** Keys that started signing without publish-ahead: the first key and emergency promotions. */
  const signedAtOnce = new Set<string>();
  let rollovers = 0;
  /** Tokens verified with jose: without counting, "each token is verified" would pass with none checked. */
  let verified = 0;
  // Like a relying party: the key set is re-imported only when it changes.
  let jwks = { etag: '', set: createLocalJWKSet({ keys: [] }) };

  for (let hour = 0; hour <= 365 * 24; hour++) {
    if (s.nearExpiryAt?.includes(hour)) {
      const signer = signingKey((await world.service.read())!.set)!;
      await world.service.onKeyExpiring({ vaultAlias: 'local', ...signer.vaultKey, eventType: 'Microsoft.KeyVault.KeyNearExpiry' });
    }
    if (s.emergencyAt?.includes(hour)) {
      const outcome = await world.service.emergency({ requestedBy: 'drill', reason: 'simulated', compromised: false });
      signedAtOnce.add(outcome!.record!.toKid); // an emergency does not wait for publish-ahead
    }
    await world.service.runSchedule();
    const now = new Date(world.clock.time);
    const { set } = (await world.service.read())!;
    const signer = signingKey(set)!;
    if (hour === 0) signedAtOnce.add(signer.kid);
    rollovers = world.sets.records.length - 1;

    if (rollovers > 0) expect(publishedKeys(set).length).toBeGreaterThanOrEqual(2);
    if (!signedAtOnce.has(signer.kid)) {
      expect(now.getTime() - Date.parse(signer.publishedAt)).toBeGreaterThanOrEqual(s.policy.publishAheadMs);
    }

    // Every live token's key is published; each token is verified with jose at the last check before it expires.
    const published = (await publisher.current())!;
    if (published.etag !== jwks.etag) jwks = { etag: published.etag, set: createLocalJWKSet(JSON.parse(published.body)) };
    const publishedKids = new Set(publishedKeys(set).map((k) => k.kid));
    live = live.filter((t) => t.exp > now.getTime());
    for (const t of live) {
      expect(publishedKids.has(t.kid) ? t.kid : `unpublished ${t.kid} at ${now.toISOString()}`).toBe(t.kid);
      if (t.exp <= now.getTime() + HOUR) {
        await expect(jwtVerify(t.token, jwks.set, { issuer: ISSUER, audience: 'rp', currentDate: now })).resolves.toBeDefined();
        verified++;
      }
    }

    // A full-lifetime token mid-hour, so it is alive across the next timer run.
    world.clock.advance(HOUR / 2);
    const issued = await tokens.issue({ claims: { sub: `h${hour}`, aud: 'rp' }, expiresInSeconds: lifetime });
    live.push({ token: issued.token, exp: Date.parse(issued.expiresAt), kid: issued.kid });
    world.clock.advance(HOUR / 2);
  }
  // One token an hour, each verified at the last check before it expires (the last few outlive the year).
  expect(verified).toBeGreaterThanOrEqual(365 * 24 - Math.ceil(lifetime / 3600));
  return { world, rollovers };
}

describe('a simulated year of hourly rollover runs', () => {
  test('When the defaults run for a year (RS256, 42 days, 24 h ahead, 60 min tokens), then every invariant holds at every hour', async () => {
    const { rollovers, world } = await simulateYear({
      name: 'defaults',
      keyType: 'RSA-2048',
      policy: { rolloverMs: 42 * DAY, publishAheadMs: 24 * HOUR, tokenMaxLifetimeMs: 60 * 60_000, jwksMaxAgeMs: 300_000 },
    });
    expect(rollovers).toBe(8); // days 42, 84, …, 336
    expect(world.sets.records.every((r) => r.trigger !== 'emergency')).toBe(true);
  });

  test('When rollovers are fast and expiry events and drills interrupt them (ES256), then every invariant still holds', async () => {
    const { rollovers, world } = await simulateYear({
      name: 'stress',
      keyType: 'EC-P256',
      policy: { rolloverMs: 3 * DAY, publishAheadMs: 6 * HOUR, tokenMaxLifetimeMs: 4 * 60 * 60_000, jwksMaxAgeMs: 300_000 },
      nearExpiryAt: [100, 2000, 2003, 5000],
      emergencyAt: [3001, 7000],
    });
    expect(rollovers).toBeGreaterThan(100);
    expect(world.sets.records.filter((r) => r.trigger === 'expiry').length).toBeGreaterThanOrEqual(2);
    expect(world.sets.records.filter((r) => r.trigger === 'emergency')).toHaveLength(2);
    // Retired keys are disabled in the vault.
    const { set } = (await world.service.read())!;
    for (const key of set.keys.filter((k) => k.state === 'retired')) expect(world.keys.get(key.vaultKey).enabled).toBe(false);
  });
});
