/** Request shapes of the key-set routes (zod at the edge; 400 naming the field). */
import { z } from 'zod';
import { idSchema } from './keySet';

export const setParamsSchema = z.object({ set: idSchema });
export const itemParamsSchema = z.object({ set: idSchema, itemId: idSchema });
export const keyParamsSchema = z.object({ set: idSchema, keyId: z.string().regex(/^k[0-9]{1,9}$/, 'expected a key id like k1') });

export const createSetSchema = z.strictObject({ kekUrl: z.string().min(1).max(2048).optional() });

/** The value's byte limit is checked on its UTF-8 bytes (`valueBytes`); this bounds the characters. */
export const putItemSchema = z.strictObject({
  value: z.string().min(1).max(16 * 1024),
  owner: z.string().min(1).max(256).regex(/^[^\u0000-\u001f\u007f]+$/, 'expected printable text'),
});

export const LIST_TOP = { min: 1, max: 1000, default: 100 } as const;

export const listItemsQuerySchema = z.object({
  top: z
    .string()
    .regex(/^\d{1,4}$/, `expected an integer from ${LIST_TOP.min} to ${LIST_TOP.max}`)
    .transform(Number)
    .pipe(z.number().int().min(LIST_TOP.min).max(LIST_TOP.max))
    .optional(),
  continuationToken: z.string().min(1).max(400).optional(),
});

export const emptySchema = z.strictObject({});

export const reencryptSchema = z.strictObject({ batchSize: z.number().int().min(1).max(1000).default(100) });

export const exportParamsSchema = z.object({ set: idSchema, exportId: z.string().uuid('expected an export id') });

/** Identities are resolved at the edge (`resolveIdentity`): declared ones only on the local stack. */
export const exportRequestSchema = z.strictObject({
  recipientPublicKey: z.string().min(1).max(16_384),
  reason: z.string().min(1).max(500),
  requestedBy: z.unknown().optional(),
});

export const exportApproveSchema = z.strictObject({
  publicKeySha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected the SHA-256 (hex) of the recipient key'),
  approvedBy: z.unknown().optional(),
});

export const importSchema = z.strictObject({
  keys: z
    .array(z.strictObject({ keyId: z.string().regex(/^k[0-9]{1,9}$/, 'expected a key id like k1'), wrapped: z.string().regex(/^[A-Za-z0-9+/_-]{16,2048}={0,2}$/, 'expected base64') }))
    .min(1)
    .max(1000),
});

export const abandonSchema = z.strictObject({
  confirm: z.string().min(1).max(128),
  reason: z.string().min(1).max(500),
  batchSize: z.number().int().min(1).max(1000).default(100),
});
