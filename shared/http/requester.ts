/**
 * Who is asking, at the HTTP edge: App Service authentication (Easy Auth) sets
 * `x-ms-client-principal-name` and strips client copies of it, so the header is trusted
 * only where KEYTURN_TRUST_EASY_AUTH_HEADER says the platform sets it (verified);
 * otherwise the body's self-declared name is recorded (unverified). Both are bounded
 * printable text; a bad one is a 400 naming the header or field.
 */
import { requesterSchema } from '../domain/signingKeys';
import { ValidationError } from '../errors';
import type { Logger } from '../ports';

/** Set by App Service authentication (Easy Auth); trusted only with KEYTURN_TRUST_EASY_AUTH_HEADER. */
export const PRINCIPAL_NAME_HEADER = 'x-ms-client-principal-name';

export interface Requester {
  requestedBy: string;
  /** True when the platform vouched for `requestedBy`. */
  requestedByVerified: boolean;
}

/** The platform's principal when it is trusted and present, else the self-declared name (unverified), else `unknown`. */
export function resolveRequester(
  input: {
    /** The raw `x-ms-client-principal-name` header, if any. */
    principalName?: string | null;
    /** Self-declared in the body. */
    requestedBy?: string;
  },
  options: { trustEasyAuthHeader: boolean; log?: Logger },
): Requester {
  if (input.principalName != null && options.trustEasyAuthHeader) {
    const parsed = requesterSchema.safeParse(input.principalName);
    if (!parsed.success) {
      throw new ValidationError(PRINCIPAL_NAME_HEADER, `${PRINCIPAL_NAME_HEADER}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    }
    return { requestedBy: parsed.data, requestedByVerified: true };
  }
  if (input.principalName != null) {
    options.log?.warn(`${PRINCIPAL_NAME_HEADER} ignored: KEYTURN_TRUST_EASY_AUTH_HEADER is off`, {});
  }
  const parsed = requesterSchema.optional().safeParse(input.requestedBy);
  if (!parsed.success) throw new ValidationError('requestedBy', `requestedBy: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return { requestedBy: parsed.data ?? 'unknown', requestedByVerified: false };
}
