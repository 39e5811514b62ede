import { HttpRequest } from '@azure/functions';
import { z } from 'zod';
import { KeyturnError, ValidationError } from '../../shared/errors';
import { errorResponse, httpHandler, readJsonBody } from '../../shared/http/problem';

const body = (text: string) => new HttpRequest({ method: 'POST', url: 'http://localhost/api/x', body: { string: text } });
const schema = z.object({ reason: z.string().min(1), nested: z.object({ n: z.number() }).optional() }).strict();

describe('HTTP problem mapping', () => {
  test('validation errors are 400 problems naming the field', async () => {
    await expect(readJsonBody(body('{"reason": 5}'), schema)).rejects.toMatchObject({ field: 'reason' });
    await expect(readJsonBody(body('{"reason":"x","nested":{"n":"1"}}'), schema)).rejects.toMatchObject({ field: 'nested.n' });
    await expect(readJsonBody(body('{not json'), schema)).rejects.toMatchObject({ field: '(body)' });
    await expect(readJsonBody(body(`{"reason":"${'a'.repeat(70_000)}"}`), schema)).rejects.toMatchObject({ field: '(body)' });
    const response = errorResponse(new ValidationError('reason', 'reason: required'));
    expect(response.status).toBe(400);
    expect(response.jsonBody).toMatchObject({ code: 'VALIDATION_FAILED', field: 'reason' });
  });

  test('domain codes map to their status; unknown errors are a 500 without internals', async () => {
    expect(errorResponse(new KeyturnError('ROTATION_IN_FLIGHT', 'busy', { rotationId: 'r1' })).status).toBe(409);
    expect(errorResponse(new KeyturnError('NOT_FOUND', 'gone')).status).toBe(404);
    const logged: string[] = [];
    const handler = httpHandler(async (_req: unknown, _ctx: unknown) => {
      throw new Error('connection string AccountKey=abc leaked?');
    });
    const response = await handler({}, { error: (m: string) => logged.push(m) });
    expect(response.status).toBe(500);
    expect(JSON.stringify(response.jsonBody)).not.toContain('AccountKey');
    expect(logged).toHaveLength(1);
  });

  test('a dependency failure is a 503 with Retry-After, not a 500, and leaks no SDK text', () => {
    const restError = Object.assign(new Error('Operation returned an invalid status code; x-ms-request-id abc'), { name: 'RestError', statusCode: 503 });
    const cosmosError = Object.assign(new Error('Request rate is large'), { code: 429 });
    const network = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8081'), { code: 'ECONNREFUSED' });
    for (const e of [restError, cosmosError, network]) {
      const response = errorResponse(e);
      expect(response.status).toBe(503);
      expect(response.headers).toMatchObject({ 'retry-after': '5' });
      expect(JSON.stringify(response.jsonBody)).not.toMatch(/request-id|ECONNREFUSED|rate is large/);
    }
    expect(errorResponse(new TypeError('x is undefined')).status).toBe(500);
  });

  test('identity and timeout failures are dependency failures too', () => {
    for (const e of [
      Object.assign(new Error('ManagedIdentityCredential: no response'), { name: 'CredentialUnavailableError' }),
      Object.assign(new Error('timed out'), { code: 'TimeoutError' }),
      Object.assign(new Error('aborted'), { name: 'AbortError' }),
    ]) {
      expect(errorResponse(e).status).toBe(503);
    }
  });

  test('context in details never replaces the problem code, and every 503 has Retry-After', () => {
    const response = errorResponse(new KeyturnError('DEPENDENCY_FAILED', 'Key Vault could not sign', { code: 'ServiceUnavailable', status: 418 }));
    expect(response.status).toBe(503);
    expect(response.jsonBody).toMatchObject({ code: 'DEPENDENCY_FAILED', status: 503 });
    expect(response.headers).toMatchObject({ 'retry-after': '5' });
  });
});
