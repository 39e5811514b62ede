/** Lookups keyed by request or event data see own properties only: `constructor` is not a vault. */
import { armedFaults } from '../../../shared/adapters/faults';
import { symmetricProvider } from '../../../shared/adapters/renewal/symmetricProvider';
import { RenewalService } from '../../../shared/services/renewal/renewalService';
import { FakeClock, FakeDeadLetters, FakeNotifier, FakeRotations, FakeSecrets, MemoryLogger } from './fakes';

test.each(['constructor', 'toString', 'valueOf'])('renewing in vault %s is 404, never a crash', async (vault) => {
  const clock = new FakeClock();
  const service = new RenewalService({
    rotations: new FakeRotations(),
    secrets: new FakeSecrets(clock),
    providers: { symmetric: symmetricProvider, 'entra-app-password': symmetricProvider },
    deadLetters: new FakeDeadLetters(),
    notifier: new FakeNotifier(),
    clock,
    faults: armedFaults([]),
    log: new MemoryLogger(),
    settings: { vaults: { local: 'https://127.0.0.1:8443' }, eventVaultNames: {}, windowDays: 30, maxAttempts: 3, defaultValidityDays: 365, defaultGraceDays: 7, leaseSeconds: 60 },
    owner: 'A',
  });
  await expect(service.renew(vault, 'db-key')).rejects.toMatchObject({ code: 'NOT_FOUND' });
});
