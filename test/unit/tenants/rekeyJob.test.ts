/**
 * The rekey job on the real step runner with in-memory ports: a crash at every step
 * boundary resumes once (one imported version, one tenant version), two runs of the
 * same rekey make one version, and old content opens after the archive and after the
 * archived version's original expiry.
 */
import { armedFaults } from '../../../shared/adapters/faults';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { rekeyJob } from '../../../shared/services/tenants/rekeyJob';
import { RekeyService } from '../../../shared/services/tenants/rekeyService';
import { TenantService } from '../../../shared/services/tenants/tenantService';
import { FakeClock, FakeRekeys, FakeTenants, FakeVault, VAULT, defaultPolicies, silentLog, fakeCreator } from './fakes';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const LEASE_MS = 300_000;

function world(faults: string[] = []) {
  const clock = new FakeClock(new Date('2026-03-01T00:00:00Z'));
  const vault = new FakeVault(clock);
  const tenants = new FakeTenants();
  const rekeys = new FakeRekeys();
  const settings = { vaultUrl: VAULT, keyBits: 2048 as const, validityMs: 365 * DAY, changeoverMs: DAY };
  const deps = { tenants, policies: defaultPolicies, keys: vault.port(), clock, log: silentLog, settings, creates: fakeCreator(clock) };
  const service = new TenantService(deps);
  let generation = 0;
  /** One "process": its own runner owner and its own (once-per-process) fault points. */
  const host = (points: string[] = faults) => {
    const kind = rekeyJob({ deps, service, rekeys, leaseMs: LEASE_MS, maxAttempts: 5 });
    const runner = new StepRunner({ clock, faults: armedFaults(points), log: silentLog, owner: `host-${++generation}` });
    return { kind, runner, rekey: new RekeyService({ tenants: service, rekeys, runner, kind, clock, log: silentLog }) };
  };
  return { clock, vault, tenants, rekeys, service, host };
}

describe('tenant rekey job (step kernel, in-memory ports)', () => {
  test('When rekeyed, then old content opens after the archive and after the archived version\'s original exp', async () => {
    const w = world();
    const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const before = await w.service.protect('acme', Buffer.from('old content'));
    const { kind, runner, rekey } = w.host();
    const { tenant } = await rekey.rekey('acme', { reason: 'yearly', requestedBy: 'ops' });
    expect(tenant.state).toBe('changeover');
    expect((await w.service.protect('acme', Buffer.from('x'))).kid).toBe(tenant.activeKid);

    w.clock.advance(DAY + 1);
    expect((await runner.resumeDue(kind)).advanced).toBe(1);
    const after = await w.service.get('acme');
    expect(after.state).toBe('active');
    expect(after.versions.find((v) => v.kid === t.activeKid)?.state).toBe('archived');
    const archived = w.vault.versions.get(t.versions[0]!.name)![0]!;
    expect(archived.keyOps.sort()).toEqual(['decrypt', 'unwrapKey']);
    expect(archived.properties.expiresOn).toBeUndefined();

    w.clock.advance(400 * DAY);
    expect((await w.service.unprotect('acme', before.jwe)).plaintext.toString()).toBe('old content');
    expect((await runner.resumeDue(kind)).due).toBe(0); // nothing left to do
  });

  test('When the same rekey runs twice (a retry, a second host), then one version is made', async () => {
    const w = world();
    const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const fromKid = t.activeKid!;
    await Promise.all([w.host().rekey.rekey('acme', { reason: 'r', fromKid, requestedBy: 'a' }), w.host().rekey.rekey('acme', { reason: 'r', fromKid, requestedBy: 'b' })]);
    await w.host().rekey.rekey('acme', { reason: 'r', fromKid, requestedBy: 'c' });
    expect(w.vault.imports).toBe(2); // the tenant's first key, and one rekey
    expect((await w.service.get('acme')).versions).toHaveLength(2);
  });

  const POINTS = ['create', 'activate', 'archive'].flatMap((s) => [`${s}:before`, `${s}:claimed`, `${s}:after`]);

  test.each(POINTS)('When a host crashes at %s, then the next one resumes it and it completes once', async (point) => {
    const w = world();
    const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const before = await w.service.protect('acme', Buffer.from('old content'));
    const crashing = w.host([point]);
    const run = async () => {
      await crashing.rekey.rekey('acme', { reason: 'r', fromKid: t.activeKid!, requestedBy: 'ops' });
      w.clock.advance(DAY + 1); // the changeover ends: the archive step is due
      await crashing.runner.resumeDue(crashing.kind);
    };
    await expect(run()).rejects.toThrow(`Injected fault at '${point}'`);

    // A new process, past the dead one's lease and the changeover.
    w.clock.advance(DAY + LEASE_MS);
    const next = w.host([]);
    await next.rekey.rekey('acme', { reason: 'r', fromKid: t.activeKid!, requestedBy: 'ops' });
    await next.runner.resumeDue(next.kind);
    w.clock.advance(DAY + 1); // a changeover that started on the new host ends too
    await next.runner.resumeDue(next.kind);

    const tenant = await w.service.get('acme');
    expect(w.vault.imports).toBe(2);
    expect(tenant.versions.map((v) => v.state)).toEqual(['archived', 'active']);
    expect(tenant.state).toBe('active');
    const [job] = [...w.rekeys.store.docs.values()].map((d) => d.doc);
    expect(job).toMatchObject({ status: 'completed' });
    expect(job!.dueAt).toBeUndefined();
    expect((await w.service.unprotect('acme', before.jwe)).plaintext.toString()).toBe('old content');
  });

  test('When the version being replaced is compromised, then it is unpublished at once and narrowed in the vault', async () => {
    const w = world();
    const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const before = await w.service.protect('acme', Buffer.from('old content'));
    const { tenant } = await w.host().rekey.rekey('acme', { reason: 'leaked', compromised: true, requestedBy: 'ops' });
    expect(tenant.state).toBe('active');
    expect((await w.service.publishedKeys('acme')).keys.map((k) => k.kid)).toEqual([tenant.activeKid]);
    expect(w.vault.versions.get(t.versions[0]!.name)![0]!.keyOps.sort()).toEqual(['decrypt', 'unwrapKey']);
    expect((await w.service.unprotect('acme', before.jwe)).plaintext.toString()).toBe('old content');
  });

  test('bad rekey input is a 400 naming the field', async () => {
    const w = world();
    await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    await expect(w.host().rekey.rekey('acme', { reason: 'r', fromKid: 'https://elsewhere/keys/x/1', requestedBy: 'ops' })).rejects.toMatchObject({ field: 'fromKid' });
    await expect(w.host().rekey.rekey('acme', { reason: 'r', keyUrl: 'https://x.vault.azure.net/keys/k', requestedBy: 'ops' })).rejects.toMatchObject({ field: 'keyUrl' });
    await expect(w.host().rekey.rekey('nobody', { reason: 'r', requestedBy: 'ops' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
