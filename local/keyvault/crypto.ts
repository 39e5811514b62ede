/**
 * Pure cryptographic operations over stored JWKs, one module per concern: key
 * material (`jwk.ts`), signatures over a digest (`signature.ts`), encryption and key
 * wrapping (`cipher.ts`). No state, no I/O. This module is their public face.
 */
export { type BaseKty, CURVES, type StoredJwk, baseKty, generateKey, generateKeySync, importJwk, keygenParams, publicFields } from './jwk';
export { sign, verify } from './signature';
export { type CipherInput, type CipherOutput, cipher } from './cipher';
