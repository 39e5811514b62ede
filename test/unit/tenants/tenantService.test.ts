/** The tenant service over in-memory ports: creation races, allowed callers, the key policy's minimum. */
import { TenantService } from '../../../shared/services/tenants/tenantService';
import { FakeClock, FakeTenants, FakeVault, VAULT, defaultPolicies, silentLog, fakeCreator } from './fakes';

const CALLER = '11111111-2222-3333-4444-555555555555';

function world(policies = defaultPolicies) {
  const clock = new FakeClock(new Date('2026-03-01T00:00:00Z'));
  const vault = new FakeVault(clock);
  const settings = { vaultUrl: VAULT, keyBits: 2048 as const, validityMs: 86_400_000, changeoverMs: 86_400_000 };
  const service = new TenantService({ tenants: new FakeTenants(), policies, keys: vault.port(), clock, log: silentLog, settings, creates: fakeCreator(clock) });
  return { service, vault };
}

// Create is a step-kernel job now (one per tenant): the same body twice is one creation, answered
// to both (was: the second a 409 whose key was disabled); another body is still 409 TENANT_EXISTS.
test('When two creates of the same body race, then both answer the one tenant, and one key was imported', async () => {
  const w = world();
  const results = await Promise.all([0, 1].map(() => w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' })));
  expect(results[0]!.activeKid).toBeDefined();
  expect(results[1]!.activeKid).toBe(results[0]!.activeKid);
  expect(w.vault.imports).toBe(1);
});

test('When two creates of different bodies race, then one tenant exists, the other is 409 TENANT_EXISTS, and one key was imported', async () => {
  const w = world();
  const results = await Promise.allSettled(
    [['a@example.com'], ['b@example.com']].map((adminContacts) => w.service.create({ tenantId: 'acme', topology: 'service-managed', adminContacts, requestedBy: 'ops' })),
  );
  expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'TENANT_EXISTS' } });
  const all = [...w.vault.versions.values()].flat();
  expect(all.filter((v) => v.properties.enabled)).toHaveLength(1);
  expect(w.vault.imports).toBe(1);
});

test('When the tenant names allowed callers, then only they open its content (when Easy Auth vouches for the caller)', async () => {
  const w = world();
  await w.service.create({ tenantId: 'acme', topology: 'service-managed', allowedCallers: [CALLER.toUpperCase()], requestedBy: 'ops' });
  const { jwe } = await w.service.protect('acme', Buffer.from('x'));
  await expect(w.service.unprotect('acme', jwe, { authenticated: true, principalId: '99999999-2222-3333-4444-555555555555' })).rejects.toMatchObject({ code: 'CALLER_NOT_ALLOWED' });
  expect((await w.service.unprotect('acme', jwe, { authenticated: true, principalId: CALLER })).plaintext.toString()).toBe('x');
  // Without Easy Auth only the function key vouches for the caller (documented risk).
  expect((await w.service.unprotect('acme', jwe)).plaintext.toString()).toBe('x');
});

test('When the key policy asks for more bits than configured, then the tenant key has the policy minimum', async () => {
  const w = world({ current: async () => ({ version: 2, rsaMinBits: 3072, forbiddenAlgorithms: [] }) });
  const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
  expect(Buffer.from(t.versions[0]!.publicJwk.n, 'base64url').length * 8).toBe(3072);
});

test('BYOK onboarding without a keyUrl is a 400 naming keyUrl; on a host without BYOK deps, naming topology', async () => {
  await expect(world().service.create({ tenantId: 'acme', topology: 'byok', requestedBy: 'ops' })).rejects.toMatchObject({ field: 'keyUrl' });
  await expect(world().service.create({ tenantId: 'acme', topology: 'byok', keyUrl: 'https://contoso.vault.azure.net/keys/k', requestedBy: 'ops' })).rejects.toMatchObject({ field: 'topology' });
});
