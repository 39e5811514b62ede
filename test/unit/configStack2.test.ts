/** The settings of the local stack part 2: customer vaults, the job queue, the ARM endpoint. */
import { loadConfig } from '../../shared/config';
import { problemsOf, sample } from '../helpers/config';

const azureLike = { ...sample, KEYTURN_KEYVAULT_CA_FILE: undefined, KEYTURN_CLOCK_URL: undefined };

describe('KEYTURN_CUSTOMER_VAULTS', () => {
  test('names Key Vaults by name, canonical URLs; empty means none', () => {
    expect(loadConfig(sample).customerVaults).toEqual({});
    expect(loadConfig({ ...sample, KEYTURN_CUSTOMER_VAULTS: 'Contoso-BYOK=https://127.0.0.1:8445/' }).customerVaults).toEqual({ 'contoso-byok': 'https://127.0.0.1:8445' });
    expect(loadConfig({ ...azureLike, KEYTURN_CUSTOMER_VAULTS: 'contoso-byok=https://Contoso-Byok.vault.azure.net' }).customerVaults).toEqual({
      'contoso-byok': 'https://contoso-byok.vault.azure.net',
    });
  });

  test('URLs must pass the vault allow-list: the emulator only in local mode, no other hosts', () => {
    expect(problemsOf({ ...azureLike, KEYTURN_CUSTOMER_VAULTS: 'contoso-byok=https://127.0.0.1:8445' })).toEqual(['KEYTURN_CUSTOMER_VAULTS']);
    expect(problemsOf({ ...sample, KEYTURN_CUSTOMER_VAULTS: 'contoso-byok=https://evil.example.com' })).toEqual(['KEYTURN_CUSTOMER_VAULTS']);
    expect(problemsOf({ ...sample, KEYTURN_CUSTOMER_VAULTS: 'contoso-byok=http://127.0.0.1:8445' })).toEqual(['KEYTURN_CUSTOMER_VAULTS']);
    expect(problemsOf({ ...sample, KEYTURN_CUSTOMER_VAULTS: 'a=https://127.0.0.1:8445' })).toEqual(['KEYTURN_CUSTOMER_VAULTS']);
    expect(problemsOf({ ...sample, KEYTURN_CUSTOMER_VAULTS: 'x1y=https://127.0.0.1:1,x1y=https://127.0.0.1:2' })).toEqual(['KEYTURN_CUSTOMER_VAULTS']);
    // A customer vault is not one of Keyturn's own.
    expect(problemsOf({ ...sample, KEYTURN_VAULTS: 'local=https://127.0.0.1:8443,byok=https://127.0.0.1:8445', KEYTURN_CUSTOMER_VAULTS: 'byok=https://127.0.0.1:8445' })).toEqual(['KEYTURN_CUSTOMER_VAULTS']);
  });
});

describe('KEYTURN_QUEUE', () => {
  test('a connection string locally, the queue service URI in Azure, not both', () => {
    expect(loadConfig(sample).queue).toEqual({ connectionString: 'UseDevelopmentStorage=true' });
    expect(loadConfig({ ...azureLike, KEYTURN_QUEUE: undefined, KEYTURN_QUEUE__queueServiceUri: 'https://st1.queue.core.windows.net/' }).queue).toEqual({
      queueServiceUri: 'https://st1.queue.core.windows.net',
    });
    expect(loadConfig({ ...sample, KEYTURN_QUEUE: undefined }).queue).toEqual({});
    expect(problemsOf({ ...sample, KEYTURN_QUEUE__queueServiceUri: 'https://st1.queue.core.windows.net' })).toEqual(['KEYTURN_QUEUE']);
    expect(problemsOf({ ...sample, KEYTURN_QUEUE: undefined, KEYTURN_QUEUE__queueServiceUri: 'http://st1.queue.core.windows.net' })).toEqual(['KEYTURN_QUEUE__queueServiceUri']);
  });
});

describe('KEYTURN_ARM_ENDPOINT', () => {
  test('defaults to management.azure.com; https origins only', () => {
    expect(loadConfig({ ...azureLike, KEYTURN_ARM_ENDPOINT: undefined, KEYTURN_ARM_CA_FILE: undefined }).arm).toEqual({ endpoint: 'https://management.azure.com', caFile: undefined });
    expect(loadConfig(sample).arm).toEqual({ endpoint: 'https://127.0.0.1:8446', caFile: '.keyturn/keyvault/ca.pem' });
    expect(problemsOf({ ...sample, KEYTURN_ARM_ENDPOINT: 'http://127.0.0.1:8446' })).toEqual(['KEYTURN_ARM_ENDPOINT']);
    expect(problemsOf({ ...sample, KEYTURN_ARM_ENDPOINT: 'https://management.azure.com/x?y' })).toEqual(['KEYTURN_ARM_ENDPOINT']);
  });
});
