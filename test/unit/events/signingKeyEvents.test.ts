/** Signing's handler in the event intake: expiring signing keys are its own, everything else is not. */
import type { KeyVaultEvent } from '../../../shared/domain/keyVaultEvent';
import type { SigningKeyService } from '../../../shared/services/signing/signingKeys';
import { signingKeyEventHandler } from '../../../shared/services/signing/keyEvents';
import { MemoryLogger } from '../renewal/fakes';

const event = (objectType: KeyVaultEvent['objectType'], kind: string, objectName = 'keyturn-signing-3'): KeyVaultEvent => ({
  schema: 'EventGrid',
  id: 'e1',
  type: `Microsoft.KeyVault.${kind}`,
  kind,
  topic: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v',
  vaultName: 'v',
  objectType,
  objectName,
  version: 'abc',
  nbf: null,
  exp: null,
});

function handler(answer: 'handled' | 'not-managed') {
  const calls: unknown[] = [];
  const service = { onKeyExpiring: async (e: unknown) => (calls.push(e), answer) } as unknown as SigningKeyService;
  return { h: signingKeyEventHandler(() => service), calls };
}

test('an expiring key the signing life cycle manages is handled', async () => {
  const { h, calls } = handler('handled');
  expect(await h.handle({ vaultAlias: 'local', event: event('Key', 'KeyNearExpiry') }, new MemoryLogger())).toEqual({ answer: 'handled', outcome: 'rollover-brought-forward' });
  expect(calls).toEqual([{ vaultAlias: 'local', name: 'keyturn-signing-3', version: 'abc', eventType: 'KeyNearExpiry' }]);
});

test('secrets, other key events and unmanaged keys are not signing’s', async () => {
  const log = new MemoryLogger();
  const managed = handler('handled');
  expect(await managed.h.handle({ vaultAlias: 'local', event: event('Secret', 'SecretNearExpiry') }, log)).toEqual({ answer: 'not-mine' });
  expect(await managed.h.handle({ vaultAlias: 'local', event: event('Key', 'KeyNewVersionCreated') }, log)).toMatchObject({ answer: 'not-mine' });
  expect(managed.calls).toEqual([]);
  const unmanaged = handler('not-managed');
  expect(await unmanaged.h.handle({ vaultAlias: 'local', event: event('Key', 'KeyExpired', 'other') }, log)).toEqual({ answer: 'not-mine', reason: 'key not managed by Keyturn' });
});
