/**
 * Encrypt/decrypt and wrap/unwrap: RSA-OAEP(-256), RSA1_5 and the AES algorithms.
 * Node ≥ 20.11 refuses RSA1_5 decryption (CVE-2023-46809), so it is unpadded by
 * hand after a raw private operation.
 */
import { constants, createCipheriv, createDecipheriv, privateDecrypt, publicEncrypt, randomBytes } from 'node:crypto';
import { badParameter, KvError } from './errors';
import { type StoredJwk, privateKeyObject, publicKeyObject, rsaBytes } from './jwk';

export interface CipherInput {
  value: Buffer;
  iv?: Buffer;
  aad?: Buffer;
  tag?: Buffer;
}

export interface CipherOutput {
  value: Buffer;
  iv?: Buffer;
  tag?: Buffer;
  aad?: Buffer;
}

const RSA_OAEP: Record<string, string> = { 'RSA-OAEP': 'sha1', 'RSA-OAEP-256': 'sha256' };

function rsaEncrypt(jwk: StoredJwk, alg: string, value: Buffer): Buffer {
  const key = publicKeyObject(jwk);
  try {
    if (alg === 'RSA1_5') return publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, value);
    return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: RSA_OAEP[alg] as string }, value);
  } catch {
    throw badParameter(`The value is too long for ${alg} with this key.`);
  }
}

function rsaDecrypt(jwk: StoredJwk, alg: string, value: Buffer): Buffer {
  const key = privateKeyObject(jwk);
  if (value.length !== rsaBytes(jwk)) throw badParameter(`Invalid ciphertext length for ${alg}.`);
  try {
    if (alg === 'RSA1_5') {
      const m = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, value);
      // EME-PKCS1-v1_5: 00 02 PS(≥8 non-zero) 00 M
      const sep = m.indexOf(0, 2);
      if (m[0] !== 0 || m[1] !== 2 || sep < 10) throw new Error('padding');
      return m.subarray(sep + 1);
    }
    return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: RSA_OAEP[alg] as string }, value);
  } catch {
    throw badParameter(`Decryption with ${alg} failed.`);
  }
}

const AES_BITS = (alg: string): number => Number(alg.slice(1, 4));

function octKey(jwk: StoredJwk, alg: string): Buffer {
  const k = Buffer.from(jwk.k ?? '', 'base64url');
  if (k.length * 8 !== AES_BITS(alg)) throw badParameter(`Algorithm ${alg} does not match the ${k.length * 8}-bit key.`);
  return k;
}

const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

function aes(jwk: StoredJwk, alg: string, input: CipherInput, encrypt: boolean): CipherOutput {
  const key = octKey(jwk, alg);
  const bits = AES_BITS(alg);
  try {
    if (/^A(128|192|256)KW$/.test(alg)) {
      const name = `id-aes${bits}-wrap`;
      const c = encrypt ? createCipheriv(name, key, KW_IV) : createDecipheriv(name, key, KW_IV);
      return { value: Buffer.concat([c.update(input.value), c.final()]) };
    }
    if (/^A(128|192|256)GCM$/.test(alg)) {
      const name = `aes-${bits}-gcm` as 'aes-256-gcm';
      if (encrypt) {
        const iv = input.iv ?? randomBytes(12);
        const c = createCipheriv(name, key, iv);
        if (input.aad) c.setAAD(input.aad);
        const value = Buffer.concat([c.update(input.value), c.final()]);
        return { value, iv, tag: c.getAuthTag(), ...(input.aad ? { aad: input.aad } : {}) };
      }
      if (!input.iv || !input.tag) throw badParameter(`${alg} decryption needs iv and tag.`);
      const d = createDecipheriv(name, key, input.iv);
      d.setAuthTag(input.tag);
      if (input.aad) d.setAAD(input.aad);
      return { value: Buffer.concat([d.update(input.value), d.final()]) };
    }
    const cbc = /^A(128|192|256)CBC(PAD)?$/.exec(alg);
    if (cbc) {
      const name = `aes-${bits}-cbc`;
      const iv = input.iv ?? (encrypt ? randomBytes(16) : undefined);
      if (!iv) throw badParameter(`${alg} decryption needs iv.`);
      const c = encrypt ? createCipheriv(name, key, iv) : createDecipheriv(name, key, iv);
      c.setAutoPadding(Boolean(cbc[2]));
      const value = Buffer.concat([c.update(input.value), c.final()]);
      return encrypt ? { value, iv } : { value };
    }
  } catch (e) {
    if (e instanceof KvError) throw e;
    throw badParameter(`${alg} ${encrypt ? 'encryption' : 'decryption'} failed.`);
  }
  throw badParameter(`Unsupported algorithm '${alg}' for an oct key.`);
}

const RSA_ENC_ALGS = ['RSA-OAEP', 'RSA-OAEP-256', 'RSA1_5'];
const OCT_WRAP = /^A(128|192|256)KW$/;
const OCT_ENC = /^A(128|192|256)(GCM|CBC|CBCPAD)$/;

/** encrypt/decrypt (wrap = false) or wrapKey/unwrapKey (wrap = true). */
export function cipher(jwk: StoredJwk, alg: string, input: CipherInput, encrypt: boolean, wrap: boolean): CipherOutput {
  if (jwk.kty === 'RSA') {
    if (!RSA_ENC_ALGS.includes(alg)) throw badParameter(`Unsupported algorithm '${alg}' for an RSA key.`);
    return { value: encrypt ? rsaEncrypt(jwk, alg, input.value) : rsaDecrypt(jwk, alg, input.value) };
  }
  if (jwk.kty === 'oct') {
    if (!(wrap ? OCT_WRAP : OCT_ENC).test(alg)) throw badParameter(`Unsupported algorithm '${alg}' for this operation on an oct key.`);
    return aes(jwk, alg, input, encrypt);
  }
  throw badParameter('EC keys cannot encrypt or wrap keys.');
}
