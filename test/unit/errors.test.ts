/** The one error model: known codes only, SDK facts read in one place, a 403 is not a 503. */
import { ERROR_CODES, KeyturnError, ConcurrencyConflict, ValidationError, dependencyError, errorFacts, failureKind } from '../../shared/errors';
import { errorResponse, problem, statusOfCode } from '../../shared/http/problem';
import { ConfigError, loadConfig } from '../../shared/config';
import { InjectedFault } from '../../shared/adapters/faults';
import { RotationStateError } from '../../shared/domain/rotation';
import { graphError } from '../../shared/adapters/renewal/graphAppPasswordProvider';
import { symmetricProvider } from '../../shared/adapters/renewal/symmetricProvider';
import { SecretValue } from '../../shared/services/renewal/ports';

const rest = (statusCode: number, code = 'Forbidden') => Object.assign(new Error(`status ${statusCode} body: {"secret":"x"}`), { name: 'RestError', statusCode, code });

describe('one error model', () => {
  test('every code has a status, and problem() refuses a code it does not know', () => {
    for (const code of ERROR_CODES) expect(statusOfCode(code)).toBeGreaterThanOrEqual(400);
    expect(() => problem('NO_SUCH_CODE' as never, 'x')).toThrow(/unknown error code/);
  });

  test('every error Keyturn raises is a KeyturnError with a known code', () => {
    const errors = [
      new ValidationError('f', 'bad'),
      new ConcurrencyConflict('exists', 'id'),
      new InjectedFault('create:before'),
      new RotationStateError('no'),
      new ConfigError([{ setting: 'X', message: 'bad' }]),
    ];
    for (const e of errors) {
      expect(e).toBeInstanceOf(KeyturnError);
      expect(ERROR_CODES).toContain((e as KeyturnError).code);
    }
  });

  test('a Key Vault or ARM 401/403 is access denied (403), not a dependency outage (503)', () => {
    expect(failureKind(rest(403))).toBe('access-denied');
    expect(failureKind(rest(401, 'Unauthorized'))).toBe('access-denied');
    expect(failureKind(Object.assign(new Error('x'), { code: 403 }))).toBe('access-denied'); // Cosmos shape
    const denied = errorResponse(rest(403));
    expect(denied.status).toBe(403);
    expect(denied.jsonBody).toMatchObject({ code: 'ACCESS_DENIED' });
    expect(JSON.stringify(denied.jsonBody)).not.toContain('secret');
    const down = errorResponse(rest(503, 'ServiceUnavailable'));
    expect(down.status).toBe(503);
    expect(down.headers).toMatchObject({ 'retry-after': '5' });
  });

  test('a dependency error keeps only name, code and status, and tells denied from down', () => {
    const denied = dependencyError('Key Vault could not sign; retry later', rest(403));
    expect(denied.code).toBe('ACCESS_DENIED');
    expect(denied.details).toEqual({ name: 'RestError', code: 'Forbidden', statusCode: 403 });
    expect(dependencyError('x', rest(429, 'Throttled')).code).toBe('DEPENDENCY_FAILED');
    expect(errorFacts(graphError(404, 'Request_ResourceNotFound', 'get application'))).toEqual({
      name: 'GraphError',
      code: 'Request_ResourceNotFound',
      statusCode: 404,
      kind: 'not-found',
    });
  });

  test('provider verify failures are coded, so a rotation can tell "wrong value" from "not yet replicated"', async () => {
    const ctx = { vault: 'v', name: 'n', rotationId: 'r', credential: { provider: 'symmetric' as const } };
    const failure = await symmetricProvider.verify(ctx, new SecretValue('not-a-key'), undefined, new Date()).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'VERIFY_MISMATCH' });
    expect(errorFacts(failure)).toMatchObject({ name: 'KeyturnError', code: 'VERIFY_MISMATCH', kind: 'keyturn' });
  });

  test('settings rules across fields are reported together with per-setting problems', () => {
    const env = {
      KEYTURN_VAULTS: 'main=https://main.vault.azure.net',
      KEYTURN_SIGNING_VAULT: 'other',
      KEYTURN_EVENT_VAULT_NAMES: 'x=nowhere',
      KEYTURN_FAULTS: 'create:before',
      KEYTURN_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
      KEYTURN_EVENTGRID_ENDPOINT: 'https://topic.example',
      KEYTURN_ISSUER: 'https://issuer.example',
      KEYTURN_JWKS_URI: 'https://issuer.example/jwks',
      // KEYTURN_COSMOS_ENDPOINT missing: a per-setting problem
    };
    const e = (() => {
      try {
        loadConfig(env);
      } catch (thrown) {
        return thrown as ConfigError;
      }
      throw new Error('loadConfig accepted bad settings');
    })();
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.problems.map((p) => p.setting).sort()).toEqual(
      ['KEYTURN_COSMOS_ENDPOINT', 'KEYTURN_EVENT_VAULT_NAMES', 'KEYTURN_FAULTS', 'KEYTURN_SIGNING_VAULT'].sort(),
    );
  });
});
