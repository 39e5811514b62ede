/**
 * The one place that builds Key Vault clients, resolved per vault URL at run time and
 * cached by URL: the vaults in settings (by their alias) and vaults met later (a
 * customer's own vault). A URL that is not a settings vault must pass the anchored
 * allow-list (`shared/domain/vaultUrl.ts`) first, so no request can send the app's
 * token elsewhere.
 *
 * In Azure: the app's managed identity. In local mode (the emulator's CA file is
 * configured): the local credential, the challenge resource check disabled (127.0.0.1
 * can never pass it) and the emulator's CA trusted by these clients only. Never
 * NODE_TLS_REJECT_UNAUTHORIZED=0.
 */
import { randomUUID } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import type { KeyClient } from '@azure/keyvault-keys';
import type { SecretClient } from '@azure/keyvault-secrets';
import { allowedVaultUrl } from '../../domain/vaultUrl';
import { KeyturnError, notFound } from '../../errors';

export interface KeyVaultClients {
  /** True against the local emulator: emulator URLs pass the allow-list, the challenge resource check is off. */
  readonly local: boolean;
  /** The aliases of the vaults in settings (KEYTURN_VAULTS), lower case. */
  vaultAliases(): string[];
  /** The URL of a settings vault; NOT_FOUND for an unknown alias. */
  vaultUrl(vaultAlias: string): string;
  /** The canonical URL of a vault given by URL (a settings vault, or one the allow-list accepts); 400 naming `field` otherwise. */
  checkedUrl(rawUrl: string, field?: string): string;
  secrets(vaultAlias: string): SecretClient;
  keys(vaultAlias: string): KeyClient;
  /** Clients for a vault given by URL (see `checkedUrl`), cached by URL (and customer tenant). */
  secretsAt(vaultUrl: string): SecretClient;
  /** `customerTenantId`: a customer's vault in another Entra tenant (the cross-tenant credential; see `credentialSelection`). */
  keysAt(vaultUrl: string, options?: { customerTenantId?: string }): KeyClient;
}

/**
 * Which credential reaches a vault. Against the emulator: the local credential (one
 * directory). In Azure: the managed identity, except for a customer's vault in another
 * Entra tenant: the cross-tenant customer-managed-key pattern, a `ClientAssertionCredential`
 * for the customer's tenant as Keyturn's multi-tenant app registration, whose assertion
 * is the managed identity's token for `api://AzureADTokenExchange` (the app's federated
 * credential trusts that identity). Pure, so its choice is unit-tested.
 */
export type CredentialChoice =
  | { kind: 'local' }
  | { kind: 'managed-identity' }
  | { kind: 'cross-tenant'; tenantId: string; clientId: string };

export function credentialSelection(options: { local: boolean; customerTenantId?: string; homeTenantId?: string; crossTenantClientId?: string }): CredentialChoice {
  if (options.local) return { kind: 'local' };
  const tenant = options.customerTenantId?.toLowerCase();
  if (!tenant || tenant === options.homeTenantId?.toLowerCase()) return { kind: 'managed-identity' };
  if (!options.crossTenantClientId) {
    throw new KeyturnError('CONFIG_INVALID', 'A customer vault in another Entra tenant needs KEYTURN_CROSS_TENANT_CLIENT_ID (the multi-tenant app registration)', {
      settings: ['KEYTURN_CROSS_TENANT_CLIENT_ID'],
    });
  }
  return { kind: 'cross-tenant', tenantId: tenant, clientId: options.crossTenantClientId };
}

/** The audience of the managed identity's token that a federated credential accepts as an assertion. */
export const TOKEN_EXCHANGE_SCOPE = 'api://AzureADTokenExchange/.default';

/** The cross-tenant credential of a `CredentialChoice` (the identity SDK is required on first use). */
export function crossTenantCredential(choice: { tenantId: string; clientId: string }, managedIdentity: () => TokenCredential): TokenCredential {
  const { ClientAssertionCredential } = require('@azure/identity') as typeof import('@azure/identity');
  return new ClientAssertionCredential(choice.tenantId, choice.clientId, async () => {
    const token = await managedIdentity().getToken(TOKEN_EXCHANGE_SCOPE);
    if (!token) throw new KeyturnError('ACCESS_DENIED', 'The managed identity gave no token for the cross-tenant assertion');
    return token.token;
  });
}

/** keyturn-app in the local emulator's directory of principals. */
export const LOCAL_APP_PRINCIPAL = '00000000-0000-0000-0000-00000000a001';

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * The local stack's credential: an unsigned JWT (`alg: none`) whose `oid` names the
 * principal (object id or directory name), which is all the emulator reads; its
 * role assignments decide what that principal may do. Never used against Azure.
 */
export function localCredential(principal: string = LOCAL_APP_PRINCIPAL): TokenCredential {
  const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ oid: principal })}.`;
  return { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) };
}

/** The local credential as keyturn-app (tests, demo). */
export const emulatorCredential: TokenCredential = localCredential();

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

/** The header marking one operation's requests, so the counting policy can tell calls apart. */
export const CALL_MARKER_HEADER = 'x-keyturn-call';

/** Requests sent per marked call still running (see `withSendCount`). */
const sendsByCall = new Map<string, number>();

interface MarkedHeaders {
  get(name: string): string | undefined;
  set(name: string, value: string): void;
  delete(name: string): void;
}

/**
 * Counts each request a marked call puts on the wire. It is the last policy of each
 * client's pipeline (perRetry, added after every other): every attempt the retry
 * policy makes, every redirect and the auth policy's body-less challenge pass it, so a
 * count can only be too high (the challenge cannot write), never too low. The marker
 * is taken off while the request is sent (Key Vault never sees it) and put back for a
 * retry of the same request.
 */
export function sendCounter(): RequestPolicy {
  return {
    name: 'keyturnSendCounter',
    async sendRequest(request, next) {
      const headers = (request as { headers?: MarkedHeaders }).headers;
      const id = headers?.get(CALL_MARKER_HEADER);
      if (id === undefined) return next(request);
      const sent = sendsByCall.get(id);
      if (sent !== undefined) sendsByCall.set(id, sent + 1);
      headers!.delete(CALL_MARKER_HEADER);
      try {
        return await next(request);
      } finally {
        headers!.set(CALL_MARKER_HEADER, id);
      }
    },
  };
}

/**
 * Runs one SDK operation of a client built here with its requests marked (`headers`
 * go into the operation's `requestOptions.headers`) and says how often it was sent.
 * `sends` is absent when unknown: a client without the counter counts nothing, and a
 * call that answered was sent at least once.
 */
export async function withSendCount<T>(operation: (headers: Record<string, string>) => Promise<T>): Promise<{ result: T; sends?: number }> {
  const id = randomUUID();
  sendsByCall.set(id, 0);
  try {
    const result = await operation({ [CALL_MARKER_HEADER]: id });
    const sends = sendsByCall.get(id) ?? 0;
    return sends > 0 ? { result, sends } : { result };
  } finally {
    sendsByCall.delete(id);
  }
}

/** Lower-case origin without a trailing slash: one spelling per vault, so one client per vault. */
const canonical = (url: string): string => new URL(url).origin.toLowerCase();

export function createKeyVaultClients(
  vaults: Record<string, string>,
  options: {
    emulatorCa?: string;
    /** The managed identity (Azure); not used against the emulator. */
    credential?: () => TokenCredential;
    /** Local mode only: the principal the local credential names (KEYTURN_LOCAL_PRINCIPAL). */
    localPrincipal?: string;
    /** Keyturn's own Entra tenant (AZURE_TENANT_ID) and its multi-tenant app registration, for customers' vaults elsewhere. */
    homeTenantId?: string;
    crossTenantClientId?: string;
    /** Test only: more pipeline policies for each new client. */
    extraPolicies?: () => { policy: RequestPolicy; position: 'perCall' | 'perRetry' }[];
  },
): KeyVaultClients {
  const local = options.emulatorCa !== undefined;
  if (!local && !options.credential) throw new KeyturnError('CONFIG_INVALID', 'Key Vault clients need a credential outside the emulator');
  // Resolved with the first client, so the managed identity (and its SDK) is not built at load.
  let resolved: TokenCredential | undefined;
  const credential = (): TokenCredential => (resolved ??= local ? localCredential(options.localPrincipal) : options.credential!());
  // One options object per kind: agents are cached per tlsOptions identity, so clients share connections.
  const tlsOptions = local ? { ca: options.emulatorCa } : undefined;
  const clientOptions = () => ({
    // The resource check compares the challenge's resource with the vault's host: 127.0.0.1 never passes it.
    ...(local ? { disableChallengeResourceVerification: true, tlsOptions } : {}),
    // Bounded retries: a step must finish well inside its lease (see the renewal lease margin).
    retryOptions: { maxRetries: 4, maxRetryDelayInMs: 8000 },
    // The send counter last: nothing between it and the wire can send a request again.
    additionalPolicies: [
      { policy: firstRequestGate(), position: 'perCall' as const },
      ...(options.extraPolicies?.() ?? []),
      { policy: sendCounter(), position: 'perRetry' as const },
    ].map(({ policy, position }) => ({ policy: policy as never, position })),
  });

  const settingsUrls = new Map(Object.entries(vaults).map(([alias, url]) => [alias.toLowerCase(), canonical(url)]));
  const trusted = new Set(settingsUrls.values());
  const clients = new Map<string, SecretClient | KeyClient>();
  const cached = <T extends SecretClient | KeyClient>(kind: string, url: string, make: (url: string) => T): T => {
    const id = `${kind} ${url}`;
    let client = clients.get(id) as T | undefined;
    if (!client) {
      client = make(url);
      clients.set(id, client);
    }
    return client;
  };

  const vaultUrl = (vaultAlias: string): string => {
    const url = settingsUrls.get(vaultAlias.toLowerCase());
    if (!url) throw notFound(`Vault '${vaultAlias}'`, { vault: vaultAlias });
    return url;
  };
  const checkedUrl = (rawUrl: string, field = 'vaultUrl'): string => {
    // Settings vaults are the operator's own (they may be in another cloud); everything else passes the allow-list.
    const settingsVault = /^https:\/\/[^/?#@\s]+\/?$/i.test(rawUrl) ? canonical(rawUrl) : undefined;
    if (settingsVault && trusted.has(settingsVault)) return settingsVault;
    return allowedVaultUrl(rawUrl, { local, field }).vaultUrl;
  };
  // The SDKs are required on first use, not imported: module load pulls no SDK (cold start).
  const secretsAt = (url: string) =>
    cached('secrets', checkedUrl(url), (u) => {
      const { SecretClient } = require('@azure/keyvault-secrets') as typeof import('@azure/keyvault-secrets');
      return new SecretClient(u, credential(), clientOptions());
    });
  const crossTenant = new Map<string, TokenCredential>();
  const credentialOf = (choice: CredentialChoice): TokenCredential => {
    if (choice.kind !== 'cross-tenant') return credential();
    let c = crossTenant.get(choice.tenantId);
    if (!c) crossTenant.set(choice.tenantId, (c = crossTenantCredential(choice, () => options.credential!())));
    return c;
  };
  const keysAt = (url: string, at: { customerTenantId?: string } = {}) => {
    const choice = credentialSelection({ local, ...at, homeTenantId: options.homeTenantId, crossTenantClientId: options.crossTenantClientId });
    const checked = checkedUrl(url);
    return cached(choice.kind === 'cross-tenant' ? `keys@${choice.tenantId}` : 'keys', checked, (u) => {
      const { KeyClient } = require('@azure/keyvault-keys') as typeof import('@azure/keyvault-keys');
      return new KeyClient(u, credentialOf(choice), clientOptions());
    });
  };
  return {
    local,
    vaultAliases: () => [...settingsUrls.keys()],
    vaultUrl,
    checkedUrl,
    secrets: (vaultAlias) => secretsAt(vaultUrl(vaultAlias)),
    keys: (vaultAlias) => keysAt(vaultUrl(vaultAlias)),
    secretsAt,
    keysAt,
  };
}
