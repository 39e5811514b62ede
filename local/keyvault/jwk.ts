/**
 * Key Vault key material as stored JWKs: types and curves, generation, import,
 * the public part Key Vault returns, and Node KeyObjects for the operations
 * (`signature.ts`, `cipher.ts`). Pure: no state, no I/O.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, generateKeyPairSync, KeyObject, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { badParameter } from './errors';

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

export function privateKeyObject(jwk: StoredJwk): KeyObject {
  const { crv, k: _k, ...rest } = jwk;
  return createPrivateKey({ key: { ...rest, ...(crv ? { crv: toNodeCrv(crv) } : {}) }, format: 'jwk' });
}

export function publicKeyObject(jwk: StoredJwk): KeyObject {
  return createPublicKey(privateKeyObject(jwk));
}

export function rsaBytes(jwk: StoredJwk): number {
  return Buffer.from(jwk.n ?? '', 'base64url').length;
}

export function modBits(jwk: StoredJwk): number {
  const n = Buffer.from(jwk.n ?? '', 'base64url');
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  const top = n[i] ?? 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(top));
}
