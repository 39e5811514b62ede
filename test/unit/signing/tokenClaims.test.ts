import { tokenRequestSchema } from '../../../shared/domain/tokenClaims';
import { toValidationError } from '../../../shared/http/problem';

const schema = tokenRequestSchema(3600);

function fieldOf(body: unknown): string | undefined {
  const parsed = schema.safeParse(body);
  return parsed.success ? undefined : toValidationError(parsed.error).field;
}

describe('token request validation', () => {
  test('When the claims have their standard types, then they pass and the lifetime defaults to the cap', () => {
    const parsed = schema.parse({
      claims: { sub: 'svc-1', aud: ['api://a', 'api://b'], roles: ['reader'], tenant: { id: 7, tags: ['x'] }, premium: true },
    });
    expect(parsed).toEqual({
      claims: { sub: 'svc-1', aud: ['api://a', 'api://b'], roles: ['reader'], tenant: { id: 7, tags: ['x'] }, premium: true },
      expiresInSeconds: 3600,
    });
  });

  test.each([
    ['a registered claim of the wrong type', 'claims.sub', { claims: { sub: 42, aud: 'a' } }],
    ['an audience list with a number', 'claims.aud', { claims: { sub: 's', aud: ['a', 1] }, expiresInSeconds: 60 }],
    ['nbf that is not a NumericDate', 'claims.nbf', { claims: { sub: 's', aud: 'a', nbf: 'soon' } }],
    ['a claim Keyturn sets', 'claims.exp', { claims: { sub: 's', aud: 'a', exp: 1 } }],
    ['an unknown claim type (null)', 'claims.extra', { claims: { sub: 's', aud: 'a', extra: null } }],
    ['an unknown claim type nested in an object', 'claims.extra', { claims: { sub: 's', aud: 'a', extra: { deep: [null] } } }],
    ['a missing subject', 'claims.sub', { claims: { aud: 'a' } }],
    ['a lifetime over the cap', 'expiresInSeconds', { claims: { sub: 's', aud: 'a' }, expiresInSeconds: 3601 }],
    ['a fractional lifetime', 'expiresInSeconds', { claims: { sub: 's', aud: 'a' }, expiresInSeconds: 1.5 }],
    ['an unknown top-level field', 'role', { claims: { sub: 's', aud: 'a' }, role: 'admin' }],
    ['no claims at all', 'claims', {}],
  ])('When the body has %s, then the error names %s', (_what, field, body) => {
    expect(fieldOf(body)).toBe(field);
  });

  test('When the lifetime is over the cap, then the message says what the cap is', () => {
    const parsed = schema.safeParse({ claims: { sub: 's', aud: 'a' }, expiresInSeconds: 7200 });
    expect(parsed.success ? '' : toValidationError(parsed.error).message).toContain('at most 3600');
  });
});
