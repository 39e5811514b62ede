/** The Key Vault emulator answers 20% of requests with 429/503: renewals still complete. */
import { type TestStack, call, startStack } from '../../helpers/stack';
import { DAY_S, seedSymmetric, versions, waitForState } from './helpers';

describe('When Key Vault throttles and fails 20% of requests', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ keyVaultFaults: 0.2, env: { KEYTURN_SWEEP_SCHEDULE: '0 0 0 1 1 *' } });
  });
  afterAll(() => stack?.stop());

  test('then the renewal completes through retries and the old version is retired after grace', async () => {
    await seedSymmetric(stack, 'flaky-key', 10);
    await waitForState(stack.host!.url, 'flaky-key', 'grace', 180_000);
    // Past promote (announced): the pending copy is disabled whatever the faults did.
    expect((await versions(stack.keyVault.secretClient(), 'flaky-key--pending')).filter((v) => v.enabled)).toEqual([]);
    await stack.keyVault.moveClock(8 * DAY_S);
    await waitForState(stack.host!.url, 'flaky-key', 'completed', 180_000);
    const all = await versions(stack.keyVault.secretClient(), 'flaky-key');
    expect(all).toHaveLength(2);
    expect(all.map((v) => v.enabled)).toEqual([false, true]);
    expect((await versions(stack.keyVault.secretClient(), 'flaky-key--pending')).filter((v) => v.enabled)).toEqual([]);
    // The faults were really served to the app: without them this test proves nothing.
    const faults = (await call('GET', `${stack.keyVault.url}/management/faults`, { ca: stack.ca })).json<{ rate: number; served: number }>();
    expect(faults.rate).toBe(0.2);
    expect(faults.served).toBeGreaterThan(0);
  });
});
