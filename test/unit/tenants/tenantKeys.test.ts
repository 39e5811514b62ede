import { KeyturnError } from '../../../shared/errors';
import { DEFAULT_KEY_POLICY, rsaBitsFor } from '../../../shared/domain/tenantKeyPolicy';
import {
  type NewVersion,
  type Tenant,
  activateVersion,
  addPending,
  archiveVersion,
  dueForArchive,
  markCompromised,
  newTenant,
  openingVersion,
  protectingVersion,
  publicKeyEntry,
  publishedVersions,
  recordDisabled,
  revocationRemaining,
  revokeTenant,
  tenantIdSchema,
} from '../../../shared/domain/tenantKeys';

const T0 = new Date('2026-01-01T00:00:00Z');
const HOUR = 3_600_000;
const at = (ms: number) => new Date(T0.getTime() + ms);
const WINDOW = 24 * HOUR;

function version(n: number): NewVersion {
  return {
    kid: `https://kv.example/keys/tenant-acme-x/v${n}`,
    vaultUrl: 'https://kv.example',
    name: 'tenant-acme-x',
    version: `v${n}`,
    publicJwk: { kty: 'RSA', n: `n${n}`, e: 'AQAB' },
    requestedBy: 'ops',
  };
}

const created = (): Tenant => newTenant({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' }, version(1), T0);
const rekeyed = (t: Tenant, n: number, now: Date, window = WINDOW) => activateVersion(addPending(t, version(n), now), version(n).kid, now, window);

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (e) {
    return e instanceof KeyturnError ? e.code : 'not a KeyturnError';
  }
  return undefined;
}

describe('tenant keys: the state machine (pure)', () => {
  test('tenant ids: 3–63 lower-case characters, digits and dashes', () => {
    expect(tenantIdSchema.safeParse('acme').success).toBe(true);
    for (const bad of ['ab', '-acme', 'Acme', 'a_b_c', 'x'.repeat(64)]) expect(tenantIdSchema.safeParse(bad).success).toBe(false);
  });

  test('When a tenant is created, then its first version is active and published', () => {
    const t = created();
    expect(t.state).toBe('active');
    expect(t.activeKid).toBe(version(1).kid);
    expect(t.versions[0]).toMatchObject({ state: 'active', compromised: false, activatedAt: T0.toISOString() });
    expect(publishedVersions(t).map((v) => v.kid)).toEqual([version(1).kid]);
    expect(protectingVersion(t).kid).toBe(version(1).kid);
  });

  test('When a version is pending, then it is never published nor used', () => {
    const t = addPending(created(), version(2), at(HOUR));
    expect(publishedVersions(t).map((v) => v.kid)).toEqual([version(1).kid]);
    expect(openingVersion(t, version(2).kid)).toBeUndefined();
    expect(protectingVersion(t).kid).toBe(version(1).kid);
  });

  test('When rekeyed, then the new version protects at once and the old one stays published until the window ends', () => {
    const t = rekeyed(created(), 2, at(HOUR));
    expect(t.state).toBe('changeover');
    expect(t.changeoverUntil).toBe(at(HOUR + WINDOW).toISOString());
    expect(protectingVersion(t).kid).toBe(version(2).kid);
    expect(publishedVersions(t).map((v) => v.kid)).toEqual([version(2).kid, version(1).kid]);
    expect(dueForArchive(t, at(HOUR + WINDOW - 1))).toEqual([]);
    expect(dueForArchive(t, at(HOUR + WINDOW))).toEqual([version(1).kid]);
  });

  test('When the changeover ends, then the old version is archived: unpublished, yet it still opens old content', () => {
    const t = archiveVersion(rekeyed(created(), 2, at(HOUR)), version(1).kid, at(HOUR + WINDOW));
    expect(t.state).toBe('active');
    expect(t.changeoverUntil).toBeUndefined();
    expect(t.versions[0]).toMatchObject({ state: 'archived', archivedAt: at(HOUR + WINDOW).toISOString() });
    expect(publishedVersions(t).map((v) => v.kid)).toEqual([version(2).kid]);
    expect(openingVersion(t, version(1).kid)?.kid).toBe(version(1).kid);
  });

  test('When the version in use is compromised by a rekey, then it leaves the published set at once (no changeover)', () => {
    const c = { ...created() };
    c.versions = c.versions.map((v) => ({ ...v, compromised: true }));
    const t = rekeyed(c, 2, at(HOUR));
    expect(t.state).toBe('active');
    expect(t.versions[0]).toMatchObject({ state: 'archived', compromised: true });
    expect(publishedVersions(t).map((v) => v.kid)).toEqual([version(2).kid]);
    expect(openingVersion(t, version(1).kid)?.kid).toBe(version(1).kid);
  });

  test('When a version in its changeover is compromised, then it is unpublished and archived at once', () => {
    const t = markCompromised(rekeyed(created(), 2, at(HOUR)), version(1).kid, at(2 * HOUR));
    expect(t.state).toBe('active');
    expect(t.versions[0]).toMatchObject({ state: 'archived', compromised: true, compromisedAt: at(2 * HOUR).toISOString() });
    expect(publishedVersions(t).map((v) => v.kid)).toEqual([version(2).kid]);
  });

  test('When revoked, then nothing is published, protected or opened, and every version is revoked', () => {
    const t = revokeTenant(rekeyed(created(), 2, at(HOUR)), at(2 * HOUR));
    expect(t.state).toBe('revoked');
    expect(t.versions.every((v) => v.state === 'revoked' && v.revokedAt === at(2 * HOUR).toISOString())).toBe(true);
    expect(publishedVersions(t)).toEqual([]);
    expect(codeOf(() => protectingVersion(t))).toBe('TENANT_REVOKED');
    expect(codeOf(() => openingVersion(t, version(1).kid))).toBe('TENANT_REVOKED');
    expect(revokeTenant(t, at(3 * HOUR))).toBe(t); // idempotent
  });

  test('When revoked, then what remains is each version not yet disabled, recorded idempotently', () => {
    const t = revokeTenant(rekeyed(created(), 2, at(HOUR)), at(2 * HOUR), { reason: 'ended', requestedBy: 'ops' });
    expect(t.revocation).toMatchObject({ reason: 'ended', requestedBy: 'ops', disabledKids: [] });
    expect(revocationRemaining(t)).toEqual([`disable ${version(1).kid}`, `disable ${version(2).kid}`]);
    const once = recordDisabled(t, [version(1).kid], at(3 * HOUR));
    expect(revocationRemaining(recordDisabled(once, [version(1).kid, version(2).kid], at(3 * HOUR)))).toEqual([]);
    expect(codeOf(() => recordDisabled(created(), [version(1).kid], T0))).toBe('INVALID_TRANSITION');
    expect(revocationRemaining(created())).toEqual([]);
  });

  test('When access is lost or a BYOK key awaits a new one, then use answers with the tenant\'s own 409 code', () => {
    expect(codeOf(() => protectingVersion({ ...created(), state: 'access-lost' }))).toBe('TENANT_ACCESS_LOST');
    expect(codeOf(() => openingVersion({ ...created(), state: 'access-lost' }, version(1).kid))).toBe('TENANT_ACCESS_LOST');
    expect(codeOf(() => protectingVersion({ ...created(), state: 'rekey-required' }))).toBe('TENANT_REKEY_REQUIRED');
    expect(publishedVersions({ ...created(), state: 'rekey-required' })).toEqual([]);
  });

  test('When a new version is activated on a rekey-required tenant, then it is active again', () => {
    expect(rekeyed({ ...created(), state: 'rekey-required' }, 2, at(HOUR), 0).state).toBe('active');
  });

  describe('forbidden transitions are 409s with a stable code', () => {
    test.each<[string, () => unknown, string]>([
      ['activating an active version', () => activateVersion(created(), version(1).kid, at(HOUR), WINDOW), 'INVALID_TRANSITION'],
      ['activating an unknown version', () => activateVersion(created(), 'nope', at(HOUR), WINDOW), 'INVALID_TRANSITION'],
      ['archiving the version in use', () => archiveVersion(created(), version(1).kid, at(HOUR)), 'INVALID_TRANSITION'],
      ['archiving a pending version', () => archiveVersion(addPending(created(), version(2), T0), version(2).kid, at(HOUR)), 'INVALID_TRANSITION'],
      ['archiving twice', () => archiveVersion(archiveVersion(rekeyed(created(), 2, T0), version(1).kid, T0), version(1).kid, T0), 'INVALID_TRANSITION'],
      ['compromising the version in use without a rekey', () => markCompromised(created(), version(1).kid, T0), 'INVALID_TRANSITION'],
      ['adding a version twice', () => addPending(created(), version(1), T0), 'INVALID_TRANSITION'],
      ['adding a version to a revoked tenant', () => addPending(revokeTenant(created(), T0), version(2), T0), 'TENANT_REVOKED'],
      ['activating on a revoked tenant', () => activateVersion({ ...addPending(created(), version(2), T0), state: 'revoked' }, version(2).kid, T0, WINDOW), 'TENANT_REVOKED'],
    ])('%s', (_what, run, code) => {
      expect(codeOf(run)).toBe(code);
    });
  });

  test('published keys carry kty, n, e, kid, use and alg only (no key_ops: jose refuses them)', () => {
    expect(publicKeyEntry(created().versions[0]!)).toEqual({ kty: 'RSA', n: 'n1', e: 'AQAB', kid: version(1).kid, use: 'enc', alg: 'RSA-OAEP-256' });
  });
});

describe('the key policy', () => {
  test('a creation uses the larger of its configured size and the policy minimum, rounded up to a Key Vault size', () => {
    expect(DEFAULT_KEY_POLICY.rsaMinBits).toBe(2048);
    expect(rsaBitsFor(3072, DEFAULT_KEY_POLICY)).toBe(3072);
    expect(rsaBitsFor(2048, { ...DEFAULT_KEY_POLICY, rsaMinBits: 3072 })).toBe(3072);
    expect(rsaBitsFor(3072, { ...DEFAULT_KEY_POLICY, rsaMinBits: 3500 })).toBe(4096);
    expect(rsaBitsFor(1024, DEFAULT_KEY_POLICY)).toBe(2048);
  });
});
