/**
 * Verified identities for dual control, at the HTTP edge. In Azure they come only from
 * App Service authentication (`x-ms-client-principal-id`: the principal's stable object
 * id, not its display name), and an identity in the body is refused. On the local stack
 * there is no Easy Auth, so the body's (or query's) self-declared id is used — local
 * only, as the docs say. Anywhere else dual control cannot tell two people apart and is
 * refused (DUAL_CONTROL_UNAVAILABLE) rather than trusting a typed name.
 */
import { requesterSchema } from '../domain/signingKeys';
import { KeyturnError, ValidationError } from '../errors';

/** Set by App Service authentication (Easy Auth); trusted only with KEYTURN_TRUST_EASY_AUTH_HEADER. */
export const PRINCIPAL_ID_HEADER = 'x-ms-client-principal-id';

export interface IdentityOptions {
  /** KEYTURN_TRUST_EASY_AUTH_HEADER: the platform sets (and strips client copies of) the principal headers. */
  trustEasyAuthHeader: boolean;
  /** The local stack (Key Vault emulator): body identities are accepted. */
  localStack: boolean;
}

export interface VerifiedIdentity {
  id: string;
  source: 'easy-auth' | 'local-declared';
}

/**
 * The caller's identity for a dual-control step. `declared` is the body's (or query's)
 * identity under the name `field` (e.g. `requestedBy`, `approvedBy`).
 */
export function resolveIdentity(
  input: { principalId?: string | null; declared?: unknown; field: string },
  options: IdentityOptions,
): VerifiedIdentity {
  if (options.trustEasyAuthHeader) {
    if (input.declared !== undefined) {
      throw new ValidationError(input.field, `${input.field}: identities come from App Service authentication here; remove it from the request`);
    }
    const parsed = requesterSchema.safeParse(input.principalId ?? undefined);
    if (!parsed.success) {
      throw new KeyturnError('IDENTITY_REQUIRED', `Sign in through App Service authentication (${PRINCIPAL_ID_HEADER} is missing or invalid)`, { header: PRINCIPAL_ID_HEADER });
    }
    return { id: parsed.data, source: 'easy-auth' };
  }
  if (!options.localStack) {
    throw new KeyturnError(
      'DUAL_CONTROL_UNAVAILABLE',
      'Dual control needs verified identities: enable App Service authentication and set KEYTURN_TRUST_EASY_AUTH_HEADER=true',
      { settings: ['KEYTURN_TRUST_EASY_AUTH_HEADER'] },
    );
  }
  const parsed = requesterSchema.safeParse(input.declared);
  if (!parsed.success) throw new ValidationError(input.field, `${input.field}: required on the local stack (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return { id: parsed.data, source: 'local-declared' };
}
