/**
 * AES-256-GCM for key-set items: a random 96-bit nonce per encryption, the associated
 * data binding set uid, item id and key id. A failed open is CIPHERTEXT_INVALID, never
 * an error that could carry the value.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { type SealedValue, associatedData, ciphertextInvalid } from './keySet';

const TAG_BYTES = 16;

export function seal(dataKey: Uint8Array, binding: { setUid: string; itemId: string; keyId: string }, plaintext: Uint8Array): SealedValue {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData(binding.setUid, binding.itemId, binding.keyId), 'utf8'));
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { keyId: binding.keyId, nonce, sealed };
}

export function open(dataKey: Uint8Array, binding: { setUid: string; itemId: string }, value: SealedValue): Buffer {
  if (value.sealed.length < TAG_BYTES) throw ciphertextInvalid({ itemId: binding.itemId, keyId: value.keyId });
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, value.nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(associatedData(binding.setUid, binding.itemId, value.keyId), 'utf8'));
    decipher.setAuthTag(value.sealed.subarray(value.sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(value.sealed.subarray(0, value.sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw ciphertextInvalid({ itemId: binding.itemId, keyId: value.keyId });
  }
}

/** A fresh 256-bit data key (lives in memory only; only its wrapped form is stored). */
export const newDataKey = (): Buffer => randomBytes(32);
