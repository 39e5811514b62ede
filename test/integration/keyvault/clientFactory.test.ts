/**
 * The app's Key Vault client factory against the emulator: a fresh client whose first
 * requests run concurrently must not lose a request body in the SDK's auth challenge.
 */
import { createKeyVaultClients } from '../../../shared/adapters/keyVault/clients';
import { startTestVault, type TestVault } from '../../helpers/keyvault';

/** Slows the first request inside the retry loop, which lets the others overtake it (the race). */
function slowFirstRequest() {
  let first = true;
  return {
    name: 'slowFirstRequest',
    async sendRequest(request: unknown, next: (r: unknown) => Promise<unknown>) {
      const isFirst = first;
      first = false;
      if (isFirst) await new Promise((r) => setTimeout(r, 150));
      return next(request);
    },
  };
}

describe('Key Vault client factory', () => {
  let vault: TestVault;
  beforeAll(async () => {
    vault = await startTestVault();
  });
  afterAll(() => vault.close());

  test('a fresh client sends concurrent first requests with their bodies', async () => {
    const clients = createKeyVaultClients(
      { main: vault.emulator.url },
      { emulatorCa: vault.emulator.ca, extraPolicies: () => [{ policy: slowFirstRequest(), position: 'perRetry' }] },
    );
    const keys = clients.keys('MAIN');
    const results = await Promise.allSettled([0, 1, 2, 3, 4].map((i) => keys.createEcKey(`concurrent-${i}`)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    // One client per vault and kind, whatever the key's casing.
    expect(clients.keys('main')).toBe(keys);
    expect(clients.secrets('main')).not.toBe(keys);
    expect(() => clients.secrets('other')).toThrow(/Vault 'other'/);
  });
});
