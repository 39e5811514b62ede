/**
 * `symmetric`: a 256-bit random key, base64. It exists only as a Key Vault secret, so
 * there is nothing at a provider to find or remove; retiring disables the old version.
 */
import { randomBytes } from 'node:crypto';
import { KeyturnError } from '../../errors';
import { type CredentialProvider, SecretValue } from '../../services/renewal/ports';

export const SYMMETRIC_KEY_BYTES = 32;

export const symmetricProvider: CredentialProvider = {
  kind: 'symmetric',
  async create() {
    return { value: new SecretValue(randomBytes(SYMMETRIC_KEY_BYTES).toString('base64')) };
  },
  async findTagged() {
    return [];
  },
  async verify(_ctx, value) {
    const raw = value.reveal();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw) || Buffer.from(raw, 'base64').length !== SYMMETRIC_KEY_BYTES) {
      throw new KeyturnError('VERIFY_MISMATCH', `the pending value is not a ${SYMMETRIC_KEY_BYTES * 8}-bit base64 key`);
    }
  },
  async remove() {},
};
