/** BYOK rules (pure): the key URL a customer may name, the proof-of-control tag, the access-probe window; the credential selection per vault + customer tenant. */
import { credentialSelection } from '../../../shared/adapters/keyVault/clients';
import { applyProbe, checkTenantTag, parseByokKeyUrl, requireRekey } from '../../../shared/domain/tenantByok';
import { type Tenant, archiveVersion, newTenant, rekeyTenant } from '../../../shared/domain/tenantKeys';

const MIN = 60_000;
const T0 = new Date('2026-03-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const OWN = ['https://keyturn-prod.vault.azure.net'];

function byokTenant(): Tenant {
  const kid = 'https://contoso.vault.azure.net/keys/tk/0123456789abcdef0123456789abcdef';
  return newTenant(
    { tenantId: 'contoso', topology: 'byok', requestedBy: 'ops' },
    { kid, vaultUrl: 'https://contoso.vault.azure.net', name: 'tk', version: '0123456789abcdef0123456789abcdef', publicJwk: { kty: 'RSA', n: 'AQAB', e: 'AQAB' }, requestedBy: 'ops' },
    T0,
  );
}

describe('BYOK key URLs', () => {
  test.each([
    ['https://evil.example.com/keys/k', /allow-list/],
    ['https://keyturn-prod.vault.azure.net/keys/k', /Keyturn's own vaults/],
    ['https://contoso.vault.azure.net/secrets/k', /keys\/\{name\}/],
    ['https://contoso.vault.azure.net', /keys\/\{name\}/],
    ['https://contoso.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef', /without a version/],
    ['https://127.0.0.1:8445/keys/k', /allow-list/],
  ])('When keyUrl is %s, then it is a 400 naming keyUrl', (url, why) => {
    expect(() => parseByokKeyUrl(url, { local: false, ownVaultUrls: OWN })).toThrow(why);
    try {
      parseByokKeyUrl(url, { local: false, ownVaultUrls: OWN });
    } catch (e) {
      expect(e).toMatchObject({ code: 'VALIDATION_FAILED', field: 'keyUrl' });
    }
  });

  test('When the URL names a key in a customer vault, then its vault and name are taken (canonical vault URL)', () => {
    expect(parseByokKeyUrl('https://Contoso.vault.azure.net/keys/tenant-key', { local: false, ownVaultUrls: OWN })).toEqual({ vaultUrl: 'https://contoso.vault.azure.net', name: 'tenant-key' });
    expect(parseByokKeyUrl('https://127.0.0.1:8445/keys/k', { local: true, ownVaultUrls: ['https://127.0.0.1:8443'] })).toEqual({ vaultUrl: 'https://127.0.0.1:8445', name: 'k' });
  });

  test('When the tag is missing or names another tenant, then it is refused; the right tag passes', () => {
    expect(() => checkTenantTag({}, 'contoso')).toThrow(/carries no tag keyturn-tenant=contoso/);
    expect(() => checkTenantTag({ 'keyturn-tenant': 'fabrikam' }, 'contoso')).toThrow(/names another tenant/);
    expect(() => checkTenantTag({ 'Keyturn-Tenant': 'contoso' }, 'contoso')).not.toThrow();
  });
});

describe('BYOK access probes', () => {
  test('When probes fail, then the tenant is access-lost only once two failures span the window (at least 10 minutes)', () => {
    let t = applyProbe(byokTenant(), 'forbidden', at(0), 10 * MIN);
    expect(t.state).toBe('active');
    t = applyProbe(t, 'forbidden', at(5 * MIN), 10 * MIN);
    expect(t.state).toBe('active');
    // A window set below the minimum still waits 10 minutes.
    expect(applyProbe(t, 'forbidden', at(6 * MIN), MIN).state).toBe('active');
    t = applyProbe(t, 'forbidden', at(10 * MIN), 10 * MIN);
    expect(t.state).toBe('access-lost');
    expect(t.access).toMatchObject({ failures: 3, failingSince: at(0).toISOString(), lostAt: at(10 * MIN).toISOString(), stateBeforeLoss: 'active' });
  });

  test('When one probe fails and the next succeeds, then the run of failures starts again', () => {
    let t = applyProbe(byokTenant(), 'forbidden', at(0), 10 * MIN);
    t = applyProbe(t, 'ok', at(MIN), 10 * MIN);
    t = applyProbe(t, 'forbidden', at(11 * MIN), 10 * MIN);
    expect(t.state).toBe('active');
    expect(t.access?.failingSince).toBe(at(11 * MIN).toISOString());
  });

  test('When access is back, then the tenant returns to its earlier state by itself; unknown outcomes change nothing', () => {
    let t = applyProbe(applyProbe(byokTenant(), 'forbidden', at(0), 10 * MIN), 'forbidden', at(10 * MIN), 10 * MIN);
    expect(applyProbe(t, 'unknown', at(11 * MIN), 10 * MIN)).toBe(t);
    t = applyProbe(t, 'ok', at(12 * MIN), 10 * MIN);
    expect(t.state).toBe('active');
    expect(t.access).toEqual({ failures: 0, lastProbeAt: at(12 * MIN).toISOString() });
    // A healthy tenant is not rewritten by every probe.
    expect(applyProbe(t, 'ok', at(13 * MIN), 10 * MIN)).toBe(t);
  });

  test('When access was lost during a changeover that ended meanwhile, then access back is active (not a stuck changeover)', () => {
    const t0 = byokTenant();
    const next = { ...t0.versions[0]!, kid: `${t0.versions[0]!.kid}x`, version: 'x' };
    let t = rekeyTenant(t0, next, { fromKid: t0.activeKid!, compromised: false }, at(0), 60 * MIN);
    expect(t.state).toBe('changeover');
    t = applyProbe(applyProbe(t, 'forbidden', at(MIN), 10 * MIN), 'forbidden', at(12 * MIN), 10 * MIN);
    expect(t.state).toBe('access-lost');
    t = archiveVersion(t, t0.activeKid!, at(61 * MIN));
    t = applyProbe(t, 'ok', at(62 * MIN), 10 * MIN);
    expect(t.state).toBe('active');
    expect(t.changeoverUntil).toBeUndefined();
  });

  test('When a BYOK key is compromised without a new one, then the tenant is rekey-required and its version flagged', () => {
    const t = requireRekey(byokTenant(), at(0));
    expect(t.state).toBe('rekey-required');
    expect(t.versions[0]).toMatchObject({ compromised: true });
  });
});

describe('Key Vault credential per vault URL and customer tenant', () => {
  const HOME = '11111111-1111-1111-1111-111111111111';
  const CUSTOMER = '22222222-2222-2222-2222-222222222222';
  const APP = '33333333-3333-3333-3333-333333333333';

  test('When local, then always the local credential (the emulator has one directory)', () => {
    expect(credentialSelection({ local: true, customerTenantId: CUSTOMER, homeTenantId: HOME })).toEqual({ kind: 'local' });
  });
  test("When no customer tenant or Keyturn's own, then the managed identity", () => {
    expect(credentialSelection({ local: false })).toEqual({ kind: 'managed-identity' });
    expect(credentialSelection({ local: false, customerTenantId: HOME.toUpperCase(), homeTenantId: HOME, crossTenantClientId: APP })).toEqual({ kind: 'managed-identity' });
  });
  test('When the customer is in another Entra tenant, then the cross-tenant credential of the multi-tenant app for that tenant', () => {
    expect(credentialSelection({ local: false, customerTenantId: CUSTOMER, homeTenantId: HOME, crossTenantClientId: APP })).toEqual({ kind: 'cross-tenant', tenantId: CUSTOMER, clientId: APP });
  });
  test('When the app registration is not configured, then CONFIG_INVALID naming KEYTURN_CROSS_TENANT_CLIENT_ID', () => {
    expect(() => credentialSelection({ local: false, customerTenantId: CUSTOMER, homeTenantId: HOME })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', details: { settings: ['KEYTURN_CROSS_TENANT_CLIENT_ID'] } }));
  });
});
