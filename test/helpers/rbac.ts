/**
 * In-process vaults with RBAC and the local ARM endpoint on one Authorization:
 * Keyturn's vault and the customer's `contoso-byok`, one clock, seeded roles. The
 * real SDK clients act as any principal of the local directory.
 */
import type { AuthorizationManagementClient } from '@azure/arm-authorization';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startArm, type RunningArm } from '../../local/arm';
import { authorizationClient } from '../../local/arm/client';
import {
  Authorization,
  CUSTOMER_VAULT,
  createEventRecorder,
  DEFAULT_RESOURCE_GROUP,
  DEFAULT_SUBSCRIPTION,
  startKeyVaultEmulators,
  type KeyVaultEmulator,
  type KeyVaultEmulators,
} from '../../local/keyvault';
import { credentialFor, tokenFor } from '../../local/keyvault/principals';
import { ensureLocalTls } from '../../local/tls';
import { rawRequest, type RawResponse } from './keyvault';

export { tokenFor, credentialFor };

export interface VaultAs {
  keys: KeyClient;
  secrets: SecretClient;
  crypto(kid: string): CryptographyClient;
}

export interface RbacStack {
  group: KeyVaultEmulators;
  keyturn: KeyVaultEmulator;
  customer: KeyVaultEmulator;
  authorization: Authorization;
  arm: RunningArm;
  recorder: ReturnType<typeof createEventRecorder>;
  ca: string;
  /** SDK clients for a vault, authenticated as a principal (directory name or object id). */
  as(principal: string, vault: KeyVaultEmulator): VaultAs;
  armAs(principal: string): AuthorizationManagementClient;
  /** A raw call to a vault as a principal (no SDK client-side checks). */
  raw(principal: string, vault: KeyVaultEmulator, method: string, path: string, body?: unknown): Promise<RawResponse>;
  close(): Promise<void>;
}

let sharedTlsDir: string | undefined;

export async function startRbacStack(options: { armPageSize?: number } = {}): Promise<RbacStack> {
  sharedTlsDir ??= mkdtempSync(join(tmpdir(), 'kv-rbac-tls-'));
  const tls = await ensureLocalTls(sharedTlsDir);
  const recorder = createEventRecorder();
  const authorization = new Authorization(DEFAULT_SUBSCRIPTION);
  const group = await startKeyVaultEmulators({
    vaults: [
      { vaultName: 'keyturn-local', port: 0, purgeProtection: true },
      { vaultName: CUSTOMER_VAULT, port: 0, purgeProtection: true },
    ],
    tlsDir: sharedTlsDir,
    authorization,
    events: recorder,
    faults: { rate: 0 },
  });
  const arm = await startArm({
    port: 0,
    tls,
    authorization,
    topology: { subscriptionId: DEFAULT_SUBSCRIPTION, resourceGroup: DEFAULT_RESOURCE_GROUP, vaults: group.vaults.map((v) => v.vaultName) },
    ...(options.armPageSize ? { pageSize: options.armPageSize } : {}),
  });
  const common = { disableChallengeResourceVerification: true, tlsOptions: { ca: tls.ca } };
  return {
    group,
    keyturn: group.vault('keyturn-local'),
    customer: group.vault(CUSTOMER_VAULT),
    authorization,
    arm,
    recorder,
    ca: tls.ca,
    as: (principal, vault) => ({
      keys: new KeyClient(vault.url, credentialFor(principal), common),
      secrets: new SecretClient(vault.url, credentialFor(principal), common),
      crypto: (kid) => new CryptographyClient(kid, credentialFor(principal), common),
    }),
    armAs: (principal) => authorizationClient(arm.url, tls.ca, principal),
    raw: (principal, vault, method, path, body) => rawRequest(vault, method, path, { token: tokenFor(principal), ...(body !== undefined ? { body } : {}) }),
    close: async () => {
      await arm.close();
      await group.close();
    },
  };
}
