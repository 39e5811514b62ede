/**
 * Anonymous JWKS/discovery requests only read: before the first keys exist they find
 * none and create none. Bootstrap belongs to the rollover timer and to `/api/tokens`
 * (function auth), where one bootstrap at a time runs per process.
 */
import { signingKey } from '../../../shared/domain/signingKeys';
import { KeySetPublisher } from '../../../shared/services/signing/publication';
import { signingWorld } from './fakes';

const claims = { sub: 'svc-1', aud: 'api://orders' };

describe('publication is read-only; tokens bootstrap once per process', () => {
  test('When many anonymous JWKS and discovery requests arrive before any key exists, then none of them creates a key', async () => {
    const world = signingWorld();
    const publisher = new KeySetPublisher({ signingKeys: world.service, defaultAlg: 'RS256' });
    const answers = await Promise.all(Array.from({ length: 20 }, () => publisher.current()));
    expect(answers.every((a) => a === undefined)).toBe(true);
    // Discovery still answers, with the configured algorithm.
    await expect(publisher.algs()).resolves.toEqual(['RS256']);
    expect(world.keys.createCalls).toBe(0);
    expect(world.sets.writes).toBe(0);
    await expect(world.service.read()).resolves.toBeUndefined();
  });

  test('When the timer has bootstrapped, then the JWKS lists the signer and the next key', async () => {
    const world = signingWorld();
    const publisher = new KeySetPublisher({ signingKeys: world.service, defaultAlg: 'RS256' });
    await world.service.runSchedule();
    const body = JSON.parse((await publisher.current())!.body) as { keys: { kid: string }[] };
    expect(body.keys).toHaveLength(2);
    expect(world.keys.createCalls).toBe(2);
  });

  test('When concurrent token requests find no key set, then one bootstrap runs and every token is signed by its key', async () => {
    const world = signingWorld();
    // Separate issuers (one per invocation, as root() builds them) share the process's bootstrap.
    const issued = await Promise.all(Array.from({ length: 8 }, () => world.tokens().issue({ claims, expiresInSeconds: 60 })));
    expect(world.keys.createCalls).toBe(2); // the signer and the next: no key created and discarded
    expect(new Set(issued.map((t) => t.kid)).size).toBe(1);
    expect(world.sets.records.map((r) => r.trigger)).toEqual(['bootstrap']);
    expect(signingKey((await world.service.read())!.set)?.kid).toBe(issued[0]!.kid);
  });
});
