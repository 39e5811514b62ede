/** Tenant keys' handler in the event intake: an expiring version in use rekeys once; other keys are not its own. */
import type { KeyVaultEvent } from '../../../shared/domain/keyVaultEvent';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { tenantKeyEventHandler } from '../../../shared/services/tenants/keyEvents';
import { rekeyJob } from '../../../shared/services/tenants/rekeyJob';
import { RekeyService } from '../../../shared/services/tenants/rekeyService';
import { TenantService } from '../../../shared/services/tenants/tenantService';
import { noFaults } from '../../../shared/ports';
import { FakeClock, FakeRekeys, FakeTenants, FakeVault, VAULT, defaultPolicies, silentLog, fakeCreator } from './fakes';

const event = (kind: string, objectName: string, version: string, objectType: KeyVaultEvent['objectType'] = 'Key'): KeyVaultEvent => ({
  schema: 'EventGrid',
  id: 'e1',
  type: `Microsoft.KeyVault.${kind}`,
  kind,
  topic: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v',
  vaultName: 'v',
  objectType,
  objectName,
  version,
  nbf: null,
  exp: null,
});

function world() {
  const clock = new FakeClock(new Date('2026-03-01T00:00:00Z'));
  const vault = new FakeVault(clock);
  const settings = { vaultUrl: VAULT, keyBits: 2048 as const, validityMs: 365 * 86_400_000, changeoverMs: 86_400_000 };
  const deps = { tenants: new FakeTenants(), policies: defaultPolicies, keys: vault.port(), clock, log: silentLog, settings, creates: fakeCreator(clock) };
  const service = new TenantService(deps);
  const rekeys = new FakeRekeys();
  const kind = rekeyJob({ deps, service, rekeys, leaseMs: 300_000, maxAttempts: 5 });
  const rekey = new RekeyService({ tenants: service, rekeys, runner: new StepRunner({ clock, faults: noFaults, log: silentLog, owner: 'h' }), kind, clock, log: silentLog });
  const handler = tenantKeyEventHandler({ tenants: () => service, rekeys: () => rekey, vaultUrlOf: (a) => (a === 'local' ? VAULT : undefined) });
  return { service, vault, handler };
}

test('an expiring tenant version in use is rekeyed once; a redelivery is acknowledged as already rekeyed', async () => {
  const w = world();
  const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
  const v = t.versions[0]!;
  expect(await w.handler.handle({ vaultAlias: 'local', event: event('KeyNearExpiry', v.name, v.version) }, silentLog)).toEqual({ answer: 'handled', outcome: 'rekeyed' });
  expect(await w.handler.handle({ vaultAlias: 'local', event: event('KeyNearExpiry', v.name, v.version) }, silentLog)).toEqual({ answer: 'handled', outcome: 'already-rekeyed' });
  expect((await w.service.get('acme')).versions).toHaveLength(2);
  expect(w.vault.imports).toBe(2);
});

test('other events, other keys and other vaults are not tenant keys\'', async () => {
  const w = world();
  const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
  const v = t.versions[0]!;
  const log = silentLog;
  expect(await w.handler.handle({ vaultAlias: 'local', event: event('KeyNewVersionCreated', v.name, v.version) }, log)).toEqual({ answer: 'not-mine' });
  expect(await w.handler.handle({ vaultAlias: 'local', event: event('SecretNearExpiry', v.name, v.version, 'Secret') }, log)).toEqual({ answer: 'not-mine' });
  expect(await w.handler.handle({ vaultAlias: 'local', event: event('KeyNearExpiry', 'keyturn-signing-1', 'abc') }, log)).toEqual({ answer: 'not-mine' });
  expect(await w.handler.handle({ vaultAlias: 'local', event: event('KeyNearExpiry', 'tenant-nobody-0000abcd', 'abc') }, log)).toMatchObject({ answer: 'not-mine' });
  expect(await w.handler.handle({ vaultAlias: 'other', event: event('KeyNearExpiry', v.name, v.version) }, log)).toMatchObject({ answer: 'not-mine' });
  expect(w.vault.imports).toBe(1);
});
