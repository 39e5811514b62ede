/**
 * What a caller may ask `/api/tokens` to sign: registered claims with their standard
 * types, custom claims as JSON values, and a lifetime capped by the settings. `iss`,
 * `iat` and `exp` belong to Keyturn and are refused.
 */
import { z } from 'zod';
import { lazySchema } from './lazySchema';

export type ClaimValue = string | number | boolean | ClaimValue[] | { [name: string]: ClaimValue };

/**
 * zod copies a record key by assignment, so a `__proto__` key would vanish unvalidated (or
 * swap the prototype): it is refused before a record schema sees it.
 */
const noPrototypeKey = lazySchema(() =>
  z.unknown().superRefine((raw, ctx) => {
    if (typeof raw === 'object' && raw !== null && Object.hasOwn(raw, '__proto__')) {
      ctx.addIssue({ code: 'custom', path: ['__proto__'], message: "'__proto__' is not a valid name" });
    }
  }),
);

/** JSON values except null: an absent claim is the way to say "no value". */
const claimValue: z.ZodType<ClaimValue> = lazySchema(() =>
  z.lazy(() =>
    z.union([z.string(), z.number(), z.boolean(), z.array(claimValue), noPrototypeKey.pipe(z.record(z.string(), claimValue))], {
      error: 'unsupported claim type: use a string, number, boolean, array or object',
    }),
  ),
);

const numericDate = lazySchema(() => z.number().int().nonnegative());
const text = lazySchema(() => z.string().min(1).max(2048));

/** RFC 7519 §4.1 and the OpenID Connect claims callers commonly set, with their types. */
const registered = lazySchema(() => ({
  sub: text,
  aud: z.union([text, z.array(text).min(1)]),
  nbf: numericDate,
  jti: text,
  nonce: text,
  azp: text,
  auth_time: numericDate,
  acr: text,
  amr: z.array(text),
  scope: text,
  name: text,
  email: text,
  email_verified: z.boolean(),
  tid: text,
  oid: text,
  roles: z.array(text),
  groups: z.array(text),
} satisfies Record<string, z.ZodType>));

const KEYTURN_OWNED = ['iss', 'iat', 'exp'] as const;

const claimsSchema = lazySchema(() =>
  z
    .record(z.string().min(1).max(256), z.unknown())
    .superRefine((claims, ctx) => {
      for (const [name, value] of Object.entries(claims)) {
        if ((KEYTURN_OWNED as readonly string[]).includes(name)) {
          ctx.addIssue({ code: 'custom', path: [name], message: `'${name}' is set by Keyturn` });
          continue;
        }
        // Own keys only: a claim named `toString` or `constructor` is a custom claim, not Object.prototype's.
        const schema: z.ZodType = Object.hasOwn(registered, name) ? (registered as Record<string, z.ZodType>)[name]! : claimValue;
        const parsed = schema.safeParse(value);
        for (const issue of parsed.error?.issues ?? []) {
          ctx.addIssue({ code: 'custom', path: [name, ...issue.path], message: issue.message });
        }
      }
      for (const required of ['sub', 'aud'] as const) {
        if (!Object.hasOwn(claims, required)) ctx.addIssue({ code: 'custom', path: [required], message: `'${required}' is required` });
      }
    })
    .transform((claims) => claims as TokenClaims),
);

export interface TokenClaims {
  sub: string;
  aud: string | string[];
  [name: string]: ClaimValue;
}

export interface TokenRequest {
  claims: TokenClaims;
  expiresInSeconds: number;
}

const TOP_LEVEL = ['claims', 'expiresInSeconds'];

/** The `/api/tokens` body; `maxLifetimeSeconds` comes from KEYTURN_TOKEN_MAX_LIFETIME_MINUTES. */
export function tokenRequestSchema(maxLifetimeSeconds: number): z.ZodType<TokenRequest> {
  return noPrototypeKey.pipe(
    z
      .looseObject({
        claims: noPrototypeKey.pipe(claimsSchema),
        expiresInSeconds: z
          .number()
          .int()
          .positive()
          .max(maxLifetimeSeconds, { error: `must be at most ${maxLifetimeSeconds} (the longest token lifetime)` })
          .default(maxLifetimeSeconds),
      })
      .superRefine((body, ctx) => {
        for (const key of Object.keys(body)) {
          if (!TOP_LEVEL.includes(key)) {
            ctx.addIssue({ code: 'custom', path: [key], message: `unknown field; put custom claims under 'claims'` });
          }
        }
      })
      .transform(({ claims, expiresInSeconds }) => ({ claims, expiresInSeconds })),
  );
}
