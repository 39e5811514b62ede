/**
 * The JWKS served from memory for a bounded time (KEYTURN_JWKS_CACHE_MS): a burst of
 * requests shares one read of the key set, yet a compromised key leaves the published
 * set at once on the host that rolled it over (its key set write drops the cache), and
 * within the cache time on every other host.
 */
import { KeySetPublisher, invalidatesOnWrite } from '../../../shared/services/signing/publication';
import { SigningKeyService } from '../../../shared/services/signing/signingKeys';
import { signingKey } from '../../../shared/domain/signingKeys';
import { signingWorld } from './fakes';

const CACHE_MS = 1000;

/** A monotonic clock the test moves. */
const manualNow = () => {
  let t = 0;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
};

const kids = async (publisher: KeySetPublisher) => (JSON.parse((await publisher.current())!.body) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

/** A world whose key set reads are counted, and a publisher on it as root() builds one. */
async function world() {
  const w = signingWorld();
  await w.service.runSchedule(); // the first keys
  let reads = 0;
  const counted = { read: () => (reads++, w.service.read()) };
  const time = manualNow();
  const publisher = new KeySetPublisher({ signingKeys: counted, defaultAlg: 'RS256', cacheMs: CACHE_MS, now: time.now });
  // This host's service writes through the invalidating store, as root() wires it.
  const service = new SigningKeyService({ ...w.deps, sets: invalidatesOnWrite(w.sets, publisher) });
  return { w, publisher, service, time, reads: () => reads };
}

describe('the JWKS served from memory for at most KEYTURN_JWKS_CACHE_MS', () => {
  test('When many requests arrive within the cache time, then they share one read, and the next is made ahead of them', async () => {
    const { publisher, time, reads } = await world();
    const answers = await Promise.all(Array.from({ length: 20 }, () => publisher.current()));
    expect(new Set(answers.map((a) => a!.etag)).size).toBe(1);
    time.advance(CACHE_MS / 2 - 1);
    await publisher.current();
    expect(reads()).toBe(1);
    time.advance(1);
    // Past half the cache time: served from memory at once, refreshed in the background.
    await Promise.all(Array.from({ length: 5 }, () => publisher.current()));
    expect(reads()).toBe(2);
  });

  test('When nothing was read for the cache time, then the next request reads the key set', async () => {
    const { publisher, time, reads } = await world();
    await publisher.current();
    time.advance(CACHE_MS);
    await publisher.current();
    expect(reads()).toBe(2);
  });

  test('When this host rolls over a compromised key, then its very next JWKS no longer lists it', async () => {
    const { w, publisher, service } = await world();
    const compromised = signingKey((await w.service.read())!.set)!.kid;
    expect(await kids(publisher)).toContain(compromised); // now cached
    await service.emergency({ reason: 'leaked', compromised: true, kid: compromised });
    // No time has passed: only the invalidation can explain a fresh set.
    expect(await kids(publisher)).not.toContain(compromised);
  });

  test('When another host rolls over a compromised key, then this host lists it for at most the cache time', async () => {
    const { w, publisher, time } = await world();
    const compromised = signingKey((await w.service.read())!.set)!.kid;
    expect(await kids(publisher)).toContain(compromised);
    await w.service.emergency({ reason: 'leaked', compromised: true, kid: compromised }); // not through this host's store
    expect(await kids(publisher)).toContain(compromised); // the bound is real: still cached here
    time.advance(CACHE_MS);
    expect(await kids(publisher)).not.toContain(compromised);
  });

  test('When a read that began before the invalidation finishes after it, then it is neither cached nor shared', async () => {
    const { w } = await world();
    const before = (await w.service.read())!;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const slow = new KeySetPublisher({
      signingKeys: { read: async () => (++calls === 1 ? (await gate, before) : w.service.read()) },
      defaultAlg: 'RS256',
      cacheMs: 60_000,
      now: () => 0,
    });
    const stale = slow.current();
    slow.invalidate();
    const after = slow.current(); // starts its own read
    release();
    await Promise.all([stale, after]);
    await slow.current();
    expect(calls).toBe(2);
  });

  test('When the key set write fails, then the cache is dropped anyway (the write may have landed)', async () => {
    const { w, publisher, reads } = await world();
    await publisher.current();
    w.sets.failBeforeCommit = () => true;
    const store = invalidatesOnWrite(w.sets, publisher);
    await expect(store.write((await w.sets.read())!.set, 'any')).rejects.toThrow();
    await publisher.current();
    expect(reads()).toBe(2);
  });
});
