/**
 * The one place that builds Key Vault clients. In Azure: the app's managed identity.
 * Against the local emulator (a CA file is configured): a static credential, the
 * challenge resource check disabled (127.0.0.1 can never pass it) and the emulator's
 * CA trusted by these clients only. Never NODE_TLS_REJECT_UNAUTHORIZED=0.
 */
import type { TokenCredential } from '@azure/identity';
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
  getToken: async () => ({ token: 'eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJvaWQiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMGEwMDEifQ.', expiresOnTimestamp: Date.now() + 3600_000 }),
};

/** The part of core-rest-pipeline's PipelinePolicy this module needs (no extra dependency). */
export interface RequestPolicy {
  name: string;
  sendRequest(request: unknown, next: (request: unknown) => Promise<unknown>): Promise<unknown>;
}

/**
 * Holds a client's other requests until its first one is answered. The Key Vault auth
 * policy sends a client's first request without its body to get the challenge; when
 * several start at once, one that loses the race is re-sent without its body and fails
 * with 400 (seen with @azure/keyvault-common 2.1). One gate per client (per pipeline).
 */
export function firstRequestGate(): RequestPolicy {
  let gate: Promise<void> | undefined;
  return {
    name: 'keyturnFirstRequestGate',
    async sendRequest(request, next) {
      if (gate) {
        await gate;
        return next(request);
      }
      let open!: () => void;
      gate = new Promise<void>((resolve) => (open = resolve));
      try {
        return await next(request);
      } finally {
        open();
      }
    },
  };
}

export function createKeyVaultClients(
  vaults: Record<string, string>,
  options: {
    emulatorCa?: string;
    /** The managed identity (Azure); not used against the emulator. */
    credential?: () => TokenCredential;
    /** Test only: more pipeline policies for each new client. */
    extraPolicies?: () => { policy: RequestPolicy; position: 'perCall' | 'perRetry' }[];
  },
): KeyVaultClients {
  const emulator = options.emulatorCa !== undefined;
  const credential = emulator ? emulatorCredential : options.credential?.();
  if (!credential) throw new Error('Key Vault clients need a credential outside the emulator');
  // One options object per kind: agents are cached per tlsOptions identity, so clients share connections.
  const tlsOptions = emulator ? { ca: options.emulatorCa } : undefined;
  const clientOptions = () => ({
    ...(emulator ? { disableChallengeResourceVerification: true, tlsOptions } : {}),
    // Bounded retries: a step must finish well inside its lease (see the renewal lease margin).
    retryOptions: { maxRetries: 4, maxRetryDelayInMs: 8000 },
    additionalPolicies: [{ policy: firstRequestGate(), position: 'perCall' as const }, ...(options.extraPolicies?.() ?? [])].map(
      ({ policy, position }) => ({ policy: policy as never, position }),
    ),
  });
  const clients = new Map<string, SecretClient | KeyClient>();
  const cached = <T extends SecretClient | KeyClient>(kind: string, vaultKey: string, make: (url: string) => T): T => {
    const id = `${kind}:${vaultKey.toLowerCase()}`;
    let client = clients.get(id) as T | undefined;
    if (!client) {
      client = make(vaultUrl(vaultKey));
      clients.set(id, client);
    }
    return client;
  };

  const vaultUrl = (vaultKey: string): string => {
    const url = vaults[vaultKey.toLowerCase()];
    if (!url) throw notFound(`Vault '${vaultKey}'`, { vault: vaultKey });
    return url;
  };
  return {
    vaultKeys: () => Object.keys(vaults),
    vaultUrl,
    secrets: (vaultKey) => cached('secrets', vaultKey, (url) => new SecretClient(url, credential, clientOptions())),
    keys: (vaultKey) => cached('keys', vaultKey, (url) => new KeyClient(url, credential, clientOptions())),
  };
}
