/**
 * Signatures over a caller-supplied digest, as Key Vault makes them. Node's crypto
 * always hashes, so RS* uses a raw PKCS#1 private operation over DigestInfo‖digest,
 * PS* encodes EMSA-PSS by hand, and ES* uses @noble/curves (r‖s, IEEE P1363).
 */
import { constants, createHash, privateEncrypt, publicDecrypt, randomBytes, timingSafeEqual } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { badParameter } from './errors';
import { type StoredJwk, modBits, privateKeyObject, publicKeyObject, rsaBytes } from './jwk';

const HASH_OF: Record<string, { hash: string; len: number }> = {
  RS256: { hash: 'sha256', len: 32 },
  RS384: { hash: 'sha384', len: 48 },
  RS512: { hash: 'sha512', len: 64 },
  PS256: { hash: 'sha256', len: 32 },
  PS384: { hash: 'sha384', len: 48 },
  PS512: { hash: 'sha512', len: 64 },
  ES256: { hash: 'sha256', len: 32 },
  ES384: { hash: 'sha384', len: 48 },
  ES512: { hash: 'sha512', len: 64 },
  ES256K: { hash: 'sha256', len: 32 },
};

const DIGEST_INFO: Record<string, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

const EC_ALG_CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521', ES256K: 'P-256K' };

type NobleCurve = typeof p256;
const NOBLE: Record<string, NobleCurve> = {
  'P-256': p256,
  'P-384': p384 as unknown as NobleCurve,
  'P-521': p521 as unknown as NobleCurve,
  'P-256K': secp256k1 as unknown as NobleCurve,
};
const CURVE_BYTES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66, 'P-256K': 32 };

function checkSignArgs(jwk: StoredJwk, alg: string, digest: Buffer): { hash: string } {
  const h = HASH_OF[alg];
  if (!h) throw badParameter(`Unsupported signature algorithm '${alg}'.`);
  if (alg.startsWith('ES')) {
    if (jwk.kty !== 'EC') throw badParameter(`Algorithm ${alg} needs an EC key.`);
    if (EC_ALG_CURVE[alg] !== jwk.crv) throw badParameter(`Algorithm ${alg} does not match curve ${jwk.crv}.`);
  } else if (jwk.kty !== 'RSA') {
    throw badParameter(`Algorithm ${alg} needs an RSA key.`);
  }
  if (digest.length !== h.len) throw badParameter(`Invalid digest length ${digest.length} for ${alg}; expected ${h.len} bytes.`);
  return h;
}

function leftPad(b: Uint8Array, len: number): Buffer {
  if (b.length >= len) return Buffer.from(b);
  return Buffer.concat([Buffer.alloc(len - b.length), b]);
}

function ecPoint(jwk: StoredJwk): Uint8Array {
  const len = CURVE_BYTES[jwk.crv ?? ''] ?? 32;
  return Buffer.concat([
    Buffer.from([4]),
    leftPad(Buffer.from(jwk.x ?? '', 'base64url'), len),
    leftPad(Buffer.from(jwk.y ?? '', 'base64url'), len),
  ]);
}

function mgf1(seed: Buffer, length: number, hash: string): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (let counter = 0; total < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = createHash(hash).update(seed).update(c).digest();
    parts.push(block);
    total += block.length;
  }
  return Buffer.concat(parts).subarray(0, length);
}


function pssEncode(digest: Buffer, hash: string, emBits: number): Buffer {
  const hLen = digest.length;
  const emLen = Math.ceil(emBits / 8);
  const salt = randomBytes(hLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - hLen - hLen - 2), Buffer.from([1]), salt]);
  const mask = mgf1(h, emLen - hLen - 1, hash);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (mask[i] as number);
  db[0] = (db[0] as number) & (0xff >> (8 * emLen - emBits));
  return Buffer.concat([db, h, Buffer.from([0xbc])]);
}

function pssVerify(digest: Buffer, hash: string, em: Buffer, emBits: number): boolean {
  const hLen = digest.length;
  const emLen = Math.ceil(emBits / 8);
  if (em.length !== emLen || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if (((maskedDb[0] as number) & ~topMask) !== 0) return false;
  const mask = mgf1(h, maskedDb.length, hash);
  for (let i = 0; i < maskedDb.length; i++) maskedDb[i] = (maskedDb[i] as number) ^ (mask[i] as number);
  maskedDb[0] = (maskedDb[0] as number) & topMask;
  const one = maskedDb.indexOf(1);
  if (one < 0 || maskedDb.subarray(0, one).some((b) => b !== 0)) return false;
  const salt = maskedDb.subarray(one + 1);
  const h2 = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  return timingSafeEqual(h, h2);
}

export function sign(jwk: StoredJwk, alg: string, digest: Buffer): Buffer {
  const { hash } = checkSignArgs(jwk, alg, digest);
  if (alg.startsWith('ES')) {
    const curve = NOBLE[jwk.crv ?? ''] as NobleCurve;
    const d = leftPad(Buffer.from(jwk.d ?? '', 'base64url'), CURVE_BYTES[jwk.crv ?? ''] ?? 32);
    return Buffer.from(curve.sign(digest, d, { prehash: false, lowS: false }));
  }
  const key = privateKeyObject(jwk);
  if (alg.startsWith('RS')) {
    return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO[hash] as Buffer, digest]));
  }
  const em = pssEncode(digest, hash, modBits(jwk) - 1);
  return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, leftPad(em, rsaBytes(jwk)));
}

export function verify(jwk: StoredJwk, alg: string, digest: Buffer, signature: Buffer): boolean {
  const { hash } = checkSignArgs(jwk, alg, digest);
  try {
    if (alg.startsWith('ES')) {
      const curve = NOBLE[jwk.crv ?? ''] as NobleCurve;
      return curve.verify(signature, digest, ecPoint(jwk), { prehash: false, lowS: false });
    }
    const key = publicKeyObject(jwk);
    if (signature.length !== rsaBytes(jwk)) return false;
    if (alg.startsWith('RS')) {
      const recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
      const expected = Buffer.concat([DIGEST_INFO[hash] as Buffer, digest]);
      return recovered.length === expected.length && timingSafeEqual(recovered, expected);
    }
    const emBits = modBits(jwk) - 1;
    const m = publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature);
    const emLen = Math.ceil(emBits / 8);
    if (m.subarray(0, m.length - emLen).some((b) => b !== 0)) return false;
    return pssVerify(digest, hash, m.subarray(m.length - emLen), emBits);
  } catch {
    return false;
  }
}
