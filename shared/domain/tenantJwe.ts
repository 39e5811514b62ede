/**
 * Tenant content: a compact JWE (RFC 7516 §7.1), `alg` RSA-OAEP-256 and `enc` A256GCM,
 * `kid` the tenant version's Key Vault key id. The header is checked, never trusted
 * (`zip` and `crit` refused). Keyturn unwraps the content key through Key Vault and
 * does the A256GCM step here with node:crypto (jose cannot take a key unwrapped
 * elsewhere): the associated data is the ASCII of the encoded protected header
 * (RFC 7516 §5.2 step 14). Every malformed or tampered JWE is `JWE_INVALID` (400).
 */
import { createCipheriv, createDecipheriv, createPublicKey, constants, publicEncrypt } from 'node:crypto';
import { KeyturnError } from '../errors';
import { CONTENT_ALG, CONTENT_ENC, type RsaPublicJwk } from './tenantKeys';

export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const CEK_BYTES = 32;
/** Plaintext through `protect` (and so what `unprotect` opens of Keyturn's own making). */
export const MAX_PLAINTEXT_BYTES = 64 * 1024;
/** A JWE of a maximal plaintext, with room for the header and an RSA-4096 encrypted key. */
export const MAX_JWE_CHARS = Math.ceil((MAX_PLAINTEXT_BYTES * 4) / 3) + 4096;
const MAX_HEADER_CHARS = 4096;
const B64URL = /^[A-Za-z0-9_-]*$/;

export interface ParsedJwe {
  /** The encoded protected header, exactly as sent: the associated data. */
  protectedHeader: string;
  kid: string;
  encryptedKey: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export const jweInvalid = (why: string): KeyturnError => new KeyturnError('JWE_INVALID', `jwe: ${why}`, { field: 'jwe' });

function decode(part: string, what: string): Buffer {
  // Strict base64url: Buffer.from would skip characters it does not know.
  if (!B64URL.test(part) || part.length % 4 === 1) throw jweInvalid(`${what} is not base64url`);
  return Buffer.from(part, 'base64url');
}

/** Parses and checks a compact JWE in the tenant format; throws JWE_INVALID naming what is wrong. */
export function parseCompactJwe(jwe: string): ParsedJwe {
  if (jwe.length > MAX_JWE_CHARS) throw jweInvalid(`longer than ${MAX_JWE_CHARS} characters`);
  const parts = jwe.split('.');
  if (parts.length !== 5) throw jweInvalid('expected five base64url parts separated by dots (compact serialization)');
  const [h, k, i, c, t] = parts as [string, string, string, string, string];
  if (h.length === 0 || h.length > MAX_HEADER_CHARS) throw jweInvalid('protected header is empty or too long');
  let header: unknown;
  try {
    header = JSON.parse(decode(h, 'protected header').toString('utf8'));
  } catch (e) {
    if (e instanceof KeyturnError) throw e;
    throw jweInvalid('protected header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw jweInvalid('protected header is not a JSON object');
  const fields = header as Record<string, unknown>;
  if (fields.alg !== CONTENT_ALG) throw jweInvalid(`alg must be ${CONTENT_ALG}`);
  if (fields.enc !== CONTENT_ENC) throw jweInvalid(`enc must be ${CONTENT_ENC}`);
  if ('zip' in fields) throw jweInvalid('zip is not accepted');
  if ('crit' in fields) throw jweInvalid('crit is not accepted');
  if (typeof fields.kid !== 'string' || fields.kid.length === 0 || fields.kid.length > 512) throw jweInvalid('kid must name a key version');
  const encryptedKey = decode(k, 'encrypted key');
  if (encryptedKey.length < 256 || encryptedKey.length > 512) throw jweInvalid('encrypted key has the wrong length for RSA-OAEP-256');
  const iv = decode(i, 'iv');
  if (iv.length !== IV_BYTES) throw jweInvalid(`iv must be ${IV_BYTES} bytes`);
  const ciphertext = decode(c, 'ciphertext');
  const tag = decode(t, 'tag');
  if (tag.length !== TAG_BYTES) throw jweInvalid(`tag must be ${TAG_BYTES} bytes`);
  return { protectedHeader: h, kid: fields.kid, encryptedKey, iv, ciphertext, tag };
}

/** A256GCM decryption with the protected header as associated data; a wrong key or any tampering is JWE_INVALID. */
export function decryptContent(jwe: ParsedJwe, cek: Uint8Array): Buffer {
  if (cek.length !== CEK_BYTES) throw jweInvalid('the content key does not open this content');
  try {
    const decipher = createDecipheriv('aes-256-gcm', cek, jwe.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(jwe.protectedHeader, 'ascii'));
    decipher.setAuthTag(jwe.tag);
    return Buffer.concat([decipher.update(jwe.ciphertext), decipher.final()]);
  } catch {
    throw jweInvalid('authentication failed (tampered, truncated or not for this key)');
  }
}

/**
 * RSA-OAEP-256 (SHA-256, MGF1-SHA-256) of the content key under a published public
 * key: what any JOSE client does offline, so Keyturn's own protect needs no vault call.
 */
export function wrapContentKey(publicJwk: RsaPublicJwk, cek: Uint8Array): Buffer {
  const key = createPublicKey({ key: { kty: 'RSA', n: publicJwk.n, e: publicJwk.e }, format: 'jwk' });
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);
}

/** The compact JWE of `plaintext` (the caller supplies fresh random `cek` and `iv`, and the wrapped key). */
export function encryptContent(input: { kid: string; cek: Uint8Array; iv: Uint8Array; encryptedKey: Uint8Array; plaintext: Uint8Array }): string {
  if (input.cek.length !== CEK_BYTES || input.iv.length !== IV_BYTES) throw new Error('encryptContent: a 32-byte key and a 12-byte iv are required');
  const protectedHeader = Buffer.from(JSON.stringify({ alg: CONTENT_ALG, enc: CONTENT_ENC, kid: input.kid })).toString('base64url');
  const cipher = createCipheriv('aes-256-gcm', input.cek, input.iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(protectedHeader, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(input.plaintext), cipher.final()]);
  const b = (x: Uint8Array) => Buffer.from(x).toString('base64url');
  return [protectedHeader, b(input.encryptedKey), b(input.iv), b(ciphertext), b(cipher.getAuthTag())].join('.');
}
