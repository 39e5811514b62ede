/**
 * The tenant JWE format against jose as the client: content jose protects opens here
 * (with the content key unwrapped outside, as Key Vault does), content made here opens
 * in jose, and every malformed or tampered JWE is JWE_INVALID.
 */
import { CompactEncrypt, base64url, compactDecrypt, exportJWK, importJWK } from 'jose';
import { constants, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { KeyturnError } from '../../../shared/errors';
import { decryptContent, encryptContent, parseCompactJwe, wrapContentKey } from '../../../shared/domain/tenantJwe';

const KID = 'https://kv.example/keys/tenant-acme/v1';
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
/** What Key Vault's unwrapKey does with the private key. */
const unwrap = (wrapped: Buffer) => privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrapped);

async function joseProtect(plaintext: string, header: Record<string, unknown> = { alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: KID }) {
  const jwk = await exportJWK(publicKey);
  return new CompactEncrypt(new TextEncoder().encode(plaintext)).setProtectedHeader(header as never).encrypt(await importJWK({ ...jwk, alg: 'RSA-OAEP-256' }, 'RSA-OAEP-256'));
}

function open(jwe: string): string {
  const parsed = parseCompactJwe(jwe);
  return decryptContent(parsed, unwrap(parsed.encryptedKey)).toString('utf8');
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (e) {
    return e instanceof KeyturnError ? e.code : `not a KeyturnError: ${String(e)}`;
  }
  return undefined;
}

describe('tenant content: compact JWE, RSA-OAEP-256 + A256GCM', () => {
  test('When jose protects offline, then Keyturn opens it with the externally unwrapped key', async () => {
    const jwe = await joseProtect('hello tenant');
    expect(parseCompactJwe(jwe).kid).toBe(KID);
    expect(open(jwe)).toBe('hello tenant');
  });

  test('When Keyturn protects, then jose opens it with the private key', async () => {
    const { n, e } = (await exportJWK(publicKey)) as { n: string; e: string };
    const cek = randomBytes(32);
    const jwe = encryptContent({ kid: KID, cek, iv: randomBytes(12), encryptedKey: wrapContentKey({ kty: 'RSA', n, e }, cek), plaintext: Buffer.from('from keyturn') });
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, privateKey);
    expect(new TextDecoder().decode(plaintext)).toBe('from keyturn');
    expect(protectedHeader).toEqual({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: KID });
  });

  test.each<[string, (parts: string[]) => string]>([
    ['a flipped ciphertext byte', (p) => { const c = base64url.decode(p[3]!); c[0]! ^= 1; return [p[0], p[1], p[2], base64url.encode(c), p[4]].join('.'); }],
    ['a flipped tag byte', (p) => { const t = base64url.decode(p[4]!); t[0]! ^= 1; return [...p.slice(0, 4), base64url.encode(t)].join('.'); }],
    ['a changed protected header (AAD)', (p) => [base64url.encode(JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: KID, x: 1 })), ...p.slice(1)].join('.')],
    ['a truncated token', (p) => p.slice(0, 4).join('.')],
    ['a truncated tag', (p) => [...p.slice(0, 4), p[4]!.slice(0, 10)].join('.')],
    ['a short iv', (p) => [p[0], p[1], base64url.encode(new Uint8Array(8)), p[3], p[4]].join('.')],
    ['non-base64url characters', (p) => [p[0], p[1], `${p[2]}*`, p[3], p[4]].join('.')],
    ['a header that is not JSON', (p) => [base64url.encode('not json'), ...p.slice(1)].join('.')],
    ['a JSON array header', (p) => [base64url.encode('[]'), ...p.slice(1)].join('.')],
  ])('When the JWE has %s, then it is JWE_INVALID', async (_what, mutate) => {
    const jwe = mutate((await joseProtect('secret')).split('.'));
    expect(codeOf(() => open(jwe))).toBe('JWE_INVALID');
  });

  test.each<[string, Record<string, unknown>]>([
    ['alg RSA-OAEP', { alg: 'RSA-OAEP', enc: 'A256GCM', kid: KID }],
    ['enc A128GCM', { alg: 'RSA-OAEP-256', enc: 'A128GCM', kid: KID }],
    ['zip DEF', { alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: KID, zip: 'DEF' }],
    ['no kid', { alg: 'RSA-OAEP-256', enc: 'A256GCM' }],
  ])('When the header says %s, then it is refused before any unwrap', async (_what, header) => {
    // jose makes some of these itself; the others are re-headed (the check is on the header alone).
    const parts = (await joseProtect('secret')).split('.');
    const jwe = [base64url.encode(JSON.stringify(header)), ...parts.slice(1)].join('.');
    expect(codeOf(() => parseCompactJwe(jwe))).toBe('JWE_INVALID');
  });

  test('crit is refused', async () => {
    const parts = (await joseProtect('secret')).split('.');
    const jwe = [base64url.encode(JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: KID, crit: ['exp'], exp: 1 })), ...parts.slice(1)].join('.');
    expect(codeOf(() => parseCompactJwe(jwe))).toBe('JWE_INVALID');
  });

  test('a wrong content key is JWE_INVALID, never a crash', async () => {
    const parsed = parseCompactJwe(await joseProtect('secret'));
    expect(codeOf(() => decryptContent(parsed, randomBytes(32)))).toBe('JWE_INVALID');
    expect(codeOf(() => decryptContent(parsed, randomBytes(16)))).toBe('JWE_INVALID');
  });
});
