import { loadConfig } from '../../shared/config';
import { problemsOf, sample } from '../helpers/config';

describe('loadConfig', () => {
  test('the sample settings are complete and valid as they are', () => {
    const config = loadConfig(sample);
    expect(config.vaults).toEqual({ local: 'https://127.0.0.1:8443' });
    expect(config.signing.vault).toBe('local');
    expect(config.signing.jwksMaxAgeSeconds).toBeLessThanOrEqual(300);
    expect(config.renewal).toMatchObject({ windowDays: 30, maxAttempts: 5, defaultValidityDays: 365, defaultGraceDays: 7 });
  });

  test('one error names every missing or invalid setting', () => {
    const env = { ...sample, KEYTURN_VAULTS: 'not-a-vault', KEYTURN_COSMOS_ENDPOINT: undefined, KEYTURN_JWKS_MAX_AGE_SECONDS: '3600' };
    const problems = problemsOf(env);
    expect(problems).toEqual(expect.arrayContaining(['KEYTURN_VAULTS', 'KEYTURN_COSMOS_ENDPOINT', 'KEYTURN_JWKS_MAX_AGE_SECONDS']));
    expect(() => loadConfig(env)).toThrow(/KEYTURN_VAULTS.*KEYTURN_COSMOS_ENDPOINT|KEYTURN_COSMOS_ENDPOINT.*KEYTURN_VAULTS/);
  });

  test('empty strings count as unset, as in local.settings.json', () => {
    expect(problemsOf({ ...sample, KEYTURN_STORAGE_CONNECTION: '' })).toEqual(['KEYTURN_STORAGE_CONNECTION']);
  });

  test('vault keys are case-insensitive and URLs must be https', () => {
    expect(loadConfig({ ...sample, KEYTURN_VAULTS: 'Main=https://kv1.vault.azure.net/, b=https://kv2.vault.azure.net', KEYTURN_SIGNING_VAULT: 'main', KEYTURN_EVENT_VAULT_NAMES: undefined }).vaults).toEqual({
      main: 'https://kv1.vault.azure.net',
      b: 'https://kv2.vault.azure.net',
    });
    expect(problemsOf({ ...sample, KEYTURN_VAULTS: 'main=http://kv1.vault.azure.net' })).toEqual(['KEYTURN_VAULTS']);
  });

  test('the signing vault must be one of the vaults', () => {
    expect(problemsOf({ ...sample, KEYTURN_SIGNING_VAULT: 'elsewhere' })).toEqual(['KEYTURN_SIGNING_VAULT']);
  });

  test('numbers are checked', () => {
    expect(problemsOf({ ...sample, KEYTURN_ROTATION_MAX_ATTEMPTS: '0', KEYTURN_RENEWAL_WINDOW_DAYS: 'soon' })).toEqual(
      expect.arrayContaining(['KEYTURN_ROTATION_MAX_ATTEMPTS', 'KEYTURN_RENEWAL_WINDOW_DAYS']),
    );
  });
});

describe('loadConfig: test-only settings', () => {
  test('fault points are accepted against the local stack and refused elsewhere', () => {
    expect(loadConfig({ ...sample, KEYTURN_FAULTS: 'create:after*1' }).faults).toEqual(['create:after*1']);
    const azureLike = { ...sample, KEYTURN_KEYVAULT_CA_FILE: undefined, KEYTURN_CLOCK_URL: undefined };
    expect(loadConfig(azureLike).faults).toEqual([]);
    expect(problemsOf({ ...azureLike, KEYTURN_FAULTS: 'create:after' })).toEqual(['KEYTURN_FAULTS']);
  });
});

test('KEYTURN_RESUME_BUDGET_SECONDS: 240 by default, and it must end inside the Functions timeout', () => {
  expect(loadConfig({ ...sample, KEYTURN_RESUME_BUDGET_SECONDS: undefined }).jobs).toEqual({ resumeBudgetSeconds: 240 });
  expect(loadConfig({ ...sample, KEYTURN_RESUME_BUDGET_SECONDS: '120' }).jobs.resumeBudgetSeconds).toBe(120);
  for (const bad of ['0', '-5', '600', '1.5', 'soon']) expect(problemsOf({ ...sample, KEYTURN_RESUME_BUDGET_SECONDS: bad })).toEqual(['KEYTURN_RESUME_BUDGET_SECONDS']);
});
