/**
 * `/api/tokens` reads the key set, then Key Vault signs: an emergency rollover can land
 * in between. The issuer re-reads the set after signing and never returns a token
 * whose key is no longer current; the emergency disables a compromised key before it
 * answers.
 */
import { createLocalJWKSet, jwtVerify } from 'jose';
import { KeyturnError } from '../../../shared/errors';
import { publishedKeys, signingKey } from '../../../shared/domain/signingKeys';
import { KeySetPublisher } from '../../../shared/services/signing/publication';
import { ISSUER, SDK_ERROR_TEXT, signingWorld } from './fakes';

const claims = { sub: 'svc-1', aud: 'api://orders' };
type World = ReturnType<typeof signingWorld>;

async function verifyNow(world: World, token: string) {
  const publisher = new KeySetPublisher({ signingKeys: world.service, defaultAlg: 'RS256' });
  const jwks = createLocalJWKSet(JSON.parse((await publisher.current())!.body));
  return jwtVerify(token, jwks, { issuer: ISSUER, audience: 'api://orders', currentDate: world.clock.time });
}

/** Runs `fn` once, the first time the hook fires. */
const once = (fn: () => Promise<unknown>) => {
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    await fn();
  };
};

describe('a token is never returned signed by a key that stopped being current', () => {
  test('When a compromised-key emergency lands between signing and returning, then the token is signed again with the new current key', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    const old = signingKey((await world.service.signingKeySet()).set)!;
    let emergencyKid: string | undefined;
    world.keys.afterSign = once(async () => {
      const result = await world.service.emergency({ reason: 'leaked', compromised: true, requestedBy: 'ops' });
      emergencyKid = result.signingKid;
    });
    const signsBefore = world.keys.signCalls;
    const issued = await world.tokens().issue({ claims, expiresInSeconds: 600 });
    expect(emergencyKid).toBeDefined();
    expect(issued.kid).toBe(emergencyKid);
    expect(issued.kid).not.toBe(old.kid);
    expect(world.keys.signCalls - signsBefore).toBe(2); // the compromised key's token was dropped
    const { set } = (await world.service.read())!;
    expect(publishedKeys(set).map((k) => k.kid)).not.toContain(old.kid);
    await expect(verifyNow(world, issued.token)).resolves.toBeDefined();
  });

  test('When the emergency disabled the key before it signed, then the refused signature is retried with the new current key', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    const old = signingKey((await world.service.signingKeySet()).set)!;
    world.keys.beforeSign = once(() => world.service.emergency({ reason: 'leaked', compromised: true }));
    const issued = await world.tokens().issue({ claims, expiresInSeconds: 600 });
    expect(issued.kid).not.toBe(old.kid);
    // The disabled key refused (no signature made), then the new signer signed once.
    expect(world.keys.signAttempts).toBe(2);
    expect(world.keys.signCalls).toBe(1);
    await expect(verifyNow(world, issued.token)).resolves.toBeDefined();
  });

  test('When the signing key changes again during the second signature, then the request is refused (409), not answered with a stale key', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.signingKeySet();
    world.keys.afterSign = () => world.service.emergency({ reason: 'drill', compromised: false }).then(() => undefined);
    const error = await world.tokens().issue({ claims, expiresInSeconds: 600 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyturnError);
    expect(error).toMatchObject({ code: 'CONFLICT' });
    expect(world.keys.signCalls).toBe(2); // both signatures were made and dropped
  });

  test('When Key Vault refuses a signature and the key is still current, then the failure is not retried and its text is not in the error', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    await world.service.signingKeySet();
    world.keys.beforeSign = async () => {
      throw new KeyturnError('DEPENDENCY_FAILED', 'Key Vault could not sign with a signing key; retry later');
    };
    await expect(world.tokens().issue({ claims, expiresInSeconds: 600 })).rejects.toMatchObject({ code: 'DEPENDENCY_FAILED' });
    // Counted on arrival (the refusal happens before a signature is made): one call, no retry.
    expect(world.keys.signAttempts).toBe(1);
    expect(world.keys.signCalls).toBe(0);
  });
});

describe('an emergency rollover of a compromised key disables it in Key Vault before it answers', () => {
  test('When the follow-up write to Key Vault fails once, then the emergency still disables the compromised key before returning', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    const old = signingKey((await world.service.signingKeySet()).set)!;
    let failures = 0;
    world.keys.failSetState = (ref, state) => ref.name === old.vaultKey.name && state === 'retired' && failures++ === 0;
    const result = await world.service.emergency({ reason: 'leaked', compromised: true });
    expect(failures).toBeGreaterThanOrEqual(2); // the follow-up failed, the emergency's own disable did not
    expect(world.keys.get(old.vaultKey)).toMatchObject({ enabled: false, state: 'retired' });
    expect(result.publishedKids).not.toContain(old.kid);
    const stored = (await world.service.read())!.set.keys.find((k) => k.kid === old.kid)!;
    expect(stored).toMatchObject({ state: 'retired', vaultState: 'retired', compromised: true });
  });

  test('When Key Vault cannot disable the compromised key, then the rollover still answers (disabledInKeyVault: false, no SDK text) and the key is unpublished anyway', async () => {
    const world = signingWorld({ keyType: 'EC-P256' });
    const old = signingKey((await world.service.signingKeySet()).set)!;
    world.keys.failSetState = (ref, state) => ref.name === old.vaultKey.name && state === 'retired';
    const result = await world.service.emergency({ reason: 'leaked', compromised: true });
    expect(result).toMatchObject({ disabledInKeyVault: false, record: { compromised: true, fromKid: old.kid, retiredKids: [old.kid] } });
    expect(JSON.stringify(result)).not.toContain(SDK_ERROR_TEXT);
    expect(world.keys.get(old.vaultKey).enabled).toBe(true);
    expect(publishedKeys((await world.service.read())!.set).map((k) => k.kid)).not.toContain(old.kid);
    // The timer keeps trying until Key Vault answers.
    world.keys.failSetState = undefined;
    await world.service.runSchedule();
    expect(world.keys.get(old.vaultKey).enabled).toBe(false);
  });
});
