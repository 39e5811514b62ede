/**
 * The rekey-after-days policy (KEYTURN_TENANT_REKEY_AFTER_DAYS) on the real rekey job and
 * runner with the in-memory fakes: a service-managed version in use older than N days is
 * rekeyed once (a second run, a second host: no new version); a BYOK tenant gets one
 * RekeyNeeded per version; younger, revoked or changeover tenants are left alone.
 */
import { rekeyAgeAction } from '../../../shared/domain/tenantRekeyAge';
import type { Tenant } from '../../../shared/domain/tenantKeys';
import { noFaults } from '../../../shared/ports';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { noticeJob, noticeSink } from '../../../shared/services/tenants/notices';
import { applyRekeyAge } from '../../../shared/services/tenants/rekeyAge';
import { rekeyJob } from '../../../shared/services/tenants/rekeyJob';
import { RekeyService } from '../../../shared/services/tenants/rekeyService';
import { TenantService } from '../../../shared/services/tenants/tenantService';
import { FakeClock, FakeNotices, FakeNotifier, FakeRekeys, FakeTenants, FakeVault, VAULT, defaultPolicies, silentLog, fakeCreator } from './fakes';

const DAY = 86_400_000;

function world() {
  const clock = new FakeClock(new Date('2026-03-01T00:00:00Z'));
  const vault = new FakeVault(clock);
  const tenants = new FakeTenants();
  const rekeys = new FakeRekeys();
  const notices = new FakeNotices();
  const notifier = new FakeNotifier();
  const settings = { vaultUrl: VAULT, keyBits: 2048 as const, validityMs: 365 * DAY, changeoverMs: DAY };
  // One "host": its own runner, services and sinks over the shared stores.
  const host = (owner: string) => {
    const runner = new StepRunner({ clock, faults: noFaults, log: silentLog, owner });
    const noticeKind = noticeJob({ notices, notifier, log: silentLog, leaseMs: 300_000 });
    const sink = noticeSink({ notices, runner, kind: noticeKind, clock, log: silentLog });
    const deps = { tenants, policies: defaultPolicies, keys: vault.port(), clock, log: silentLog, settings, notices: sink, creates: fakeCreator(clock) };
    const service = new TenantService(deps);
    const kind = rekeyJob({ deps, service, rekeys, leaseMs: 300_000, maxAttempts: 5 });
    const rekey = new RekeyService({ tenants: service, rekeys, runner, kind, clock, log: silentLog, store: tenants });
    return { service, run: (afterDays: number) => applyRekeyAge({ tenants, rekeys: rekey, notices: sink, clock, log: silentLog, afterDays }, 2) };
  };
  return { clock, vault, tenants, notifier, a: host('a'), b: host('b') };
}

/** A BYOK tenant document as onboarding leaves it (the BYOK checks are tested elsewhere). */
async function byokTenant(w: ReturnType<typeof world>, tenantId: string): Promise<Tenant> {
  const sm = await w.a.service.create({ tenantId: `${tenantId}-src`, topology: 'service-managed', requestedBy: 'ops' });
  const doc: Tenant = { ...sm, id: tenantId, tenantId, topology: 'byok', adminContacts: ['keys@contoso.example'] };
  expect((await w.tenants.createOnly(doc)).created).toBe(true);
  return doc;
}

test('a service-managed version in use older than N days is rekeyed once, by either host, with fromKid', async () => {
  const w = world();
  const t = await w.a.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
  w.clock.advance(30 * DAY);
  expect(await w.a.run(30)).toMatchObject({ rekeyed: 0 }); // exactly N days: not older yet
  w.clock.advance(60_000);
  expect(await w.a.run(30)).toMatchObject({ checked: 1, rekeyed: 1 });
  const after = await w.a.service.get('acme');
  expect(after.activeKid).not.toBe(t.activeKid);
  expect(after.state).toBe('changeover');
  expect(after.versions.find((v) => v.kid === t.activeKid)!.state).toBe('active'); // still accepted in the window
  // Another host's timer, or the same one again: one new version.
  expect(await w.b.run(30)).toMatchObject({ rekeyed: 0 });
  expect(await w.a.run(30)).toMatchObject({ rekeyed: 0 });
  expect((await w.a.service.get('acme')).versions).toHaveLength(2);
  expect(w.vault.imports).toBe(2);
  expect(w.notifier.events.filter((e) => e.eventType === 'Keyturn.TenantKeyRekeyed')).toHaveLength(1);
});

test('a BYOK tenant past N days gets one RekeyNeeded per version, never a rekey', async () => {
  const w = world();
  const t = await byokTenant(w, 'contoso');
  w.clock.advance(31 * DAY);
  expect(await w.a.run(30)).toMatchObject({ notified: 1 });
  await w.b.run(30);
  await w.a.run(30);
  const needed = w.notifier.events.filter((e) => e.eventType === 'Keyturn.TenantKeyRekeyNeeded');
  expect(needed).toHaveLength(1);
  expect(needed[0]!.data).toMatchObject({ tenantId: 'contoso', kid: t.activeKid, reason: 'rekey-after-days', afterDays: 30, adminContacts: ['keys@contoso.example'] });
  expect((await w.tenants.read('contoso'))!.doc.versions).toHaveLength(1);
});

test('younger versions, many tenants across pages: only those past N days', async () => {
  const w = world();
  await w.a.service.create({ tenantId: 'old-one', topology: 'service-managed', requestedBy: 'ops' });
  await w.a.service.create({ tenantId: 'old-two', topology: 'service-managed', requestedBy: 'ops' });
  w.clock.advance(10 * DAY);
  await w.a.service.create({ tenantId: 'young', topology: 'service-managed', requestedBy: 'ops' });
  w.clock.advance(8 * DAY); // old: 18 days, young: 8 days
  expect(await w.a.run(14)).toMatchObject({ checked: 3, rekeyed: 2 });
  expect((await w.a.service.get('young')).versions).toHaveLength(1);
});

test('the rule: active tenants only, by the version in use\'s activation', () => {
  const at = '2026-01-01T00:00:00.000Z';
  const v = { kid: `${VAULT}/keys/k/1`, vaultUrl: VAULT, name: 'k', version: '1', state: 'active' as const, compromised: false, publicJwk: { kty: 'RSA' as const, n: 'n', e: 'AQAB' }, createdAt: at, activatedAt: at, requestedBy: 'ops' };
  const t: Tenant = { id: 't', tenantId: 't', topology: 'service-managed', state: 'active', adminContacts: [], allowedCallers: [], activeKid: v.kid, versions: [v], createdAt: at, updatedAt: at, requestedBy: 'ops' };
  const later = new Date(Date.parse(at) + 2 * DAY);
  expect(rekeyAgeAction(t, later, 1)).toEqual({ action: 'rekey', kid: v.kid, activatedAt: at });
  expect(rekeyAgeAction(t, later, 2)).toBeUndefined();
  expect(rekeyAgeAction({ ...t, topology: 'byok' }, later, 1)).toMatchObject({ action: 'notify' });
  for (const state of ['changeover', 'revoked', 'access-lost', 'rekey-required'] as const) expect(rekeyAgeAction({ ...t, state }, later, 1)).toBeUndefined();
  expect(rekeyAgeAction({ ...t, activeKid: undefined }, later, 1)).toBeUndefined();
});
