/** The tenant-key routes' bodies and parameters (zod at the edge; each bad field is a 400 naming it). */
import { z } from 'zod';
import { lazySchema } from './lazySchema';
import { MAX_JWE_CHARS, MAX_PLAINTEXT_BYTES } from './tenantJwe';
import { TOPOLOGIES, tenantIdSchema } from './tenantKeys';

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export const tenantParamsSchema = lazySchema(() => z.object({ tenantId: tenantIdSchema }));

export const createTenantSchema = lazySchema(() => z.strictObject({
  tenantId: tenantIdSchema,
  topology: z.enum(TOPOLOGIES),
  /** BYOK: a key (no version) in the customer's vault. */
  keyUrl: z.string().url().max(2048).optional(),
  /** BYOK: the customer's Entra tenant, when it is not Keyturn's. */
  customerTenantId: z.string().regex(GUID, 'expected a GUID').optional(),
  adminContacts: z.array(z.string().email().max(254)).max(20).optional(),
  /** Principal (object) ids allowed to unprotect, when App Service authentication is trusted. */
  allowedCallers: z.array(z.string().regex(GUID, 'expected a principal object id (GUID)')).max(50).optional(),
  /** Self-declared when App Service authentication is not trusted (recorded as unverified). */
  requestedBy: z.string().optional(),
}));

export type CreateTenantBody = z.infer<typeof createTenantSchema>;

export const protectSchema = lazySchema(() => z.strictObject({
  plaintext: z
    .string()
    .max(Math.ceil(MAX_PLAINTEXT_BYTES / 3) * 4, `at most ${MAX_PLAINTEXT_BYTES} bytes (base64)`)
    .regex(STRICT_BASE64, 'expected base64'),
}));

export const unprotectSchema = lazySchema(() => z.strictObject({
  jwe: z.string().min(1).max(MAX_JWE_CHARS),
}));

/** The body limit of protect/unprotect: a maximal plaintext (or its JWE), base64 and JSON. */
export const CONTENT_BODY_BYTES = MAX_JWE_CHARS + 1024;

export const rekeySchema = lazySchema(() => z.strictObject({
  reason: z.string().trim().min(1).max(500),
  /** The version to replace: a retry naming it after it was replaced is a no-op. */
  fromKid: z.string().url().max(2048).optional(),
  /** BYOK: the customer's new key (a key URL without a version; the same onboarding checks). */
  keyUrl: z.string().url().max(2048).optional(),
  /** The version being replaced leaked: no changeover, it leaves the published keys at once. */
  compromised: z.boolean().optional(),
  requestedBy: z.string().optional(),
}));

export const revokeSchema = lazySchema(() => z.strictObject({
  /** Must equal the tenant id: a revoke makes all of the tenant's content unreadable. */
  confirm: z.string().max(63),
  reason: z.string().trim().min(1).max(500),
  requestedBy: z.string().optional(),
}));
