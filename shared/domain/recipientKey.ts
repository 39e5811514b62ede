/**
 * A recipient's RSA public key for an export (tenant keys, key sets): PEM SPKI only, RSA
 * only, at least `minBits`. The SHA-256 of its DER encoding is what a second person
 * approves, so both compare the same bytes whatever the PEM's line breaks.
 */
import { type KeyObject, createHash, createPublicKey } from 'node:crypto';
import { ValidationError } from '../errors';

export interface RecipientKey {
  key: KeyObject;
  bits: number;
  /** SHA-256 (hex, lowercase) of the SPKI DER. */
  sha256: string;
}

const PEM_SPKI = /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/;

/** Parses and checks a recipient key; every refusal is a ValidationError naming `field`. */
export function parseRecipientKey(pem: unknown, field: string, minBits = 3072): RecipientKey {
  if (typeof pem !== 'string' || pem.length > 16_384 || !PEM_SPKI.test(pem.trim())) {
    throw new ValidationError(field, `${field}: must be an RSA public key as PEM SPKI ("-----BEGIN PUBLIC KEY-----")`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem.trim(), format: 'pem' });
  } catch {
    throw new ValidationError(field, `${field}: not a readable PEM public key`);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new ValidationError(field, `${field}: must be an RSA key (got ${key.asymmetricKeyType ?? 'unknown'})`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < minBits) throw new ValidationError(field, `${field}: RSA key of ${bits} bits; at least ${minBits} are required`);
  const der = key.export({ format: 'der', type: 'spki' });
  return { key, bits, sha256: createHash('sha256').update(der).digest('hex') };
}
