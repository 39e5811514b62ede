/**
 * The anchored allow-list for vault URLs from requests: public Azure vaults only, plus
 * the local emulator in local mode; nothing that could send the app's token elsewhere.
 */
import { allowedVaultUrl, checkVaultUrl } from '../../shared/domain/vaultUrl';
import { ValidationError } from '../../shared/errors';
import { createKeyVaultClients, localCredential, LOCAL_APP_PRINCIPAL } from '../../shared/adapters/keyVault/clients';

const azure = { local: false };
const local = { local: true };
const refused = (url: string, options = azure) => 'refused' in checkVaultUrl(url, options);

describe('the vault URL allow-list', () => {
  test('When a URL names an Azure vault (with or without one object), then it passes in canonical form', () => {
    expect(checkVaultUrl('https://contoso-byok.vault.azure.net', azure)).toEqual({ vaultUrl: 'https://contoso-byok.vault.azure.net' });
    expect(checkVaultUrl('https://Contoso-BYOK.Vault.Azure.Net/', azure)).toEqual({ vaultUrl: 'https://contoso-byok.vault.azure.net' });
    expect(checkVaultUrl('https://kv1.vault.azure.net/keys/tenant-a/0123456789abcdef0123456789abcdef', azure)).toEqual({
      vaultUrl: 'https://kv1.vault.azure.net',
      object: { collection: 'keys', name: 'tenant-a', version: '0123456789abcdef0123456789abcdef' },
    });
    expect(checkVaultUrl('https://kv1.vault.azure.net/secrets/db', azure)).toMatchObject({ object: { collection: 'secrets', name: 'db' } });
  });

  test.each([
    ['another host', 'https://kv1.vault.azure.net.evil.example'],
    ['another domain', 'https://kv1.evil.example'],
    ['a suffix host', 'https://evil.example/kv1.vault.azure.net'],
    ['a port', 'https://kv1.vault.azure.net:443'],
    ['another port', 'https://kv1.vault.azure.net:8443'],
    ['user info', 'https://user:pass@kv1.vault.azure.net'],
    ['user info hiding the host', 'https://kv1.vault.azure.net@evil.example'],
    ['http', 'http://kv1.vault.azure.net'],
    ['a path', 'https://kv1.vault.azure.net/other'],
    ['a path beyond the object', 'https://kv1.vault.azure.net/keys/k/v1/sign'],
    ['a traversal', 'https://kv1.vault.azure.net/keys/../../x'],
    ['a query', 'https://kv1.vault.azure.net/?x=1'],
    ['a fragment', 'https://kv1.vault.azure.net/#x'],
    ['a name too short', 'https://kv.vault.azure.net'],
    ['a name too long', `https://${'a'.repeat(25)}.vault.azure.net`],
    ['a name starting with a digit', 'https://1kv.vault.azure.net'],
    ['a name ending with a hyphen', 'https://kv1-.vault.azure.net'],
    ['a name with a double hyphen', 'https://kv--1.vault.azure.net'],
    ['white space', ' https://kv1.vault.azure.net'],
    ['an emulator URL outside local mode', 'https://127.0.0.1:8443'],
    ['a localhost URL outside local mode', 'https://localhost:8445/keys/k'],
  ])('When a URL has %s, then it is refused', (_what, url) => {
    expect(refused(url)).toBe(true);
  });

  test('When in local mode, then only the emulator on 127.0.0.1/localhost over https with a port passes (and Azure vaults still do)', () => {
    expect(checkVaultUrl('https://127.0.0.1:8445', local)).toEqual({ vaultUrl: 'https://127.0.0.1:8445' });
    expect(checkVaultUrl('https://localhost:8443/keys/k/v1', local)).toMatchObject({ vaultUrl: 'https://localhost:8443', object: { name: 'k' } });
    expect(refused('https://kv1.vault.azure.net', local)).toBe(false);
    for (const url of ['http://127.0.0.1:8443', 'https://127.0.0.1', 'https://127.0.0.2:8443', 'https://127.0.0.1:99999', 'https://u@127.0.0.1:8443', 'https://127.0.0.1:8443/x']) {
      expect(refused(url, local)).toBe(true);
    }
  });

  test('When a refused URL comes from a request, then it is a 400 naming the field', () => {
    expect(() => allowedVaultUrl('https://evil.example', { local: false, field: 'keyVaultUrl' })).toThrow(ValidationError);
    expect(() => allowedVaultUrl('https://evil.example', { local: false, field: 'keyVaultUrl' })).toThrow(/^keyVaultUrl: /);
  });
});

describe('vault clients per URL', () => {
  const azureClients = () => createKeyVaultClients({ main: 'https://Keyturn-Main.vault.azure.net/' }, { credential: () => localCredential() });

  test('When a vault is asked for by alias or by URL, then both get the one client cached for that URL', () => {
    const clients = azureClients();
    expect(clients.vaultAliases()).toEqual(['main']);
    expect(clients.keysAt('https://keyturn-main.vault.azure.net')).toBe(clients.keys('MAIN'));
    expect(clients.keysAt('https://contoso.vault.azure.net/')).toBe(clients.keysAt('https://CONTOSO.vault.azure.net'));
    expect(clients.keysAt('https://contoso.vault.azure.net')).not.toBe(clients.keys('main'));
    expect(clients.secretsAt('https://contoso.vault.azure.net')).not.toBe(clients.keysAt('https://contoso.vault.azure.net'));
  });

  test('When a URL fails the allow-list, then no client is made for it (400 naming the field)', () => {
    const clients = azureClients();
    expect(() => clients.keysAt('https://attacker.example')).toThrow(ValidationError);
    expect(() => clients.secretsAt('https://127.0.0.1:8443')).toThrow(/local mode/);
    expect(() => clients.checkedUrl('http://contoso.vault.azure.net', 'vault')).toThrow(/^vault: /);
  });

  test('When in local mode, then emulator URLs pass and the local credential is an unsigned JWT naming keyturn-app (or the configured principal)', async () => {
    const clients = createKeyVaultClients({ local: 'https://127.0.0.1:8443' }, { emulatorCa: 'unused' });
    expect(clients.local).toBe(true);
    expect(clients.keysAt('https://127.0.0.1:8445')).toBe(clients.keysAt('https://127.0.0.1:8445/'));
    const claims = async (principal?: string) => {
      const { token } = (await localCredential(principal).getToken('https://vault.azure.net/.default'))!;
      const [header, payload, signature] = token.split('.');
      return { header: JSON.parse(Buffer.from(header!, 'base64url').toString()), payload: JSON.parse(Buffer.from(payload!, 'base64url').toString()), signature };
    };
    expect(await claims()).toEqual({ header: { alg: 'none', typ: 'JWT' }, payload: { oid: LOCAL_APP_PRINCIPAL }, signature: '' });
    expect((await claims('operator')).payload).toEqual({ oid: 'operator' });
    expect(LOCAL_APP_PRINCIPAL).toBe('00000000-0000-0000-0000-00000000a001');
  });
});
