/** Each vault keeps its own state; role assignments and the one clock survive a restart (not re-seeded). */
import { SecretClient } from '@azure/keyvault-secrets';
import { join } from 'node:path';
import { Authorization, CUSTOMER_VAULT, DEFAULT_SUBSCRIPTION, startKeyVaultEmulators } from '../../../local/keyvault';
import { credentialFor, resolveObjectId } from '../../../local/keyvault/principals';
import { tempDir, DAY } from '../../helpers/keyvault';

describe('several vaults: persistence', () => {
  const dir = tempDir('kv-multi-');
  const tlsDir = tempDir('kv-multi-tls-');
  afterAll(() => {
    dir.remove();
    tlsDir.remove();
  });

  const start = () =>
    startKeyVaultEmulators({
      vaults: [
        { vaultName: 'keyturn-local', port: 0, dataDir: join(dir.path, 'keyturn-local') },
        { vaultName: CUSTOMER_VAULT, port: 0, dataDir: join(dir.path, CUSTOMER_VAULT) },
      ],
      tlsDir: tlsDir.path,
      authorization: new Authorization(DEFAULT_SUBSCRIPTION, join(dir.path, 'role-assignments.json')),
      faults: { rate: 0 },
    });
  const secrets = (url: string, ca: string, who: string) => new SecretClient(url, credentialFor(who), { disableChallengeResourceVerification: true, tlsOptions: { ca } });

  it('restarts with each vault’s objects, the removed assignment still removed, and the clock moved', async () => {
    const first = await start();
    const customer = first.vault(CUSTOMER_VAULT);
    const keyturn = first.vault('keyturn-local');
    await secrets(customer.url, customer.ca, 'contoso-admin').setSecret('in-byok', 'b');
    await secrets(keyturn.url, keyturn.ca, 'operator').setSecret('in-keyturn', 'k');
    // Remove the operator's Administrator role on keyturn-local.
    const op = resolveObjectId('operator');
    const admin = first.authorization!.list().find((a) => a.principalId === op && a.roleDefinitionId.endsWith('00482a5a-887f-4fb3-b363-3b7fe8e74483'));
    first.authorization!.remove(admin!.name);
    await first.clock.advance(3 * DAY);
    const movedTo = first.clock.now().getTime();
    await first.close();

    const second = await start();
    try {
      expect(second.authorization!.loadedFresh).toBe(false);
      expect(second.clock.now().getTime()).toBeGreaterThanOrEqual(movedTo);
      const c2 = second.vault(CUSTOMER_VAULT);
      const k2 = second.vault('keyturn-local');
      expect((await secrets(c2.url, c2.ca, 'contoso-admin').getSecret('in-byok')).value).toBe('b');
      await expect(secrets(c2.url, c2.ca, 'contoso-admin').getSecret('in-keyturn')).rejects.toMatchObject({ statusCode: 404 });
      // Not re-seeded: the operator lost secret reads on keyturn-local for good.
      await expect(secrets(k2.url, k2.ca, 'operator').getSecret('in-keyturn')).rejects.toMatchObject({ statusCode: 403 });
      expect((await secrets(k2.url, k2.ca, 'keyturn-app').getSecret('in-keyturn')).value).toBe('k');
    } finally {
      await second.close();
    }
  });
});
