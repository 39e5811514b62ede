/**
 * Pure cryptographic operations over stored JWKs. No state, no I/O.
 *
 * Key Vault signs a caller-supplied *digest*, which Node's crypto cannot do
 * directly (it always hashes), so RS* uses a raw PKCS#1 private operation over
 * DigestInfo‖digest, PS* encodes EMSA-PSS by hand, and ES* uses @noble/curves
 * (signatures are r‖s, IEEE P1363). Node ≥ 20.11 refuses RSA1_5 decryption
 * (CVE-2023-46809), so it is unpadded by hand after a raw private operation.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  KeyObject,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { promisify } from 'node:util';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { badParameter, KvError } from './errors';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A private JWK as stored (base64url fields). `crv` uses Key Vault's names (P-256K). */
export interface StoredJwk {
  kty: 'RSA' | 'EC' | 'oct';
  n?: string;
  e?: string;
  d?: string;
  p?: string;
  q?: string;
  dp?: string;
  dq?: string;
  qi?: string;
  crv?: string;
  x?: string;
  y?: string;
  k?: string;
}

export type BaseKty = StoredJwk['kty'];

export const CURVES = ['P-256', 'P-384', 'P-521', 'P-256K'] as const;
const RSA_SIZES = [2048, 3072, 4096];
const OCT_SIZES = [128, 192, 256];

/** RSA, RSA-HSM → RSA etc. Undefined for an unknown kty. */
export function baseKty(kty: unknown): BaseKty | undefined {
  switch (kty) {
    case 'RSA':
    case 'RSA-HSM':
      return 'RSA';
    case 'EC':
    case 'EC-HSM':
      return 'EC';
    case 'oct':
    case 'oct-HSM':
      return 'oct';
    default:
      return undefined;
  }
}

const toNodeCrv = (crv: string): string => (crv === 'P-256K' ? 'secp256k1' : crv);
const fromNodeCrv = (crv: string): string => (crv === 'secp256k1' ? 'P-256K' : crv);

type KeygenSpec =
  | { type: 'rsa'; modulusLength: number; publicExponent: number }
  | { type: 'ec'; namedCurve: string }
  | { type: 'oct'; bytes: number };

function keygenSpec(kty: BaseKty, opts: { keySize?: number; publicExponent?: number; crv?: string }): KeygenSpec {
  if (kty === 'RSA') {
    const size = opts.keySize ?? 2048;
    if (!RSA_SIZES.includes(size)) throw badParameter(`Unsupported RSA key_size ${size}; use 2048, 3072 or 4096.`);
    const publicExponent = opts.publicExponent ?? 65537;
    if (!Number.isInteger(publicExponent) || publicExponent < 3 || publicExponent % 2 === 0) {
      throw badParameter(`Invalid public_exponent ${publicExponent}.`);
    }
    return { type: 'rsa', modulusLength: size, publicExponent };
  }
  if (kty === 'EC') {
    const crv = opts.crv ?? 'P-256';
    if (!(CURVES as readonly string[]).includes(crv)) throw badParameter(`Unsupported curve '${crv}'.`);
    return { type: 'ec', namedCurve: toNodeCrv(crv) };
  }
  const size = opts.keySize ?? 256;
  if (!OCT_SIZES.includes(size)) throw badParameter(`Unsupported oct key_size ${size}; use 128, 192 or 256.`);
  return { type: 'oct', bytes: size / 8 };
}

/** Async so large RSA keys do not block other requests. */
export async function generateKey(kty: BaseKty, opts: { keySize?: number; publicExponent?: number; crv?: string }): Promise<StoredJwk> {
  const spec = keygenSpec(kty, opts);
  if (spec.type === 'oct') return { kty: 'oct', k: randomBytes(spec.bytes).toString('base64url') };
  const { privateKey } =
    spec.type === 'rsa'
      ? await generateKeyPairAsync('rsa', { modulusLength: spec.modulusLength, publicExponent: spec.publicExponent })
      : await generateKeyPairAsync('ec', { namedCurve: spec.namedCurve });
  return exportJwk(privateKey);
}

/** Synchronous variant for rotations carried out during a (synchronous) clock walk. */
export function generateKeySync(kty: BaseKty, opts: { keySize?: number; publicExponent?: number; crv?: string }): StoredJwk {
  const spec = keygenSpec(kty, opts);
  if (spec.type === 'oct') return { kty: 'oct', k: randomBytes(spec.bytes).toString('base64url') };
  const { privateKey } =
    spec.type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: spec.modulusLength, publicExponent: spec.publicExponent })
      : generateKeyPairSync('ec', { namedCurve: spec.namedCurve });
  return exportJwk(privateKey);
}

/** The generation parameters of an existing key, so a rotation makes the same kind. */
export function keygenParams(jwk: StoredJwk): { keySize?: number; publicExponent?: number; crv?: string } {
  if (jwk.kty === 'RSA') {
    const e = Buffer.from(jwk.e ?? '', 'base64url');
    return { keySize: modBits(jwk), publicExponent: e.length ? e.readUIntBE(0, Math.min(e.length, 6)) : 65537 };
  }
  if (jwk.kty === 'EC') return { crv: jwk.crv ?? 'P-256' };
  return { keySize: Buffer.from(jwk.k ?? '', 'base64url').length * 8 };
}

function exportJwk(key: KeyObject): StoredJwk {
  const jwk = key.export({ format: 'jwk' }) as Record<string, string>;
  const out: StoredJwk = { kty: jwk.kty as BaseKty };
  for (const f of ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'x', 'y'] as const) {
    if (jwk[f]) out[f] = jwk[f];
  }
  if (jwk.crv) out.crv = fromNodeCrv(jwk.crv);
  return out;
}

/** Validates an imported private JWK (the SDK sends base64url fields) and normalises it. */
export function importJwk(raw: unknown): StoredJwk {
  if (!raw || typeof raw !== 'object') throw badParameter('The key (JWK) is required.');
  const jwk = raw as Record<string, unknown>;
  const kty = baseKty(jwk.kty);
  if (!kty) throw badParameter(`Unsupported kty '${String(jwk.kty)}'.`);
  const str = (f: string): string | undefined => {
    const v = jwk[f];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw badParameter(`JWK field '${f}' must be a base64url string.`);
    return Buffer.from(v, 'base64url').toString('base64url');
  };
  if (kty === 'oct') {
    const k = str('k');
    if (!k || !OCT_SIZES.includes(Buffer.from(k, 'base64url').length * 8)) {
      throw badParameter('An oct key needs k of 128, 192 or 256 bits.');
    }
    return { kty, k };
  }
  if (!str('d')) throw badParameter('The imported key must include its private part (d).');
  const candidate: Record<string, string> = { kty };
  for (const f of ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'x', 'y']) {
    const v = str(f);
    if (v) candidate[f] = v;
  }
  if (kty === 'EC') {
    const crv = jwk.crv;
    if (typeof crv !== 'string' || !(CURVES as readonly string[]).includes(crv)) {
      throw badParameter(`Unsupported curve '${String(crv)}'.`);
    }
    candidate.crv = toNodeCrv(crv);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: candidate, format: 'jwk' });
  } catch {
    throw badParameter('The imported key is not a valid private JWK.');
  }
  if (kty === 'RSA' && !RSA_SIZES.includes(key.asymmetricKeyDetails?.modulusLength ?? 0)) {
    throw badParameter('RSA keys must be 2048, 3072 or 4096 bits.');
  }
  return exportJwk(key);
}

/** The public part as Key Vault returns it (never d/p/q/dp/dq/qi/k). */
export function publicFields(jwk: StoredJwk): Record<string, string> {
  if (jwk.kty === 'RSA') return { n: jwk.n ?? '', e: jwk.e ?? '' };
  if (jwk.kty === 'EC') return { crv: jwk.crv ?? '', x: jwk.x ?? '', y: jwk.y ?? '' };
  return {};
}

function privateKeyObject(jwk: StoredJwk): KeyObject {
  const { crv, k: _k, ...rest } = jwk;
  return createPrivateKey({ key: { ...rest, ...(crv ? { crv: toNodeCrv(crv) } : {}) }, format: 'jwk' });
}

function publicKeyObject(jwk: StoredJwk): KeyObject {
  return createPublicKey(privateKeyObject(jwk));
}

function rsaBytes(jwk: StoredJwk): number {
  return Buffer.from(jwk.n ?? '', 'base64url').length;
}

// ---------------------------------------------------------------- signatures

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

function modBits(jwk: StoredJwk): number {
  const n = Buffer.from(jwk.n ?? '', 'base64url');
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  const top = n[i] ?? 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(top));
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

// ---------------------------------------------------------------- encryption

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
