/** GET /api/credentials' paging over fakes: Key Vault pages, the continuation token, one rotation query per page. */
import { randomBytes } from 'node:crypto';
import { armedFaults } from '../../../shared/adapters/faults';
import { symmetricProvider } from '../../../shared/adapters/renewal/symmetricProvider';
import { DAY_MS } from '../../../shared/domain/rotation';
import { ValidationError } from '../../../shared/errors';
import { decodeCursor, encodeCursor } from '../../../shared/services/renewal/listingCursor';
import { RenewalService } from '../../../shared/services/renewal/renewalService';
import { FakeClock, FakeDeadLetters, FakeNotifier, FakeRotations, FakeSecrets, MemoryLogger, recordingVerified } from './fakes';

function world(vaults: Record<string, string> = { local: 'https://127.0.0.1:8443' }) {
  const clock = new FakeClock();
  const secrets = new FakeSecrets(clock);
  const rotations = new FakeRotations();
  const settings = { vaults, eventVaultNames: {}, windowDays: 30, maxAttempts: 3, defaultValidityDays: 365, defaultGraceDays: 7, leaseSeconds: 60 };
  const service = new RenewalService({
    rotations,
    secrets,
    providers: { symmetric: recordingVerified(symmetricProvider, secrets), 'entra-app-password': recordingVerified(symmetricProvider, secrets) },
    deadLetters: new FakeDeadLetters(),
    notifier: new FakeNotifier(),
    clock,
    faults: armedFaults([]),
    log: new MemoryLogger(),
    settings,
    owner: 'A',
  });
  const seed = (vault: string, name: string, managed: boolean, days = 100) =>
    secrets.seed(vault, name, randomBytes(16).toString('base64'), {
      tags: managed ? { 'keyturn-provider': 'symmetric' } : { owner: 'someone' },
      expiresOn: new Date(clock.time.getTime() + days * DAY_MS),
    });
  return { clock, secrets, rotations, service, seed };
}

async function walk(service: RenewalService, top: number) {
  const pages: { names: string[]; token?: string }[] = [];
  let token: string | undefined;
  do {
    const page = await service.listCredentialsPage({ top, ...(token ? { continuationToken: token } : {}) });
    pages.push({ names: page.credentials.map((c) => `${c.vault}/${c.name}`), ...(page.continuationToken ? { token: page.continuationToken } : {}) });
    token = page.continuationToken;
  } while (token && pages.length < 1000);
  return pages;
}

test('pages of at most top managed credentials; the walk returns each managed secret exactly once, in order', async () => {
  const w = world({ local: 'https://127.0.0.1:8443', prod: 'https://127.0.0.1:9443' });
  const expected: string[] = [];
  for (let i = 0; i < 60; i++) {
    const name = `s-${String(i).padStart(3, '0')}`;
    const managed = i % 3 !== 0;
    w.seed('local', name, managed);
    if (managed) expected.push(`local/${name}`);
  }
  w.seed('local', 's-001--pending', true); // a pending copy is never listed
  for (const name of ['p-a', 'p-b', 'p-c']) {
    w.seed('prod', name, true);
    expected.push(`prod/${name}`);
  }
  for (const top of [1, 7, 25, 40, 500]) {
    const pages = await walk(w.service, top);
    expect(pages.flatMap((p) => p.names)).toEqual(expected);
    for (const p of pages) expect(p.names.length).toBeLessThanOrEqual(top);
    expect(pages.at(-1)!.token).toBeUndefined();
  }
  // The whole array as before, for callers that want it all.
  expect((await w.service.listCredentials()).map((c) => `${c.vault}/${c.name}`)).toEqual(expected);
});

test('fields are unchanged: version, expiry, stage and the latest rotation, from one rotation query per page', async () => {
  const w = world();
  const seeded = w.seed('local', 'db-key', true, 10);
  w.seed('local', 'other-key', true, 200);
  w.seed('local', 'plain', false);
  await w.service.renew('local', 'db-key');
  const current = await w.secrets.latest('local', 'db-key');
  w.rotations.setQueries = 0;
  const page = await w.service.listCredentialsPage({ top: 100 });
  expect(w.rotations.setQueries).toBe(1);
  expect(page.continuationToken).toBeUndefined();
  const row = page.credentials.find((c) => c.name === 'db-key')!;
  expect(row).toMatchObject({ vault: 'local', provider: 'symmetric', expiresOn: expect.any(String), enabled: true, stage: 'current', status: 'managed' });
  expect(row.currentVersion).toBe(current!.version);
  const [rotation] = await w.rotations.forCredential('local', 'db-key');
  expect(row.rotation).toMatchObject({ id: rotation!.id, fromVersion: seeded.version });
  expect(page.credentials.find((c) => c.name === 'other-key')!.rotation).toBeNull();
  expect(page.credentials.map((c) => c.name)).toEqual(['db-key', 'other-key']);
  expect(Object.keys(row).sort()).toEqual(['currentVersion', 'enabled', 'expiresOn', 'name', 'provider', 'rotation', 'stage', 'status', 'vault']);
});

test('a long stretch of unmanaged secrets ends a page early, with a token, and bounds Key Vault calls', async () => {
  const w = world();
  for (let i = 0; i < 300; i++) w.seed('local', `u-${String(i).padStart(3, '0')}`, false);
  w.seed('local', 'z-managed', true);
  w.secrets.listCalls = 0;
  const first = await w.service.listCredentialsPage({ top: 1 });
  expect(w.secrets.listCalls).toBeLessThanOrEqual(4);
  expect(first.credentials).toEqual([]);
  expect(first.continuationToken).toBeDefined();
  const pages = await walk(w.service, 1);
  expect(pages.flatMap((p) => p.names)).toEqual(['local/z-managed']);
});

test('a changed, foreign or malformed token is a 400 naming continuationToken', async () => {
  const w = world();
  for (let i = 0; i < 5; i++) w.seed('local', `k-${i}`, true);
  const { continuationToken } = await w.service.listCredentialsPage({ top: 2 });
  expect(continuationToken).toBeDefined();
  const token = continuationToken!;
  const flipped = token.slice(0, 3) + (token[3] === 'A' ? 'B' : 'A') + token.slice(4);
  const otherVault = encodeCursor({ vault: 'constructor', skip: 0 });
  for (const bad of [flipped, `${token}x`, 'nonsense', `${token}.x`, otherVault, encodeCursor({ vault: '__proto__', skip: 0 })]) {
    const thrown = await w.service.listCredentialsPage({ top: 2, continuationToken: bad }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).field).toBe('query.continuationToken');
  }
  expect(decodeCursor(token)).toMatchObject({ vault: 'local' });
});
