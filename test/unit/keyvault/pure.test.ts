/** Pure parts of the Key Vault emulator: durations, paging, crypto helpers, due-event scheduling. */
import { constants, createHash, createPublicKey, publicEncrypt, randomBytes, verify as nodeVerify } from 'node:crypto';
import { cipher, generateKey, sign, verify } from '../../../local/keyvault/crypto';
import { addDuration, parseDuration } from '../../../local/keyvault/duration';
import { dueItems, firedKey, nextDue } from '../../../local/keyvault/events';
import { pageOf } from '../../../local/keyvault/paging';
import { emptyState } from '../../../local/keyvault/store';

describe('ISO 8601 durations', () => {
  it('parses the forms rotation policies use and rejects others', () => {
    expect(parseDuration('P90D')).toEqual({ years: 0, months: 0, days: 90, seconds: 0 });
    expect(parseDuration('P1Y2M3W4DT5H6M7S')).toEqual({ years: 1, months: 2, days: 25, seconds: 5 * 3600 + 6 * 60 + 7 });
    for (const bad of ['', 'P', '90D', 'PT', 'P1.5D', 'soon']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('adds calendar months and subtracts days in UTC', () => {
    const d = new Date('2025-01-31T00:00:00Z');
    expect(addDuration(d, parseDuration('P1Y')!).toISOString()).toBe('2026-01-31T00:00:00.000Z');
    expect(addDuration(d, parseDuration('P30D')!, -1).toISOString()).toBe('2025-01-01T00:00:00.000Z');
  });
});

describe('paging', () => {
  const items = Array.from({ length: 30 }, (_, i) => i);
  it('pages with an absolute nextLink that keeps api-version and maxresults', () => {
    const first = pageOf(items, 'https://h:1', '/secrets', new URLSearchParams('api-version=7.5&maxresults=12'));
    expect(first.value).toEqual(items.slice(0, 12));
    const next = new URL(first.nextLink!);
    expect(next.origin + next.pathname).toBe('https://h:1/secrets');
    expect(next.searchParams.get('api-version')).toBe('7.5');
    const second = pageOf(items, 'https://h:1', '/secrets', next.searchParams);
    const third = pageOf(items, 'https://h:1', '/secrets', new URL(second.nextLink!).searchParams);
    expect([...first.value, ...second.value, ...third.value]).toEqual(items);
    expect(third.nextLink).toBeNull();
  });
  it('defaults to 25 and refuses more', () => {
    expect(pageOf(items, 'https://h', '/k', new URLSearchParams()).value).toHaveLength(25);
    expect(() => pageOf(items, 'https://h', '/k', new URLSearchParams('maxresults=26'))).toThrow(/maxresults/);
  });
});

describe('crypto over digests', () => {
  it('PS256 on a 3072-bit key verifies with Node and with itself', async () => {
    const jwk = await generateKey('RSA', { keySize: 3072 });
    const data = randomBytes(64);
    const sig = sign(jwk, 'PS256', createHash('sha256').update(data).digest());
    const pub = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
    expect(nodeVerify('sha256', data, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig)).toBe(true);
    expect(verify(jwk, 'PS256', createHash('sha256').update(data).digest(), sig)).toBe(true);
    expect(verify(jwk, 'PS256', createHash('sha256').update('other').digest(), sig)).toBe(false);
  });

  it('RSA1_5 decrypts what Node encrypts (despite Node refusing PKCS#1 v1.5 decryption)', async () => {
    const jwk = await generateKey('RSA', {});
    const pub = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
    const msg = randomBytes(32);
    const ct = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, msg);
    expect(cipher(jwk, 'RSA1_5', { value: ct }, false, true).value).toEqual(msg);
  });

  it('ES256K signatures are r||s over the given digest', async () => {
    const jwk = await generateKey('EC', { crv: 'P-256K' });
    const digest = randomBytes(32);
    const sig = sign(jwk, 'ES256K', digest);
    expect(sig).toHaveLength(64);
    expect(verify(jwk, 'ES256K', digest, sig)).toBe(true);
  });
});

describe('due-event scheduling', () => {
  const t0 = Date.UTC(2030, 0, 1) / 1000;
  const attrs = (exp?: number) => ({ enabled: true, created: t0, updated: t0, ...(exp ? { exp } : {}) });

  it('schedules NearExpiry 30 days before exp and Expired at exp for the current version only', () => {
    const s = emptyState();
    s.secrets.a = { name: 'A', versions: [{ version: 'v1', value: 'x', attributes: attrs(t0 + 10 * 86400) }, { version: 'v2', value: 'y', attributes: attrs(t0 + 90 * 86400) }] };
    const items = dueItems(s);
    expect(items.map((i) => [i.type, i.version, i.at])).toEqual([
      ['NearExpiry', 'v2', (t0 + 60 * 86400) * 1000],
      ['Expired', 'v2', (t0 + 90 * 86400) * 1000],
    ]);
    s.fired[firedKey('Secret', 'a', 'v2', 'NearExpiry')] = 1;
    expect(nextDue(s, Number.MAX_SAFE_INTEGER)?.type).toBe('Expired');
    expect(nextDue(s, (t0 + 89 * 86400) * 1000)).toBeUndefined();
  });

  it('uses the key rotation policy for Notify and Rotate triggers', () => {
    const s = emptyState();
    s.keys.k = {
      name: 'k',
      versions: [{ version: 'v1', kty: 'EC', jwk: { kty: 'EC' }, keyOps: [], attributes: attrs(t0 + 100 * 86400) }],
      policy: {
        created: t0,
        updated: t0,
        lifetimeActions: [
          { trigger: { timeBeforeExpiry: 'P7D' }, action: { type: 'Notify' } },
          { trigger: { timeAfterCreate: 'P1M' }, action: { type: 'Rotate' } },
        ],
      },
    };
    const byType = Object.fromEntries(dueItems(s).map((i) => [i.type, i.at]));
    expect(byType.NearExpiry).toBe((t0 + 93 * 86400) * 1000);
    expect(byType.Rotate).toBe(Date.UTC(2030, 1, 1));
  });
});
