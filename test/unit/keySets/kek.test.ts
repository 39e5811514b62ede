/**
 * The KEK routes' rules with a stand-in vault and store (the deleted, replaced and
 * re-published KEK runs against the local stack in the lifecycle integration test):
 * GET …/kek never writes; a replacement only for a Keyturn-owned KEK that is gone.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { KeySet } from '../../../shared/domain/keySet';
import { KeyturnError } from '../../../shared/errors';
import type { VaultKeys } from '../../../shared/ports';
import { type KekDeps, currentKek, replaceLostKek } from '../../../shared/services/keySets/kek';
import type { KeySetService } from '../../../shared/services/keySets/keySetService';

const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
const log = { info() {}, warn() {}, error() {} } as never;

function setup(kek: Partial<KeySet['kek']>, vault: 'present' | 'deleted' | 'purged' | 'forbidden') {
  let set = { setId: 's', uid: 'u', kek: { vaultUrl: 'https://v', name: 'kek', version: 'v1', owned: true, ...kek } } as KeySet;
  const writes: string[] = [];
  const keys = {
    async get(ref) {
      writes.push(`get ${ref.name}`);
      if (ref.name !== 'kek') return { properties: { name: ref.name, version: 'n1' }, publicJwk: jwk } as never;
      if (vault === 'forbidden') throw new KeyturnError('ACCESS_DENIED', 'denied');
      return vault === 'present' ? ({ properties: { name: 'kek', version: 'v1' }, publicJwk: jwk } as never) : undefined;
    },
    async getDeleted() {
      return vault === 'deleted' ? { name: 'kek' } : undefined;
    },
    async delete(_v, name) {
      writes.push(`delete ${name}`);
    },
  } as Partial<VaultKeys> as VaultKeys;
  const service = {
    readSet: async () => ({ doc: set, etag: 'e1' }),
    createOwnedKek: async () => (writes.push('create'), { vaultUrl: 'https://v', name: 'kek-new', version: 'n1', owned: true }),
    forgetCached() {},
    view: async () => ({ setId: 's', kek: set.kek, replacedKeks: set.replacedKeks ?? [] }),
  } as unknown as KeySetService;
  const deps: KekDeps = {
    keys,
    clock: { now: async () => new Date('2026-01-01T00:00:00Z') },
    service: () => service,
    store: { replaceSet: async (next: KeySet) => (writes.push('replaceSet'), (set = next), { doc: next, etag: 'e2' }) } as never,
  };
  return { deps, writes, set: () => set };
}

describe('the KEK routes', () => {
  test('GET …/kek publishes a present KEK and only reads', async () => {
    const { deps, writes } = setup({}, 'present');
    expect(await currentKek(deps, log, 's')).toMatchObject({ kid: 'https://v/keys/kek/v1', alg: 'RSA-OAEP-256', jwk: { kty: 'RSA', use: 'enc' } });
    expect(writes).toEqual(['get kek']);
  });

  test.each([
    ['soft-deleted', 'deleted', true, ['recover', 'replace', 'import', 'abandon']],
    ['purged', 'purged', false, ['replace', 'import', 'abandon']],
  ] as const)('GET …/kek of a %s Keyturn-owned KEK: 409 KEK_UNAVAILABLE naming the ways out, nothing written', async (_label, vault, recoverable, waysOut) => {
    const { deps, writes } = setup({}, vault);
    await expect(currentKek(deps, log, 's')).rejects.toMatchObject({ code: 'KEK_UNAVAILABLE', details: { setId: 's', kekState: 'deleted', recoverable, waysOut } });
    expect(writes).toEqual(['get kek']);
  });

  test('replace: a new KEK recorded on the set with the one it replaced; refused while present, on a 403 and for a customer KEK', async () => {
    const lost = setup({}, 'purged');
    const out = await replaceLostKek(lost.deps, log, 's');
    expect(out).toMatchObject({ kid: 'https://v/keys/kek-new/n1', replacedKid: 'https://v/keys/kek/v1' });
    expect(lost.set().kek.name).toBe('kek-new');
    expect(lost.set().replacedKeks).toEqual([{ vaultUrl: 'https://v', name: 'kek', version: 'v1', replacedAt: '2026-01-01T00:00:00.000Z' }]);
    await expect(replaceLostKek(setup({}, 'present').deps, log, 's')).rejects.toMatchObject({ code: 'KEK_PRESENT' });
    const forbidden = setup({}, 'forbidden');
    await expect(replaceLostKek(forbidden.deps, log, 's')).rejects.toMatchObject({ code: 'KEK_UNAVAILABLE', details: { kekState: 'access-denied', waysOut: ['restore-access'] } });
    const customer = setup({ owned: false }, 'purged');
    await expect(replaceLostKek(customer.deps, log, 's')).rejects.toMatchObject({ code: 'KEK_NOT_OWNED' });
    expect([...forbidden.writes, ...customer.writes].filter((w) => !w.startsWith('get'))).toEqual([]);
  });
});
