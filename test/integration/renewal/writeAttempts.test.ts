/**
 * How often the SDK sent a secret write, as the Key Vault secret store reports it: the
 * real SecretClient pipeline (the clients' send counter, the SDK's own retry policy)
 * against the emulator. A write whose answer is lost after it landed is sent again by
 * the SDK's retry policy and lands twice: the store must say so, and the renewal must
 * then disable the older copy. The lost answer is simulated by a test policy in the
 * pipeline (the emulator cannot drop a connection after answering).
 */
import { RestError } from '@azure/core-rest-pipeline';
import { armedFaults } from '../../../shared/adapters/faults';
import { type KeyVaultClients, createKeyVaultClients } from '../../../shared/adapters/keyVault/clients';
import { keyVaultSecretStore } from '../../../shared/adapters/renewal/keyVaultSecretStore';
import { symmetricProvider } from '../../../shared/adapters/renewal/symmetricProvider';
import { DAY_MS } from '../../../shared/domain/rotation';
import { RenewalService } from '../../../shared/services/renewal/renewalService';
import { SecretValue } from '../../../shared/services/renewal/ports';
import { type TestVault, startTestVault } from '../../helpers/keyvault';
import { FakeClock, FakeDeadLetters, FakeNotifier, FakeRotations, MemoryLogger } from '../../unit/renewal/fakes';

interface Request {
  method: string;
  url: string;
}

/** Sends the next armed PUT to `name`, then throws as if the connection dropped before its answer. */
function losingAnswers(sent: Request[]) {
  const arm = new Set<string>();
  const policy = {
    name: 'testLoseAnswer',
    async sendRequest(request: unknown, next: (r: unknown) => Promise<unknown>) {
      const r = request as Request & { body?: unknown };
      sent.push({ method: r.method, url: r.url });
      const name = new URL(r.url).pathname.split('/')[2] ?? '';
      const response = await next(request);
      if (r.method === 'PUT' && r.body && arm.delete(decodeURIComponent(name))) {
        throw new RestError('socket hang up', { code: 'ECONNRESET', request: request as never });
      }
      return response;
    },
  };
  return { policy, arm };
}

describe('the secret store counts the sends of each write', () => {
  let vault: TestVault;
  let clients: KeyVaultClients;
  const sent: Request[] = [];
  const losing = losingAnswers(sent);
  beforeAll(async () => {
    vault = await startTestVault();
    clients = createKeyVaultClients({ main: vault.emulator.url }, { emulatorCa: vault.emulator.ca, extraPolicies: () => [{ policy: losing.policy, position: 'perRetry' }] });
  });
  afterAll(() => vault?.close());
  const store = () => keyVaultSecretStore((alias) => clients.secrets(alias));
  const value = () => new SecretValue(`v-${Math.random()}`);

  test('sent once: attempts 1; an answer lost after the write landed: the SDK sends it again, attempts 2, two versions', async () => {
    // A fresh client's first request is sent twice (the auth challenge without its body, then itself): counted, never less.
    const first = await store().write('main', 'warm-up', value(), { tags: {} });
    expect(first.attempts).toBe(2);

    const once = await store().write('main', 'counted', value(), { tags: { a: '1' } });
    expect(once.attempts).toBe(1);
    expect(await store().versions('main', 'counted')).toHaveLength(1);

    losing.arm.add('counted');
    const twice = await store().write('main', 'counted', value(), { tags: { a: '2' } });
    expect(twice.attempts).toBe(2);
    const versions = await store().versions('main', 'counted');
    expect(versions).toHaveLength(3);
    expect(versions.filter((v) => v.tags.a === '2')).toHaveLength(2);
    expect(losing.arm.size).toBe(0); // the fault was really served
  });

  test('a client without the counter (not built by createKeyVaultClients): attempts unknown', async () => {
    const written = await keyVaultSecretStore(() => vault.secrets).write('main', 'uncounted', value(), { tags: {} });
    expect(written.version).toMatch(/^[0-9a-f]{32}$/);
    expect(written.attempts).toBeUndefined();
  });

  describe('a renewal through the real SDK', () => {
    const world = () => {
      const clock = new FakeClock(new Date());
      const rotations = new FakeRotations();
      const secrets = store();
      const renewal = new RenewalService({
        rotations,
        secrets,
        providers: { symmetric: symmetricProvider, 'entra-app-password': symmetricProvider },
        deadLetters: new FakeDeadLetters(),
        notifier: new FakeNotifier(),
        clock,
        faults: armedFaults([]),
        log: new MemoryLogger(),
        settings: {
          vaults: { main: vault.emulator.url },
          eventVaultNames: { [vault.emulator.vaultName]: 'main' },
          windowDays: 30,
          maxAttempts: 3,
          defaultValidityDays: 365,
          defaultGraceDays: 7,
          leaseSeconds: 300,
        },
        owner: 'test',
      });
      return { clock, rotations, secrets, renewal };
    };
    const seed = async (name: string, clock: FakeClock) =>
      vault.secrets.setSecret(name, Buffer.alloc(32, 7).toString('base64'), {
        tags: { 'keyturn-provider': 'symmetric' },
        expiresOn: new Date(clock.time.getTime() + 10 * DAY_MS),
      });
    const listings = (from: number, name: string) =>
      sent.slice(from).filter((r) => r.method === 'GET' && new URL(r.url).pathname.replace(/\/+$/, '') === `/secrets/${name}/versions`);

    test('each write sent once: no version listing until grace (create, verify, promote made 7 requests)', async () => {
      const w = world();
      const s = await seed('renew-once', w.clock);
      const from = sent.length;
      const outcome = await w.renewal.startRenewal({ vault: 'main', name: s.name, version: s.properties.version!, trigger: 'SecretNearExpiry' });
      expect(outcome.outcome).toBe('started');
      expect(w.rotations.all()[0]).toMatchObject({ status: 'active', step: 'retire' });
      const made = sent.slice(from).filter((r) => new URL(r.url).pathname.startsWith('/secrets/renew-once'));
      expect(made.map((r) => r.method).sort()).toEqual(['GET', 'GET', 'GET', 'PATCH', 'PATCH', 'PUT', 'PUT']);
      expect(listings(from, 'renew-once')).toEqual([]);
      expect((await w.secrets.versions('main', 'renew-once--pending')).map((v) => v.enabled)).toEqual([false]);
    });

    test('the promote write sent twice: the older copy is listed and disabled at promote, the newer is current', async () => {
      const w = world();
      const s = await seed('renew-twice', w.clock);
      const from = sent.length;
      losing.arm.add('renew-twice');
      await w.renewal.startRenewal({ vault: 'main', name: s.name, version: s.properties.version!, trigger: 'SecretNearExpiry' });
      const r = w.rotations.all()[0]!;
      expect(r).toMatchObject({ status: 'active', step: 'retire' });
      expect(losing.arm.size).toBe(0);
      expect(listings(from, 'renew-twice')).toHaveLength(1);
      const versions = await w.secrets.versions('main', 'renew-twice');
      const promoted = versions.filter((v) => v.tags['keyturn-rotation'] === r.id);
      expect(promoted).toHaveLength(2);
      expect(promoted.find((v) => v.version === r.promoted!.version)?.enabled).toBe(true);
      expect(promoted.filter((v) => v.version !== r.promoted!.version).map((v) => v.enabled)).toEqual([false]);
      expect((await vault.secrets.getSecret('renew-twice')).properties.version).toBe(r.promoted!.version);
    });
  });
});
