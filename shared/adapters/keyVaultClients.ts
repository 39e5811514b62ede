/**
 * The one place that builds Key Vault clients. In Azure: DefaultAzureCredential.
 * Against the local emulator (a CA file is configured): a static credential, the
 * challenge resource check disabled (127.0.0.1 can never pass it) and the emulator's
 * CA trusted by these clients only. Never NODE_TLS_REJECT_UNAUTHORIZED=0.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { notFound } from '../errors';

export interface KeyVaultClients {
  vaultKeys(): string[];
  vaultUrl(vaultKey: string): string;
  secrets(vaultKey: string): SecretClient;
  keys(vaultKey: string): KeyClient;
}

/** Any token is accepted by the emulator; the SDK still runs its challenge flow. */
export const emulatorCredential: TokenCredential = {
  getToken: async () => ({ token: 'keyturn-local', expiresOnTimestamp: Date.now() + 3600_000 }),
};

export function createKeyVaultClients(
  vaults: Record<string, string>,
  options: { emulatorCa?: string; credential?: TokenCredential },
): KeyVaultClients {
  const emulator = options.emulatorCa !== undefined;
  const credential = options.credential ?? (emulator ? emulatorCredential : new DefaultAzureCredential());
  // One options object per kind: agents are cached per tlsOptions identity, so clients share connections.
  const tlsOptions = emulator ? { ca: options.emulatorCa } : undefined;
  const clientOptions = () => ({
    ...(emulator ? { disableChallengeResourceVerification: true, tlsOptions } : {}),
    retryOptions: { maxRetries: 4 },
  });
  const secretClients = new Map<string, SecretClient>();
  const keyClients = new Map<string, KeyClient>();

  const vaultUrl = (vaultKey: string): string => {
    const url = vaults[vaultKey.toLowerCase()];
    if (!url) throw notFound(`Vault '${vaultKey}'`, { vault: vaultKey });
    return url;
  };
  return {
    vaultKeys: () => Object.keys(vaults),
    vaultUrl,
    secrets(vaultKey) {
      const key = vaultKey.toLowerCase();
      let client = secretClients.get(key);
      if (!client) {
        client = new SecretClient(vaultUrl(key), credential, clientOptions());
        secretClients.set(key, client);
      }
      return client;
    },
    keys(vaultKey) {
      const key = vaultKey.toLowerCase();
      let client = keyClients.get(key);
      if (!client) {
        client = new KeyClient(vaultUrl(key), credential, clientOptions());
        keyClients.set(key, client);
      }
      return client;
    },
  };
}
