/**
 * The revoke job on the real step runner with in-memory ports: a crash at every step
 * boundary (and at the notice's send) resumes and completes once (one Revoked event
 * id, versions disabled, BYOK verified by a 403); the retention delete; a rekey in
 * flight stops cleanly when the tenant is revoked; a new key after the revoke.
 */
import { armedFaults } from '../../../shared/adapters/faults';
import { REVOKE_STEPS } from '../../../shared/domain/tenantRevoke';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { noticeJob, noticeSink } from '../../../shared/services/tenants/notices';
import { rekeyJob } from '../../../shared/services/tenants/rekeyJob';
import { RekeyService } from '../../../shared/services/tenants/rekeyService';
import { revokeJob, revokeRemaining } from '../../../shared/services/tenants/revokeJob';
import { revokeTenantKeys } from '../../../shared/services/tenants/revokeService';
import { TenantService } from '../../../shared/services/tenants/tenantService';
import { FakeClaims, FakeClock, FakeNotices, FakeNotifier, FakeRekeys, FakeRevokes, FakeTenants, FakeVault, VAULT, defaultPolicies, silentLog, fakeCreator } from './fakes';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const LEASE_MS = 300_000;
const CUSTOMER = 'https://contoso.vault.azure.net';

function world() {
  const clock = new FakeClock(new Date('2026-03-01T00:00:00Z'));
  const vault = new FakeVault(clock);
  const tenants = new FakeTenants();
  const revokes = new FakeRevokes();
  const rekeys = new FakeRekeys();
  const notices = new FakeNotices();
  const notifier = new FakeNotifier();
  const claims = new FakeClaims();
  const settings = { vaultUrl: VAULT, keyBits: 2048 as const, validityMs: 365 * DAY, changeoverMs: DAY };
  const keys = vault.port();
  let generation = 0;
  /** One "process": its own runner owner and its own (once-per-process) fault points. */
  const host = (points: string[] = []) => {
    const runner = new StepRunner({ clock, faults: armedFaults(points), log: silentLog, owner: `host-${++generation}` });
    const noticeKind = noticeJob({ notices, notifier, log: silentLog, leaseMs: LEASE_MS });
    const sink = noticeSink({ notices, runner, kind: noticeKind, clock, log: silentLog });
    const deps = { tenants, policies: defaultPolicies, keys, clock, log: silentLog, settings, notices: sink, byok: { claims, keysFor: () => keys, ownVaultUrls: [VAULT], local: false }, creates: fakeCreator(clock) };
    const service = new TenantService(deps);
    const revokeKind = revokeJob({ deps, service, revokes, leaseMs: LEASE_MS, settings: { verifyMs: DAY, retentionMs: 30 * DAY } });
    const rekeyKind = rekeyJob({ deps, service, rekeys, leaseMs: LEASE_MS, maxAttempts: 5 });
    return {
      service,
      runner,
      revokeKind,
      noticeKind,
      rekeyKind,
      rekey: new RekeyService({ tenants: service, rekeys, runner, kind: rekeyKind, clock, log: silentLog, store: tenants }),
      revoke: (tenantId: string) => revokeTenantKeys({ tenants, revokes, runner, kind: revokeKind, clock, log: silentLog, verifyMs: DAY }, tenantId, { confirm: tenantId, reason: 'ended', requestedBy: 'ops' }),
      resume: async () => {
        await runner.resumeDue(noticeKind);
        await runner.resumeDue(revokeKind);
      },
    };
  };
  return { clock, vault, tenants, revokes, rekeys, notices, notifier, claims, host };
}

const POINTS = [...REVOKE_STEPS, 'send'].flatMap((s) => [`${s}:before`, `${s}:claimed`, `${s}:after`]);

describe('tenant revoke job (step kernel, in-memory ports)', () => {
  test.each(POINTS)('When a host crashes at %s of a service-managed revoke, then the next one completes it once', async (point) => {
    const w = world();
    const t = await w.host().service.create({ tenantId: 'acme', topology: 'service-managed', adminContacts: ['a@acme.example'], requestedBy: 'ops' });
    const crashing = w.host([point]);
    await expect((async () => {
      await crashing.revoke('acme');
      w.clock.advance(31 * DAY);
      await crashing.resume();
    })()).rejects.toThrow(`Injected fault at '${point}'`);

    w.clock.advance(LEASE_MS + DAY);
    const next = w.host();
    const answer = await next.revoke('acme');
    expect(answer).toMatchObject({ complete: true, remaining: [], tenant: { state: 'revoked' } });
    const name = t.versions[0]!.name;
    if (w.vault.versions.has(name)) expect(w.vault.versions.get(name)![0]!.properties.enabled).toBe(false);
    w.clock.advance(31 * DAY);
    await next.resume();
    expect(w.vault.deleted).toEqual([name]);
    // One notice, one event id (a crash right after the publish republishes the same id).
    expect(new Set(w.notifier.events.map((e) => e.id))).toHaveProperty('size', 1);
    if (point !== 'send:after') expect(w.notifier.events).toHaveLength(1);
    expect(w.notifier.events[0]).toMatchObject({ eventType: 'Keyturn.TenantKeyRevoked', data: { tenantId: 'acme', adminContacts: ['a@acme.example'], kids: [t.activeKid] } });
    const [job] = [...w.revokes.store.docs.values()].map((d) => d.doc);
    expect(job).toMatchObject({ status: 'completed' });
    expect(job!.dueAt).toBeUndefined();
  });

  test.each(REVOKE_STEPS.flatMap((s) => [`${s}:before`, `${s}:after`]))('When a host crashes at %s of a BYOK revoke, then it is verified once the vault refuses Keyturn', async (point) => {
    const w = world();
    const k = await w.vault.customerKey(CUSTOMER, 'tk', { 'keyturn-tenant': 'contoso' });
    await w.host().service.create({ tenantId: 'contoso', topology: 'byok', keyUrl: `${CUSTOMER}/keys/tk`, requestedBy: 'ops' });
    const crashing = w.host([point]);
    // The first post stops at verify (still reachable); the customer removes access; the second post verifies.
    const attempt = async () => {
      await crashing.revoke('contoso');
      w.vault.denied.add('tk');
      await crashing.revoke('contoso');
    };
    await expect(attempt()).rejects.toThrow(`Injected fault at '${point}'`);
    w.clock.advance(LEASE_MS + 1);
    const next = w.host();
    if (!w.vault.denied.has('tk')) {
      const pending = await next.revoke('contoso');
      expect(pending).toMatchObject({ complete: false, tenant: { state: 'revoked' } });
      expect(pending.remaining.join()).toMatch(/role assignment on https:\/\/contoso.vault.azure.net\/keys\/tk/);
      w.vault.denied.add('tk');
    }
    expect(await next.revoke('contoso')).toMatchObject({ complete: true, remaining: [] });
    expect(w.vault.versions.get('tk')![0]!.properties).toMatchObject({ version: k.version, enabled: true }); // never changed by Keyturn
    expect(w.notifier.events.filter((e) => e.eventType === 'Keyturn.TenantKeyRevoked')).toHaveLength(1);
  });

  test('When the customer never removes access, then the revoke says so after its window, and posting again re-verifies', async () => {
    const w = world();
    await w.vault.customerKey(CUSTOMER, 'tk', { 'keyturn-tenant': 'contoso' });
    const h = w.host();
    await h.service.create({ tenantId: 'contoso', topology: 'byok', keyUrl: `${CUSTOMER}/keys/tk`, requestedBy: 'ops' });
    await h.revoke('contoso');
    for (let i = 0; i < 12; i++) {
      w.clock.advance(3 * HOUR);
      await h.resume();
    }
    const [job] = [...w.revokes.store.docs.values()].map((d) => d.doc);
    expect(job).toMatchObject({ status: 'failed', step: 'verify' });
    expect(revokeRemaining(job!, await h.service.get('contoso')).join()).toMatch(/not verified within the window/);
    expect(await h.revoke('contoso')).toMatchObject({ complete: false });
    w.vault.denied.add('tk');
    expect(await h.revoke('contoso')).toMatchObject({ complete: true });
  });

  test('When a revoke comes while a rekey is in flight, then the rekey stops cleanly (no retries) and its version is disabled', async () => {
    const w = world();
    const h = w.host(['activate:before*1']);
    const t = await h.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    await expect(h.rekey.rekey('acme', { reason: 'yearly', requestedBy: 'ops' })).rejects.toThrow(/Injected fault/);
    await h.revoke('acme');
    w.clock.advance(LEASE_MS + 1);
    await w.host().runner.resumeDue(h.rekeyKind);
    const [job] = [...w.rekeys.store.docs.values()].map((d) => d.doc);
    expect(job).toMatchObject({ status: 'superseded', cleanup: { state: 'done' } });
    expect(job!.dueAt).toBeUndefined(); // never retried again
    const stored = w.vault.versions.get(t.versions[0]!.name)!;
    expect(stored).toHaveLength(2);
    expect(stored.every((v) => !v.properties.enabled)).toBe(true); // the revoked one and the superseded rekey's
    expect((await h.service.get('acme')).versions).toHaveLength(1);
  });

  test('When a revoked tenant is given a new key, then it protects again and content under revoked versions stays unreadable', async () => {
    const w = world();
    const h = w.host();
    await h.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const old = await h.service.protect('acme', Buffer.from('old'));
    await h.revoke('acme');
    const { tenant } = await h.rekey.rekey('acme', { reason: 'new contract', requestedBy: 'ops' });
    expect(tenant.state).toBe('active');
    const fresh = await h.service.protect('acme', Buffer.from('new'));
    expect((await h.service.unprotect('acme', fresh.jwe)).plaintext.toString()).toBe('new');
    await expect(h.service.unprotect('acme', old.jwe)).rejects.toMatchObject({ code: 'JWE_INVALID' });
  });

  test('When a version in its changeover is named compromised, then it leaves /keys at once, opens old content, and the archive still narrows it', async () => {
    const w = world();
    const h = w.host();
    const t = await h.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const old = await h.service.protect('acme', Buffer.from('old'));
    const { tenant } = await h.rekey.rekey('acme', { reason: 'yearly', requestedBy: 'ops' });
    expect((await h.service.publishedKeys('acme')).keys).toHaveLength(2);
    const after = await h.rekey.rekey('acme', { reason: 'leaked', fromKid: t.activeKid!, compromised: true, requestedBy: 'ops' });
    expect(after.tenant).toMatchObject({ state: 'active' });
    expect(after.tenant.versions[0]).toMatchObject({ state: 'archived', compromised: true });
    expect((await h.service.publishedKeys('acme')).keys.map((k) => k.kid)).toEqual([tenant.activeKid]);
    expect((await h.service.unprotect('acme', old.jwe)).plaintext.toString()).toBe('old');
    w.clock.advance(DAY + 1);
    await w.host().runner.resumeDue(h.rekeyKind);
    expect(w.vault.versions.get(t.versions[0]!.name)![0]!.keyOps.sort()).toEqual(['decrypt', 'unwrapKey']);
    await w.host().runner.resumeDue(h.noticeKind);
    expect(w.notifier.events.map((e) => e.eventType)).toEqual(['Keyturn.TenantKeyRekeyed', 'Keyturn.TenantKeyArchived']);
  });
});
