import { type AffectedSnapshot, type PlaybookContext, changeCount, needsSecondApprover, planPlaybook } from '../../../shared/domain/playbooks';
import { DEFAULT_KEY_POLICY } from '../../../shared/domain/tenantKeyPolicy';
import { ValidationError } from '../../../shared/errors';

const empty: AffectedSnapshot = { tenants: [], tenantKids: [], signingKeys: [], credentials: [], keySets: [], keySetKeys: [], principals: [], vaults: [], assignments: [] };
const ctx: PlaybookContext = { protectedPrincipals: ['keyturn-app-oid', 'admin-oid'], policy: DEFAULT_KEY_POLICY };
const kinds = (plan: { kind: string }[]) => plan.map((s) => s.kind);

const managed = {
  tenantId: 'fabrikam',
  topology: 'service-managed' as const,
  vault: 'keyturn.vault.azure.net',
  activeKid: 'kid-f2',
  revoked: false,
  versions: [
    { kid: 'kid-f1', state: 'archived' as const, compromised: false, rsaBits: 2048 },
    { kid: 'kid-f2', state: 'active' as const, compromised: false, rsaBits: 2048 },
  ],
};
const byok = {
  tenantId: 'contoso',
  topology: 'byok' as const,
  vault: 'contoso-byok.vault.azure.net',
  activeKid: 'kid-c1',
  revoked: false,
  versions: [{ kid: 'kid-c1', state: 'active' as const, compromised: false, rsaBits: 3072 }],
};

describe('key-leaked', () => {
  const snapshot: AffectedSnapshot = {
    ...empty,
    tenants: [managed, byok],
    signingKeys: [{ kid: 'sig-1', state: 'current', kty: 'RSA', rsaBits: 2048 }],
    credentials: ['main/db-password'],
    keySets: [{ set: 'connectors', kekVault: 'keyturn.vault.azure.net', kekOwned: true, kekRsaBits: 3072, keys: [{ keyId: 'k1', state: 'primary' }, { keyId: 'k0', state: 'retired' }] }],
    keySetKeys: [{ set: 'connectors', keyId: 'k1' }, { set: 'connectors', keyId: 'k0' }],
  };
  const plan = planPlaybook('key-leaked', {}, snapshot, ctx);

  it('rekeys a service-managed tenant with the version in use compromised, never the archived one', () => {
    expect(plan.filter((s) => s.kind === 'tenant-rekey-compromised')).toEqual([expect.objectContaining({ tenantId: 'fabrikam', fromKid: 'kid-f2' })]);
  });
  it('marks a BYOK version compromised and opens a blocking customer task (Keyturn cannot rekey a customer vault)', () => {
    expect(plan.some((s) => s.kind === 'tenant-rekey' || (s.kind === 'tenant-rekey-compromised' && s.tenantId === 'contoso'))).toBe(false);
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'tenant-mark-compromised', tenantId: 'contoso', kid: 'kid-c1' }));
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'task', reason: 'customer-rekey', target: 'contoso', blocking: true }));
  });
  it('rolls the signing key as an emergency, renews the credential without grace', () => {
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'signing-emergency-rollover', kid: 'sig-1' }));
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'credential-renew-no-grace', credentialId: 'main/db-password' }));
  });
  it('for a key-set key: add a key, re-encrypt, retire the leaked key, flag the export stale — in that order, skipping retired keys', () => {
    const ks = plan.filter((s) => s.kind.startsWith('keyset-'));
    expect(kinds(ks)).toEqual(['keyset-add-key', 'keyset-reencrypt', 'keyset-retire-key', 'keyset-flag-export-stale']);
    expect(ks[2]).toMatchObject({ keyId: 'k1' });
  });
  it('compromises only the named versions when kids are named', () => {
    const named = planPlaybook('key-leaked', {}, { ...empty, tenants: [managed], tenantKids: ['kid-f1'] }, ctx);
    expect(named.filter((s) => s.kind === 'tenant-rekey-compromised')).toEqual([expect.objectContaining({ fromKid: 'kid-f1' })]);
  });
  it('plans nothing for a named version that is already compromised, and nothing for a revoked tenant', () => {
    const done = { ...managed, versions: managed.versions.map((v) => ({ ...v, compromised: true })) };
    expect(kinds(planPlaybook('key-leaked', {}, { ...empty, tenants: [done], tenantKids: ['kid-f2'] }, ctx))).toEqual(['record-rule']);
    expect(kinds(planPlaybook('key-leaked', {}, { ...empty, tenants: [{ ...managed, revoked: true }] }, ctx))).toEqual(['record-rule']);
  });
  it('gives every step a distinct, deterministic id', () => {
    const again = planPlaybook('key-leaked', {}, snapshot, ctx);
    expect(again.map((s) => s.id)).toEqual(plan.map((s) => s.id));
    expect(new Set(plan.map((s) => s.id)).size).toBe(plan.length);
  });
});

describe('unauthorized-use', () => {
  const snapshot: AffectedSnapshot = {
    ...empty,
    tenants: [managed],
    principals: ['intruder-oid', 'keyturn-app-oid'],
    vaults: ['keyturn.vault.azure.net'],
    assignments: [
      { id: 'ra-1', principalId: 'intruder-oid', scope: '/vaults/keyturn/keys/a', reach: 'direct' },
      { id: 'ra-2', principalId: 'intruder-oid', scope: '/subscriptions/s', reach: 'inherited' },
      { id: 'ra-3', principalId: 'keyturn-app-oid', scope: '/vaults/keyturn', reach: 'direct' },
    ],
  };
  const plan = planPlaybook('unauthorized-use', {}, snapshot, ctx);

  it('never rekeys anything, and quotes the rule saying why', () => {
    expect(plan.some((s) => /rekey|roll|renew|kek|keyset/.test(s.kind))).toBe(false);
    expect(plan[0]).toMatchObject({ kind: 'record-rule', rule: expect.stringMatching(/rekeying does not help/) });
  });
  it('removes direct assignments, turns inherited ones into blocking tasks, and ends with an advisory root-cause task', () => {
    expect(plan.filter((s) => s.kind === 'remove-assignment')).toEqual([expect.objectContaining({ assignmentId: 'ra-1' })]);
    // The access stays open until someone removes it: containment waits for it.
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'task', reason: 'inherited-assignment', target: 'ra-2', blocking: true }));
    // The root cause is analysis: listed, but it does not hold the incident.
    expect(plan.at(-1)).toMatchObject({ kind: 'task', reason: 'root-cause', blocking: false });
  });
  it("refuses to touch a protected principal (Keyturn's own identity)", () => {
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'refuse-protected-principal', principalId: 'keyturn-app-oid' }));
    expect(plan.some((s) => s.kind === 'remove-assignment' && s.assignmentId === 'ra-3')).toBe(false);
  });
});

describe('hsm-vulnerability', () => {
  const snapshot: AffectedSnapshot = {
    ...empty,
    tenants: [managed, byok],
    vaults: ['keyturn.vault.azure.net', 'contoso-byok.vault.azure.net'],
    keySets: [{ set: 'connectors', kekVault: 'keyturn.vault.azure.net', kekOwned: true, kekRsaBits: 3072, keys: [] }],
  };
  it('without exposure records the advisory and that no rekey is needed', () => {
    const plan = planPlaybook('hsm-vulnerability', { advisory: 'CVE-2026-1', exposed: false }, snapshot, ctx);
    expect(kinds(plan)).toEqual(['record-rule', 'record-advisory', 'record-no-rekey']);
  });
  it('with exposure rekeys service-managed tenants and KEKs on the vaults, and tasks the BYOK customers', () => {
    const plan = planPlaybook('hsm-vulnerability', { advisory: 'CVE-2026-1', exposed: true }, snapshot, ctx);
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'tenant-rekey', tenantId: 'fabrikam', fromKid: 'kid-f2' }));
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'kek-rotate', set: 'connectors' }));
    expect(plan).toContainEqual(expect.objectContaining({ kind: 'task', reason: 'byok-exposed', target: 'contoso', blocking: true }));
  });
  it('leaves tenants on vaults outside the scope alone', () => {
    const plan = planPlaybook('hsm-vulnerability', { advisory: 'x', exposed: true }, { ...snapshot, vaults: ['contoso-byok.vault.azure.net'] }, ctx);
    expect(plan.some((s) => s.kind === 'tenant-rekey' || s.kind === 'kek-rotate')).toBe(false);
  });
});

describe('algorithm-weakness', () => {
  const snapshot: AffectedSnapshot = {
    ...empty,
    tenants: [managed, byok],
    signingKeys: [
      { kid: 'sig-rsa', state: 'current', kty: 'RSA', rsaBits: 2048 },
      { kid: 'sig-ec', state: 'next', kty: 'EC' },
      { kid: 'sig-old', state: 'retired', kty: 'RSA', rsaBits: 2048 },
    ],
    keySets: [
      { set: 'weak', kekVault: 'v', kekOwned: true, kekRsaBits: 2048, keys: [] },
      { set: 'strong', kekVault: 'v', kekOwned: true, kekRsaBits: 4096, keys: [] },
    ],
  };
  const plan = planPlaybook('algorithm-weakness', { policy: { rsaMinBits: 3072 } }, snapshot, ctx);
  it('raises the policy first, then rekeys exactly the keys below the new minimum', () => {
    expect(plan[1]).toMatchObject({ kind: 'raise-policy', to: { rsaMinBits: 3072, forbiddenAlgorithms: ['RSA1_5'] } });
    expect(plan.filter((s) => s.kind === 'tenant-rekey')).toEqual([expect.objectContaining({ tenantId: 'fabrikam' })]);
    expect(plan.filter((s) => s.kind === 'signing-roll')).toEqual([expect.objectContaining({ kid: 'sig-rsa' })]);
    expect(plan.filter((s) => s.kind === 'kek-rotate')).toEqual([expect.objectContaining({ set: 'weak' })]);
    expect(plan.at(-1)).toEqual(expect.objectContaining({ kind: 'report-counts', counts: { tenantKeys: 1, signingKeys: 1, keyEncryptionKeys: 1, customerTasks: 0 } }));
  });
  it('refuses to lower the minimum or to ask for more than Key Vault makes, naming the field', () => {
    const raised = { ...ctx, policy: { ...DEFAULT_KEY_POLICY, rsaMinBits: 3072 } };
    expect(() => planPlaybook('algorithm-weakness', { policy: { rsaMinBits: 2048 } }, snapshot, raised)).toThrow(ValidationError);
    try {
      planPlaybook('algorithm-weakness', { policy: { rsaMinBits: 8192 } }, snapshot, ctx);
      throw new Error('not refused');
    } catch (e) {
      expect((e as ValidationError).field).toBe('details.policy.rsaMinBits');
    }
  });
});

describe('fleet-wide runs', () => {
  it('need a second approver for scope all or above the threshold of changed keys', () => {
    const plan = planPlaybook('key-leaked', {}, { ...empty, credentials: ['a/1', 'a/2', 'a/3'] }, ctx);
    expect(changeCount(plan)).toBe(3);
    expect(needsSecondApprover(plan, false, 3)).toBe(false);
    expect(needsSecondApprover(plan, false, 2)).toBe(true);
    expect(needsSecondApprover(plan, true, 100)).toBe(true);
  });
});
