/**
 * One `statusOf` for every SDK error shape Keyturn's adapters meet, and one "newest
 * version" rule shared by the renewal service and the Key Vault secret store.
 */
import { ErrorResponse } from '@azure/cosmos';
import { RestError } from '@azure/core-rest-pipeline';
import type { SecretClient } from '@azure/keyvault-secrets';
import { keyVaultSecretStore } from '../../../shared/adapters/renewal/keyVaultSecretStore';
import { statusOf } from '../../../shared/errors';
import { newestVersion } from '../../../shared/services/renewal/ports';

describe('statusOf', () => {
  test('RestError (Key Vault): statusCode, not its string code', () => {
    expect(statusOf(new RestError('not found', { code: 'SecretNotFound', statusCode: 404 }))).toBe(404);
  });
  test('Cosmos ErrorResponse: its numeric code is the status', () => {
    expect(statusOf(Object.assign(new ErrorResponse('precondition'), { code: 412 }))).toBe(412);
    expect(statusOf({ code: '409' })).toBe(409);
  });
  test('anything else has none', () => {
    for (const e of [new Error('x'), { code: 'ECONNRESET' }, null, undefined, 'boom', { statusCode: 'x' }]) expect(statusOf(e)).toBeUndefined();
  });
});

describe('newest version', () => {
  const v = (version: string, at?: number) => ({ name: 's', version, enabled: true, tags: {}, ...(at !== undefined ? { createdOn: new Date(at) } : {}) });
  test('by creation time, whatever the order listed', () => {
    expect(newestVersion([v('b', 2), v('c', 3), v('a', 1)])?.version).toBe('c');
    expect(newestVersion([v('x'), v('a', 1)])?.version).toBe('a');
    expect(newestVersion([])).toBeUndefined();
  });

  test('the Key Vault store: a disabled latest version (403) is found among the listed versions', async () => {
    async function* list() {
      yield { name: 's', version: 'two', enabled: false, createdOn: new Date(2000) };
      yield { name: 's', version: 'one', enabled: true, createdOn: new Date(1000) };
    }
    const client = {
      getSecret: async () => {
        throw new RestError('Operation get is not allowed on a disabled secret.', { code: 'Forbidden', statusCode: 403 });
      },
      listPropertiesOfSecretVersions: () => list(),
    } as unknown as SecretClient;
    await expect(keyVaultSecretStore(() => client).latest('local', 's')).resolves.toMatchObject({ version: 'two', enabled: false });
  });
});
