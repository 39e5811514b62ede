/**
 * Key Vault's deletion recovery level, as the SDK reads it: `Recoverable` on a vault
 * with purge protection (no purge before the retention ends), `Recoverable+Purgeable`
 * without it (Key Vault's DeletionRecoveryLevel values).
 */
import { startRbacStack, type RbacStack } from '../../helpers/rbac';
import { startTestVault, type TestVault } from '../../helpers/keyvault';

describe('recoveryLevel follows purge protection', () => {
  let stack: RbacStack;
  let plain: TestVault;
  beforeAll(async () => {
    stack = await startRbacStack();
    plain = await startTestVault({ purgeProtection: false });
  });
  afterAll(async () => {
    await stack.close();
    await plain.close();
  });

  it('purge-protected vaults report Recoverable on keys, secrets and deleted objects', async () => {
    const admin = stack.as('contoso-admin', stack.customer);
    const key = await admin.keys.createRsaKey('rl-key');
    expect(key.properties.recoveryLevel).toBe('Recoverable');
    const secret = await admin.secrets.setSecret('rl-secret', 'v');
    expect(secret.properties.recoveryLevel).toBe('Recoverable');
    for await (const p of admin.secrets.listPropertiesOfSecrets()) expect(p.recoveryLevel).toBe('Recoverable');
    const deleted = await (await admin.keys.beginDeleteKey('rl-key')).pollUntilDone();
    expect(deleted.properties.recoveryLevel).toBe('Recoverable');
  });

  it('a vault without purge protection reports Recoverable+Purgeable', async () => {
    const key = await plain.keys.createRsaKey('rl-key');
    expect(key.properties.recoveryLevel).toBe('Recoverable+Purgeable');
    expect((await plain.secrets.setSecret('rl-secret', 'v')).properties.recoveryLevel).toBe('Recoverable+Purgeable');
  });
});
