/**
 * Signing keys follow the key policy (issue 11 item 2): an RSA signing key is created
 * at the policy's minimum when it asks for more than 2048 bits — on the Key Vault
 * emulator, through the app's real Key Vault adapter.
 */
import { createKeyVaultClients } from '../../../shared/adapters/keyVault/clients';
import { vaultKeys } from '../../../shared/adapters/keyVault/vaultKeys';
import { DEFAULT_KEY_POLICY, rsaBitsFor } from '../../../shared/domain/tenantKeyPolicy';
import { keysIn, rsaBitsOf, signingKey } from '../../../shared/domain/signingKeys';
import { SigningKeyService, SingleFlight } from '../../../shared/services/signing/signingKeys';
import { signingVault } from '../../../shared/services/signing/signingVault';
import { startTestVault, type TestVault } from '../../helpers/keyvault';
import { InMemoryKeySetStore, defaultPolicy, settingsFor, silentLog } from '../../unit/signing/fakes';

const modulusBits = (n: string) => Buffer.from(n, 'base64url').length * 8;

describe('signing keys and the key policy', () => {
  let vault: TestVault;
  beforeAll(async () => {
    vault = await startTestVault();
  });
  afterAll(() => vault.close());

  const signing = (rsaMinBits?: number | (() => number)) => {
    const clients = createKeyVaultClients({ local: vault.emulator.url }, { emulatorCa: vault.emulator.ca });
    return signingVault({
      keys: vaultKeys(clients),
      vaultAlias: 'local',
      vaultUrlOf: (alias) => clients.vaultUrl(alias),
      issuer: 'https://keyturn.test',
      ...(rsaMinBits
        ? { rsaBits: async () => rsaBitsFor(2048, { ...DEFAULT_KEY_POLICY, rsaMinBits: typeof rsaMinBits === 'function' ? rsaMinBits() : rsaMinBits }) }
        : {}),
    });
  };
  const create = (s: ReturnType<typeof signingVault>, name: string) =>
    s.create({ name, keyType: 'RSA-2048', expiresAt: new Date(Date.now() + 86_400_000), state: 'next' });

  test('an RSA signing key has 2048 bits under the default policy and 3072 once the minimum is raised', async () => {
    const before = await create(signing(DEFAULT_KEY_POLICY.rsaMinBits), 'policy-default-1');
    expect(modulusBits((before.publicJwk as { n: string }).n)).toBe(2048);
    const after = await create(signing(3072), 'policy-raised-1');
    expect(modulusBits((after.publicJwk as { n: string }).n)).toBe(3072);
    // What Key Vault holds, read back with the SDK: the same size.
    const stored = await vault.keys.getKey('policy-raised-1');
    expect(modulusBits(Buffer.from(stored.key!.n!).toString('base64url'))).toBe(3072);
  });

  test('the algorithm-weakness replacement: a weak signer is replaced by policy-sized keys once, the weak one kept as previous', async () => {
    let minimum = 2048;
    const sets = new InMemoryKeySetStore();
    const settings = { ...settingsFor(defaultPolicy), keyName: 'policy-replace' };
    const clock = { now: async () => new Date() };
    const service = new SigningKeyService({ keys: signing(() => minimum), sets, clock, log: silentLog, settings, bootstrap: new SingleFlight() });
    const weak = signingKey(await service.signingKeySet().then((s) => s.set))!;
    expect(rsaBitsOf(weak)).toBe(2048);

    minimum = 3072; // the policy was raised (the playbook's first step)
    const out = await service.replaceBelowPolicy({ kid: weak.kid, rsaMinBits: 3072, reason: 'incident i-1: RSA 2048 < 3072' });
    const set = (await sets.read())!.set;
    expect(out.signingKid).not.toBe(weak.kid);
    expect(out.newKids).toHaveLength(2);
    expect(rsaBitsOf(signingKey(set)!)).toBe(3072);
    expect(keysIn(set, 'next').map(rsaBitsOf)).toEqual([3072]);
    // Tokens the weak key signed still verify until they expire; it signs no more.
    expect(keysIn(set, 'previous').map((k) => k.kid)).toEqual([weak.kid]);
    expect(sets.records.at(-1)).toMatchObject({ trigger: 'policy', fromKid: weak.kid, reason: 'incident i-1: RSA 2048 < 3072' });

    const again = await service.replaceBelowPolicy({ kid: weak.kid, rsaMinBits: 3072, reason: 'retry' });
    expect(again).toEqual({ signingKid: out.signingKid, newKids: [] });
    expect((await sets.read())!.set.version).toBe(set.version);
  });
});
