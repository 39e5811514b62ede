/**
 * The key-set part of the playbooks' wiring (`shared/roots/playbookKeySets.ts`) over an
 * in-memory key-set root: `all: true` snapshots every set through the store's paged
 * listing (more than one page here), named sets are read by id, and `key-leaked` on a set
 * named without keys replaces its live keys.
 */
import { planPlaybook } from '../../../shared/domain/playbooks';
import { notFound } from '../../../shared/errors';
import type { KeySetsRoot } from '../../../shared/roots/keySets';
import { keySetPlaybookParts } from '../../../shared/roots/playbookKeySets';
import { affectedSnapshot } from '../../../shared/services/playbooks/snapshot';

const quiet = { info() {}, warn() {}, error() {} };
const IDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];

function fakeKeySets() {
  const pages: (string | undefined)[] = [];
  const view = async (setId: string) => {
    if (!IDS.includes(setId)) throw notFound(`Key set '${setId}'`, { setId });
    return {
      setId,
      kek: { vaultUrl: 'https://keyturn.vault.azure.net', name: `kek-${setId}`, version: 'v1', owned: setId !== 'echo' },
      primaryKeyId: 'k2',
      keys: [{ keyId: 'k1', state: 'retired' }, { keyId: 'k2', state: 'primary' }],
    };
  };
  const root = {
    service: () => ({ view }),
    // Set-id order, `maxItems` at a time; the continuation is the next index (the store's own in Cosmos DB).
    async listSetIds(page: { maxItems: number; continuation?: string }) {
      pages.push(page.continuation);
      const from = Number(page.continuation ?? 0);
      const next = from + page.maxItems;
      return { setIds: IDS.slice(from, next), ...(next < IDS.length ? { continuation: String(next) } : {}) };
    },
  } as unknown as KeySetsRoot;
  return { root, pages };
}

const parts = (root: KeySetsRoot) => keySetPlaybookParts(root, () => quiet, () => 'local', async () => 2048, 2);

test('all: true snapshots every key set, page by page (three pages of two)', async () => {
  const { root, pages } = fakeKeySets();
  const sets = await parts(root).snapshot();
  expect(sets.map((s) => s.set)).toEqual(IDS);
  expect(pages).toEqual([undefined, '2', '4']);
  expect(sets[0]).toEqual({ set: 'alpha', kekVault: 'local', kekOwned: true, kekRsaBits: 2048, keys: [{ keyId: 'k1', state: 'retired' }, { keyId: 'k2', state: 'primary' }] });
  // The scope check's lookup lists every set too.
  expect(await parts(root).lookup.sets()).toEqual(IDS);
});

test('named sets are read by id (unknown ones are left out); no listing', async () => {
  const { root, pages } = fakeKeySets();
  expect((await parts(root).snapshot(['bravo', 'zulu'])).map((s) => s.set)).toEqual(['bravo']);
  expect(await parts(root).lookup.sets(['zulu', 'delta'])).toEqual(['delta']);
  expect(pages).toEqual([]);
});

test('a playbook over all: true sees the sets nobody named: algorithm-weakness rotates every owned weak KEK, key-leaked replaces their live keys', async () => {
  const { root } = fakeKeySets();
  const inventory = {
    tenants: async () => [],
    tenantsByKid: async () => [],
    signingKeys: async () => [],
    keySets: parts(root).snapshot,
    credentialVersion: async () => undefined,
    vaultScopes: () => ({ own: {}, customer: {} }),
    assignmentsAt: async () => [],
  };
  const snapshot = await affectedSnapshot(inventory, { all: true });
  expect(snapshot.keySets.map((s) => s.set)).toEqual(IDS);
  const ctx = { protectedPrincipals: [], policy: { version: 1, rsaMinBits: 2048, forbiddenAlgorithms: [] } };
  const weak = planPlaybook('algorithm-weakness', { policy: { rsaMinBits: 3072 } }, snapshot, ctx);
  expect(weak.filter((s) => s.kind === 'kek-rotate').map((s) => s.id)).toEqual(['alpha', 'bravo', 'charlie', 'delta'].map((s) => `kek-rotate:${s}`));
  const leaked = planPlaybook('key-leaked', {}, snapshot, ctx);
  expect(leaked.filter((s) => s.kind === 'keyset-add-key')).toHaveLength(5);
  // The retired key needs nothing; the live primary is replaced, re-encrypted away from and retired.
  expect(leaked.filter((s) => s.kind === 'keyset-retire-key').map((s) => s.id)).toEqual(IDS.map((s) => `keyset-retire-key:${s}:k2`));
  expect(leaked.find((s) => s.id === 'keyset-add-key:alpha')).toMatchObject({ replacing: ['k2'] });
});
