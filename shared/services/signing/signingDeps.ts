/** What the signing services are given: settings (mapped from Config in the composition root) and ports. */
import type { RolloverPolicy, SigningKeyType } from '../../domain/signingKeys';
import { describeError } from '../../errors';
import type { Clock, Logger } from '../../ports';
import type { KeySetStore } from './ports';
import type { SigningVault } from './signingVault';

export interface SigningSettings {
  issuer: string;
  /** The alias of the vault (from KEYTURN_VAULTS) holding the signing keys. */
  vaultAlias: string;
  keyName: string;
  keyType: SigningKeyType;
  policy: RolloverPolicy;
}

/** At most one run of `fn` at a time in this process; callers that arrive meanwhile share it. */
export class SingleFlight {
  private inFlight?: Promise<void>;

  run(fn: () => Promise<void>): Promise<void> {
    this.inFlight ??= fn().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }
}

export interface SigningKeyDeps {
  keys: SigningVault;
  sets: KeySetStore;
  clock: Clock;
  log: Logger;
  settings: SigningSettings;
  /** One per process: concurrent token requests on an empty key set bootstrap once. */
  bootstrap: SingleFlight;
}

/** Optimistic-concurrency attempts of one read → decide → write. */
export const MAX_ATTEMPTS = 5;

/** Full error text for logs only (with the SDK's error kept as `cause`). */
export const logText = describeError;
