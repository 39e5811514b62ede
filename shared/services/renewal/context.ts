/**
 * What every part of credential renewal shares: its ports, settings, and the few
 * helpers that read a rotation's provider facts.
 */
import type { ManagedCredential, ProviderKind } from '../../domain/managedCredential';
import type { Rotation } from '../../domain/rotation';
import type { Clock, FaultPoints, Logger, Notifier } from '../../ports';
import type { DeadLetterStore, KeyVaultEventHandler } from '../events/ports';
import type { CredentialProvider, IdempotencyStore, ProviderContext, RotationStore, SecretProps, SecretStore, SecretValue, WrittenSecret } from './ports';

export interface RenewalSettings {
  /** Vault alias → URL (KEYTURN_VAULTS). */
  vaults: Record<string, string>;
  /** Event VaultName → vault alias (KEYTURN_EVENT_VAULT_NAMES). */
  eventVaultNames: Record<string, string>;
  windowDays: number;
  maxAttempts: number;
  defaultValidityDays: number;
  defaultGraceDays: number;
  leaseSeconds: number;
}

export interface RenewalDeps {
  rotations: RotationStore;
  secrets: SecretStore;
  providers: Record<ProviderKind, CredentialProvider>;
  /**
   * Only for `RenewalService.handleEvent` (an intake of its own, as the webhook's is built
   * in the composition root): where refused events go, and a handler asked after renewal's.
   */
  deadLetters?: DeadLetterStore;
  keyEvents?: KeyVaultEventHandler;
  /** Only for HTTP renew with an `Idempotency-Key`: where its answers are kept. */
  idempotency?: IdempotencyStore;
  notifier: Notifier;
  clock: Clock;
  faults: FaultPoints;
  log: Logger;
  settings: RenewalSettings;
  /** This process's identity; each `advance` call holds leases as `{owner}:{random}`. */
  owner: string;
  random?: () => number;
  newToken?: () => string;
}

export interface RenewalContext {
  deps: RenewalDeps;
  random: () => number;
  /** Runs the rotation until it waits or ends (the step runner with renewal's job kind). */
  advance(id: string): Promise<Rotation>;
  /**
   * The secret's latest version as the call that just started this rotation read it:
   * taken (once) by its first create claim instead of reading it again. Promote checks
   * the version is still current before it writes, so a stale read cannot promote.
   */
  justRead?: { rotationId: string; latest: SecretProps };
  /**
   * The pending value verify just confirmed (the same immutable version): promote writes it
   * without reading it again; `listed` is that version as verify's orphan listing showed it,
   * so promote disables the pending copy without listing it again.
   */
  justVerified?: { rotationId: string; version: string; value: SecretValue; listed?: SecretProps };
  /**
   * The pending version a create claim just wrote, with how often the SDK sent the write:
   * verify needs no listing to find orphans when that proves no other version carries a
   * create token (see `onlyPendingVersion`). No value: properties only.
   */
  justCreated?: { rotationId: string; token: string; stored: WrittenSecret };
}

export const ROTATED_EVENT = 'Keyturn.CredentialRotated';

/** A vault alias from settings (own properties only: `constructor` is not a vault). */
export const isVaultAlias = (settings: RenewalSettings, alias: string): boolean => Object.hasOwn(settings.vaults, alias.toLowerCase());

export const tagDefaults = (settings: RenewalSettings) => ({ validityDays: settings.defaultValidityDays, graceDays: settings.defaultGraceDays });

export const providerContext = (r: Rotation): ProviderContext => ({
  vault: r.vault,
  name: r.name,
  rotationId: r.id,
  credential: { provider: r.provider, appObjectId: r.appObjectId },
});

export const providerOf = (c: RenewalContext, r: Rotation): CredentialProvider => c.deps.providers[r.provider];

/** The facts of a new rotation of `latest`, from its current tags. */
export function rotationInput(vaultAlias: string, latest: SecretProps, credential: ManagedCredential, trigger: Rotation['trigger']) {
  return {
    vault: vaultAlias,
    name: latest.name,
    fromVersion: latest.version,
    provider: credential.provider,
    validityDays: credential.validityDays,
    graceDays: credential.graceDays,
    trigger,
    ...(credential.appObjectId ? { appObjectId: credential.appObjectId } : {}),
    ...(credential.credentialRef ? { previousCredentialRef: credential.credentialRef } : {}),
  };
}

export type RotationInput = ReturnType<typeof rotationInput>;
