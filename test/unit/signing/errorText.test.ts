/**
 * Key Vault failures of the signing life cycle reach HTTP answers with a fixed message
 * and only the failure's name, code and status; the SDK's text goes to logs only.
 */
import type { KeyVaultClients } from '../../../shared/adapters/keyVault/clients';
import { vaultKeys } from '../../../shared/adapters/keyVault/vaultKeys';
import { signingVault } from '../../../shared/services/signing/signingVault';
import { KeyturnError } from '../../../shared/errors';
import { errorResponse } from '../../../shared/http/problem';
import { SDK_ERROR_TEXT, recordingLog, sdkError, signingWorld } from './fakes';

/** A KeyClient whose every call fails the way the SDK does. */
function failingVault(): KeyVaultClients {
  const fail = async () => {
    throw sdkError();
  };
  const keyClient = {
    createRsaKey: fail,
    createEcKey: fail,
    updateKeyProperties: fail,
    getCryptographyClient: () => ({ sign: fail }),
  };
  return { keysAt: () => keyClient, checkedUrl: (url: string) => url } as unknown as KeyVaultClients;
}

/** The signing mapping on the real VaultKeys adapter, over a failing KeyClient. */
const failingSigningVault = () =>
  signingVault({ keys: vaultKeys(failingVault()), vaultAlias: 'local', vaultUrlOf: () => 'https://kv-prod.vault.azure.net', issuer: 'https://keyturn.test' });


const ref = { vault: 'local', name: 'keyturn-signing-1', version: 'v1' };

describe('Key Vault failures in the signing adapter and service', () => {
  test.each([
    ['create', (s: ReturnType<typeof signingVault>) => s.create({ name: 'keyturn-signing-1', keyType: 'RSA-2048', expiresAt: new Date(), state: 'next' })],
    ['update', (s: ReturnType<typeof signingVault>) => s.setState(ref, 'retired')],
    ['sign', (s: ReturnType<typeof signingVault>) => s.sign(ref, 'RS256', new Uint8Array([1]))],
  ])('When Key Vault fails a %s, then the error has a fixed message and only name/code/status, and the HTTP answer leaks no SDK text', async (_op, run) => {
    const store = failingSigningVault();
    const error = (await run(store).catch((e: unknown) => e)) as KeyturnError;
    expect(error).toBeInstanceOf(KeyturnError);
    expect(error.message).toMatch(/^Key Vault could not (create|update|sign with) a signing key; retry later$/);
    expect(error.details).toEqual({ name: 'RestError', code: 'ServiceUnavailable', statusCode: 503 });
    expect((error.cause as Error).message).toBe(SDK_ERROR_TEXT); // kept for logs
    const response = errorResponse(error);
    expect(response.status).toBe(503);
    expect(JSON.stringify(response.jsonBody)).not.toContain('AKV10032');
    expect(JSON.stringify(response.jsonBody)).not.toContain('vault.azure.net');
  });

  test('When creating a key fails during a rollover, then the caller sees a fixed message and the logs get the full text', async () => {
    const log = recordingLog();
    const world = signingWorld({ log });
    world.keys.create = async () => {
      throw Object.assign(new KeyturnError('DEPENDENCY_FAILED', 'Key Vault could not create a signing key; retry later', { name: 'RestError', statusCode: 503 }), {
        cause: new Error(SDK_ERROR_TEXT),
      });
    };
    const error = (await world.tokens().issue({ claims: { sub: 's', aud: 'a' }, expiresInSeconds: 60 }).catch((e: unknown) => e)) as KeyturnError;
    expect(error).toBeInstanceOf(KeyturnError);
    expect(error.message).toBe('Creating a signing key in Key Vault failed; retry later');
    expect(error.details).toEqual({ name: 'RestError', statusCode: 503 });
    expect(JSON.stringify(errorResponse(error).jsonBody)).not.toContain('AKV10032');
    expect(log.lines.some((l) => JSON.stringify(l.props).includes(SDK_ERROR_TEXT))).toBe(true);
  });
});
