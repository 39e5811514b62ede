import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { publishedKeys, signingKey } from '../../../shared/domain/signingKeys';
import { KeySetPublisher, matchesEtag } from '../../../shared/services/signing/publication';
import { SigningKeyService } from '../../../shared/services/signing/signingKeys';
import { DAY, HOUR, ISSUER, silentLog, signingWorld } from './fakes';

const issuerFor = (world: ReturnType<typeof signingWorld>) => world.tokens();

async function verifyWith(world: ReturnType<typeof signingWorld>, token: string) {
  const publisher = new KeySetPublisher({ signingKeys: world.service, defaultAlg: 'RS256' });
  const jwks = createLocalJWKSet(JSON.parse((await publisher.current())!.body));
  return jwtVerify(token, jwks, { issuer: ISSUER, audience: 'api://orders', currentDate: world.clock.time });
}

const claims = { sub: 'svc-1', aud: 'api://orders', roles: ['reader'] };

describe('signing key service (in-memory ports, real crypto)', () => {
  test('When a token is requested before any key exists, then keys are bootstrapped and the token verifies with jose', async () => {
    const world = signingWorld();
    const issued = await issuerFor(world).issue({ claims, expiresInSeconds: 600 });
    const { payload, protectedHeader } = await verifyWith(world, issued.token);
    expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'JWT', kid: issued.kid });
    expect(payload).toMatchObject({ iss: ISSUER, sub: 'svc-1', roles: ['reader'] });
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(payload.iat).toBe(world.clock.time.getTime() / 1000);
    expect(world.sets.records).toHaveLength(1);
    // Key Vault holds the state as a tag after the sync.
    const { set } = (await world.service.read())!;
    for (const key of set.keys) expect(world.keys.get(key.vaultKey).state).toBe(key.state);
  });

  test('When the key type is EC P-256, then tokens are ES256 with an r‖s signature that jose verifies', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    const issued = await issuerFor(world).issue({ claims, expiresInSeconds: 60 });
    expect(decodeProtectedHeader(issued.token).alg).toBe('ES256');
    const publisher = new KeySetPublisher({ signingKeys: world.service, defaultAlg: 'ES256' });
    const body = JSON.parse((await publisher.current())!.body) as { keys: Record<string, unknown>[] };
    expect(body.keys[0]).toEqual({ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: expect.any(String), use: 'sig', alg: 'ES256' });
    await expect(jwtVerify(issued.token, createLocalJWKSet(body as never), { currentDate: world.clock.time })).resolves.toBeDefined();
  });

  test('When two timer runs race, then only one rollover happens and the loser disables the key it made', async () => {
    const world = signingWorld();
    await world.service.runSchedule();
    world.clock.advance(42 * DAY);
    const other = new SigningKeyService({ ...world.deps, log: silentLog });
    // The second run slips in between the first run's read and its write.
    world.sets.beforeWrite = async () => void (await other.runSchedule());
    await world.service.runSchedule();
    expect(world.sets.records.map((r) => r.trigger)).toEqual(['bootstrap', 'schedule']);
    const { set } = (await world.service.read())!;
    expect(set.keys.filter((k) => k.state === 'next')).toHaveLength(1);
    const known = new Set(set.keys.map((k) => `${k.vaultKey.name}/${k.vaultKey.version}`));
    const orphans = [...world.keys.keys.entries()].filter(([id]) => !known.has(id)).map(([, k]) => k);
    expect(orphans).toHaveLength(1);
    expect(orphans[0]).toMatchObject({ enabled: false, state: 'retired' });
  });

  test('When an emergency rollover marks the key compromised, then it is unpublished and disabled at once, and the record says who and why', async () => {
    const world = signingWorld();
    const before = await issuerFor(world).issue({ claims, expiresInSeconds: 600 });
    world.clock.advance(HOUR);
    const outcome = await world.service.emergency({ requestedBy: 'alice@contoso', reason: 'key leaked in a log', compromised: true });
    expect(outcome?.record).toMatchObject({
      trigger: 'emergency',
      requestedBy: 'alice@contoso',
      requestedByVerified: false,
      reason: 'key leaked in a log',
      compromised: true,
      fromKid: before.kid,
      retiredKids: [before.kid],
    });
    const { set } = (await world.service.read())!;
    expect(publishedKeys(set).map((k) => k.kid)).not.toContain(before.kid);
    const old = set.keys.find((k) => k.kid === before.kid)!;
    expect(world.keys.get(old.vaultKey).enabled).toBe(false);
    await expect(verifyWith(world, before.token)).rejects.toThrow();
    const after = await issuerFor(world).issue({ claims, expiresInSeconds: 600 });
    expect(after.kid).toBe(outcome?.record?.toKid);
    await expect(verifyWith(world, after.token)).resolves.toBeDefined();
  });

  test('When an emergency rollover is not a compromise, then old tokens still verify until the key retires', async () => {
    const world = signingWorld();
    const before = await issuerFor(world).issue({ claims, expiresInSeconds: 3600 });
    await world.service.emergency({ requestedBy: 'ops', reason: 'drill', compromised: false });
    world.clock.advance(30 * 60_000);
    await world.service.runSchedule();
    await expect(verifyWith(world, before.token)).resolves.toBeDefined();
    expect(signingKey((await world.service.read())!.set)?.kid).not.toBe(before.kid);
  });

  test('When Key Vault says the signing key is near expiry, then the rollover comes forward to the next timer run', async () => {
    const world = signingWorld();
    await world.service.runSchedule();
    world.clock.advance(2 * DAY);
    const signer = signingKey((await world.service.read())!.set)!;
    const result = await world.service.onKeyExpiring({
      vaultAlias: 'local',
      name: signer.vaultKey.name,
      version: signer.vaultKey.version,
      eventType: 'Microsoft.KeyVault.KeyNearExpiry',
    });
    expect(result).toBe('handled');
    const after = (await world.service.read())!.set;
    expect(signingKey(after)?.kid).not.toBe(signer.kid);
    expect(world.sets.records.at(-1)).toMatchObject({ trigger: 'expiry', fromKid: signer.kid });
    await expect(
      world.service.onKeyExpiring({ vaultAlias: 'local', name: 'someone-else', eventType: 'Microsoft.KeyVault.KeyNearExpiry' }),
    ).resolves.toBe('not-managed');
  });

  test('When the key set has not changed, then the JWKS is served from the cache with a stable ETag', async () => {
    const world = signingWorld();
    await world.service.runSchedule();
    const publisher = new KeySetPublisher({ signingKeys: world.service, defaultAlg: 'RS256' });
    const first = (await publisher.current())!;
    expect(await publisher.current()).toBe(first);
    expect(matchesEtag(first.etag, first.etag)).toBe(true);
    expect(matchesEtag(`W/${first.etag}, "other"`, first.etag)).toBe(true);
    expect(matchesEtag('"other"', first.etag)).toBe(false);
    await world.service.emergency({ requestedBy: 'ops', reason: 'drill', compromised: true });
    const second = (await publisher.current())!;
    expect(second.etag).not.toBe(first.etag);
    // Rendering never touches the vault: only tokens sign.
    expect(world.keys.signCalls).toBe(0);
    expect(world.keys.signAttempts).toBe(0); // not even a refused one
  });
});
