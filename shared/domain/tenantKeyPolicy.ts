/**
 * The key policy every key creation consults (tenant keys now; signing keys and
 * key-encryption keys as they adopt it): a creation uses the larger of its configured
 * size and the policy's minimum, so raising the minimum never breaks a timer that was
 * configured with a smaller size. Stored and versioned; the default applies until a
 * policy is stored (the incident playbooks raise it).
 */
import { z } from 'zod';
import { lazySchema } from './lazySchema';
import { invalidTransition } from '../errors';

/** The RSA sizes Key Vault creates and imports. */
export const RSA_SIZES = [2048, 3072, 4096] as const;
export type RsaSize = (typeof RSA_SIZES)[number];

export const keyPolicySchema = lazySchema(() => z.strictObject({
  version: z.number().int().positive(),
  rsaMinBits: z.number().int().min(2048).max(4096),
  /** JOSE algorithm names no key creation or content may use. */
  forbiddenAlgorithms: z.array(z.string().min(1).max(32)).max(32),
}));

export type KeyPolicy = z.infer<typeof keyPolicySchema>;

export const DEFAULT_KEY_POLICY: KeyPolicy = { version: 1, rsaMinBits: 2048, forbiddenAlgorithms: ['RSA1_5'] };

/** The size a creation uses: max(configured, policy minimum), rounded up to a size Key Vault supports. */
export function rsaBitsFor(configured: number, policy: KeyPolicy): RsaSize {
  const wanted = Math.max(configured, policy.rsaMinBits);
  const size = RSA_SIZES.find((s) => s >= wanted);
  if (size === undefined) throw invalidTransition(`the key policy asks for RSA ${wanted} bits; Key Vault creates at most ${RSA_SIZES.at(-1)}`, { rsaMinBits: policy.rsaMinBits });
  return size;
}

/** True when the policy forbids `alg` (content, wrapping or signing). */
export const isForbidden = (alg: string, policy: KeyPolicy): boolean => policy.forbiddenAlgorithms.includes(alg);
