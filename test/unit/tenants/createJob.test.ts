/**
 * Tenant create as a step-kernel job, and BYOK claims owned by the job that took them,
 * on the real step runner with in-memory ports: a crash at every step boundary resumes
 * with exactly one key (one imported version, one claim); a refused or failed create or
 * rekey releases only its own claim, and the same request again reuses it and completes.
 */
import { armedFaults } from '../../../shared/adapters/faults';
import { CREATE_STEPS, createId } from '../../../shared/domain/tenantCreate';
import { claimId } from '../../../shared/domain/tenantByok';
import { rekeyId } from '../../../shared/domain/tenantRekey';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { createJob } from '../../../shared/services/tenants/createJob';
import { rekeyJob } from '../../../shared/services/tenants/rekeyJob';
import { RekeyService } from '../../../shared/services/tenants/rekeyService';
import { TenantService } from '../../../shared/services/tenants/tenantService';
import type { VaultKeys } from '../../../shared/ports';
import { FakeClaims, FakeClock, FakeCreates, FakeRekeys, FakeTenants, FakeVault, VAULT, defaultPolicies, fakeCreator, silentLog } from './fakes';

const DAY = 86_400_000;
const LEASE_MS = 300_000;
const CUSTOMER = 'https://contoso.vault.azure.net';
const keyUrl = (name: string) => `${CUSTOMER}/keys/${name}`;

function world() {
  const clock = new FakeClock(new Date('2026-03-01T00:00:00Z'));
  const vault = new FakeVault(clock);
  const tenants = new FakeTenants();
  const creates = new FakeCreates();
  const rekeys = new FakeRekeys();
  const claims = new FakeClaims();
  const settings = { vaultUrl: VAULT, keyBits: 2048 as const, validityMs: 365 * DAY, changeoverMs: DAY };
  const base = vault.port();
  /**
   * Key Vault failing (503) for a key name after this many more reads: the onboarding's read
   * passes and the job's read of the pinned version that follows fails (Key Vault down).
   */
  const readsLeft = new Map<string, number>();
  const keys: VaultKeys = {
    ...base,
    get: async (ref) => {
      const left = readsLeft.get(ref.name);
      if (left !== undefined) {
        if (left <= 0) throw Object.assign(new Error('Key Vault unavailable'), { statusCode: 503 });
        readsLeft.set(ref.name, left - 1);
      }
      return base.get(ref);
    },
  };
  let generation = 0;
  /** One "process": its own runner owner and its own (once-per-process) fault points. */
  const host = (points: string[] = []) => {
    const faults = armedFaults(points);
    const owner = `host-${++generation}`;
    const runner = new StepRunner({ clock, faults, log: silentLog, owner });
    const deps = {
      tenants,
      policies: defaultPolicies,
      keys,
      clock,
      log: silentLog,
      settings,
      byok: { claims, keysFor: () => keys, ownVaultUrls: [VAULT], local: false },
      creates: fakeCreator(clock, { store: creates, faults, owner, waitMs: 0 }),
    };
    const service = new TenantService(deps);
    const createKind = createJob({ deps, service, creates, leaseMs: LEASE_MS, maxAttempts: 5 });
    const rekeyKind = rekeyJob({ deps, service, rekeys, leaseMs: LEASE_MS, maxAttempts: 2 });
    return { service, runner, createKind, rekeyKind, rekey: new RekeyService({ tenants: service, rekeys, runner, kind: rekeyKind, clock, log: silentLog, store: tenants }) };
  };
  return { clock, vault, tenants, creates, rekeys, claims, readsLeft, host };
}

const POINTS = CREATE_STEPS.flatMap((s) => [`${s}:before`, `${s}:claimed`, `${s}:after`]);
const enabledVersions = (vault: FakeVault) => [...vault.versions.values()].flat().filter((v) => v.properties.enabled);

describe('tenant create job (step kernel, in-memory ports)', () => {
  test.each(POINTS)('When a host crashes at %s of a service-managed create, then the resume timer completes it with exactly one key', async (point) => {
    const w = world();
    const body = { tenantId: 'acme', topology: 'service-managed' as const, adminContacts: ['a@acme.example'], requestedBy: 'ops' };
    await expect(w.host([point]).service.create(body)).rejects.toThrow(`Injected fault at '${point}'`);

    w.clock.advance(LEASE_MS + 1);
    const next = w.host();
    expect((await next.runner.resumeDue(next.createKind)).advanced).toBe(1);
    const tenant = await next.service.get('acme');
    expect(tenant).toMatchObject({ state: 'active', topology: 'service-managed', adminContacts: ['a@acme.example'] });
    expect(tenant.versions).toHaveLength(1);
    expect(w.vault.imports).toBe(1);
    expect(enabledVersions(w.vault).map((v) => `${v.properties.vaultUrl}/keys/${v.properties.name}/${v.properties.version}`)).toEqual([tenant.activeKid]);
    await expect(w.creates.read(createId('acme'))).resolves.toMatchObject({ doc: { status: 'completed' } });

    // The same body again is the same tenant; another body is 409; nothing more is due.
    expect((await next.service.create(body)).activeKid).toBe(tenant.activeKid);
    await expect(next.service.create({ ...body, adminContacts: [] })).rejects.toMatchObject({ code: 'TENANT_EXISTS' });
    expect((await next.runner.resumeDue(next.createKind)).due).toBe(0);
    expect(w.vault.imports).toBe(1);
  });

  test.each(POINTS)('When a host crashes at %s of a BYOK create, then the resume timer completes it with one claim, held by the tenant', async (point) => {
    const w = world();
    const k = await w.vault.customerKey(CUSTOMER, 'tk', { 'keyturn-tenant': 'contoso' });
    const body = { tenantId: 'contoso', topology: 'byok' as const, keyUrl: keyUrl('tk'), requestedBy: 'ops' };
    await expect(w.host([point]).service.create(body)).rejects.toThrow(`Injected fault at '${point}'`);

    w.clock.advance(LEASE_MS + 1);
    const next = w.host();
    await next.runner.resumeDue(next.createKind);
    const tenant = await next.service.get('contoso');
    expect(tenant.activeKid).toBe(`${CUSTOMER}/keys/tk/${k.version}`);
    expect(tenant.versions).toHaveLength(1);
    expect([...w.claims.held]).toEqual([[claimId({ vaultUrl: CUSTOMER, name: 'tk' }), 'contoso']]);
    expect(w.claims.by.get(claimId({ vaultUrl: CUSTOMER, name: 'tk' }))).toBe(createId('contoso'));
    expect(w.vault.imports).toBe(0); // Keyturn never makes a customer's key
    expect((await next.service.create(body)).activeKid).toBe(tenant.activeKid);
  });

  test('When a BYOK key fails onboarding, then the create is a 400 naming keyUrl, its claim is released, and the same body again (key fixed) reuses the job', async () => {
    const w = world();
    await w.vault.customerKey(CUSTOMER, 'tk', { 'keyturn-tenant': 'contoso' });
    const version = w.vault.versions.get('tk')![0]!;
    version.keyOps = ['sign', 'verify']; // the wrap/unwrap probe is refused (after the claim was taken)
    const host = w.host();
    const body = { tenantId: 'contoso', topology: 'byok' as const, keyUrl: keyUrl('tk'), requestedBy: 'ops' };
    await expect(host.service.create(body)).rejects.toMatchObject({ code: 'VALIDATION_FAILED', field: 'keyUrl' });
    expect(w.claims.held.size).toBe(0);
    await expect(host.service.get('contoso')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // Another tenant the customer tags the key for may now take it... but this customer fixes its role instead.
    version.keyOps = ['wrapKey', 'unwrapKey'];
    const tenant = await host.service.create(body);
    expect(tenant.state).toBe('active');
    expect(w.claims.held.get(claimId({ vaultUrl: CUSTOMER, name: 'tk' }))).toBe('contoso');
    expect((await w.creates.read(createId('contoso')))!.doc).toMatchObject({ status: 'completed', attempt: 2 });
  });

  test('When a BYOK key is held by another tenant, then the create is a 400 and that tenant keeps its claim', async () => {
    const w = world();
    await w.vault.customerKey(CUSTOMER, 'tk', { 'keyturn-tenant': 'contoso' });
    const host = w.host();
    await host.service.create({ tenantId: 'contoso', topology: 'byok', keyUrl: keyUrl('tk'), requestedBy: 'ops' });
    w.vault.versions.get('tk')![0]!.properties.tags['keyturn-tenant'] = 'fabrikam'; // the customer re-tags it
    await expect(host.service.create({ tenantId: 'fabrikam', topology: 'byok', keyUrl: keyUrl('tk'), requestedBy: 'ops' })).rejects.toMatchObject({ field: 'keyUrl', message: /another tenant holds this key/ });
    expect(w.claims.held.get(claimId({ vaultUrl: CUSTOMER, name: 'tk' }))).toBe('contoso');
  });
});

describe('BYOK rekey claims', () => {
  async function byokTenant(w: ReturnType<typeof world>) {
    await w.vault.customerKey(CUSTOMER, 'k1', { 'keyturn-tenant': 'contoso' });
    await w.vault.customerKey(CUSTOMER, 'k2', { 'keyturn-tenant': 'contoso' });
    return w.host().service.create({ tenantId: 'contoso', topology: 'byok', keyUrl: keyUrl('k1'), requestedBy: 'ops' });
  }
  const K1 = claimId({ vaultUrl: CUSTOMER, name: 'k1' });
  const K2 = claimId({ vaultUrl: CUSTOMER, name: 'k2' });

  /** Runs the resume timer until the rekey has ended (its retries spent) and cleaned up. */
  async function untilEnded(w: ReturnType<typeof world>, host: ReturnType<ReturnType<typeof world>['host']>, id: string) {
    for (let i = 0; i < 10 && (await w.rekeys.read(id))!.doc.status === 'active'; i++) {
      w.clock.advance(DAY);
      await host.runner.resumeDue(host.rekeyKind);
    }
    return (await w.rekeys.read(id))!.doc;
  }

  test('When a BYOK rekey to another key fails, then its claim is released, the key in use keeps its own, and the same rekey again reuses its claim and completes', async () => {
    const w = world();
    const t = await byokTenant(w);
    const host = w.host();
    w.readsLeft.set('k2', 1); // the onboarding reads k2; the job's reads of the pinned version fail
    const first = await host.rekey.rekey('contoso', { reason: 'move', keyUrl: keyUrl('k2'), requestedBy: 'ops' });
    expect(first.tenant.activeKid).toBe(t.activeKid); // not rekeyed yet: retried with backoff
    expect(w.claims.held.get(K2)).toBe('contoso'); // claimed by the rekey meanwhile
    const id = rekeyId('contoso', t.activeKid!);
    const ended = await untilEnded(w, host, id);
    expect(ended).toMatchObject({ status: 'failed', cleanup: { state: 'done' } });
    expect(w.claims.held.has(K2)).toBe(false);
    expect(w.claims.held.get(K1)).toBe('contoso');
    expect((await host.service.get('contoso')).activeKid).toBe(t.activeKid);

    // The customer's vault answers again: the same rekey starts over (same id) and completes.
    w.readsLeft.delete('k2');
    const { tenant, rekeyId: again, started } = await host.rekey.rekey('contoso', { reason: 'move', keyUrl: keyUrl('k2'), requestedBy: 'ops' });
    expect({ again, started }).toEqual({ again: id, started: true });
    expect(tenant.activeKid).toMatch(new RegExp(`^${CUSTOMER}/keys/k2/`));
    expect(w.claims.held.get(K2)).toBe('contoso');
    expect(w.claims.by.get(K2)).toBe(id);
    expect((await w.rekeys.read(id))!.doc).toMatchObject({ attempt: 2 });
  });

  test('When a BYOK rekey to a new version of the key in use fails, then the claim of the key in use is kept', async () => {
    const w = world();
    const t = await byokTenant(w);
    await w.vault.customerKey(CUSTOMER, 'k1', { 'keyturn-tenant': 'contoso' }); // the customer's new version
    const host = w.host();
    w.readsLeft.set('k1', 1);
    await host.rekey.rekey('contoso', { reason: 'rotated', keyUrl: keyUrl('k1'), requestedBy: 'ops' });
    const ended = await untilEnded(w, host, rekeyId('contoso', t.activeKid!));
    expect(ended).toMatchObject({ status: 'failed', cleanup: { state: 'done' } });
    expect(w.claims.held.get(K1)).toBe('contoso');
    expect(w.claims.by.get(K1)).toBe(createId('contoso'));
  });

  test('When the probe of a new version of the key in use is refused, then the rekey is a 400 and the key in use keeps its claim', async () => {
    const w = world();
    await byokTenant(w);
    await w.vault.customerKey(CUSTOMER, 'k1', { 'keyturn-tenant': 'contoso' });
    w.vault.versions.get('k1')!.at(-1)!.keyOps = ['sign'];
    await expect(w.host().rekey.rekey('contoso', { reason: 'rotated', keyUrl: keyUrl('k1'), requestedBy: 'ops' })).rejects.toMatchObject({ field: 'keyUrl' });
    expect(w.claims.held.get(K1)).toBe('contoso');
  });
});
