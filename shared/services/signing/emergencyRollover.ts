/**
 * Emergency rollover: promotes the published next key at once (or a fresh key when
 * there is no usable next). A compromised signer leaves the published set in the same
 * write and is disabled in Key Vault before this answers (if Key Vault fails, the
 * answer says so and the timer retries). With `kid`, a retry after the key stopped
 * signing is a no-op. Who asked is resolved at the HTTP edge (`shared/http/requester.ts`).
 */
import { type RolloverRecord, type RolloverRequest, planEmergency, publishedKeys, signingKey } from '../../domain/signingKeys';
import { ValidationError } from '../../errors';
import type { KeySetChanges } from './keySetChanges';
import type { StoredKeySet } from './ports';
import { type SigningKeyDeps, logText } from './signingDeps';
import type { VaultSync } from './vaultSync';

/** `requestedBy` as resolved at the edge: unnamed is `unknown`, and a name is unverified unless the edge says otherwise. */
export interface EmergencyRequest extends Partial<Pick<RolloverRequest, 'requestedBy' | 'requestedByVerified'>> {
  reason: string;
  compromised: boolean;
  /**
   * The kid the caller means to roll away from (the signer it saw). A retry naming the
   * same kid does nothing more (it answers the earlier record); without it the key
   * signing on arrival is the target, so a retry would roll the new signer too.
   */
  kid?: string;
}

export interface EmergencyResult {
  /**
   * The rollover made, or for a retry (the target had already stopped signing) the
   * earlier emergency rollover away from it when it is still on record; absent otherwise.
   */
  record?: RolloverRecord;
  detail?: string;
  /**
   * Compromised only: whether the compromised key is disabled in Key Vault. False when
   * Key Vault failed: the key is unpublished all the same and the rollover timer retries.
   */
  disabledInKeyVault?: boolean;
  signingKid?: string;
  publishedKids: string[];
}

export class EmergencyRollover {
  constructor(
    private readonly deps: SigningKeyDeps,
    private readonly changes: KeySetChanges,
    private readonly sync: VaultSync,
  ) {}

  private read(): Promise<StoredKeySet | undefined> {
    return this.deps.sets.read(this.deps.settings.issuer);
  }

  async run(request: EmergencyRequest): Promise<EmergencyResult> {
    const { policy, issuer } = this.deps.settings;
    const requester = { requestedBy: request.requestedBy ?? 'unknown', requestedByVerified: request.requestedByVerified ?? false };
    const before = await this.read();
    if (request.kid !== undefined && !before?.set.keys.some((k) => k.kid === request.kid)) {
      // Retired keys are dropped from the set after a while: a retry may still find its record.
      const earlier = await this.earlierEmergency(before, request.kid);
      if (!earlier) throw new ValidationError('kid', `kid: ${request.kid} is not a signing key of ${issuer}`);
      return { record: earlier, ...this.summary(before, request.compromised ? { disabledInKeyVault: true } : {}) };
    }
    const targetKid = request.kid ?? signingKey(before?.set)?.kid;
    this.deps.log.warn('Emergency signing-key rollover requested', {
      issuer,
      ...requester,
      compromised: request.compromised,
      kid: targetKid,
    });
    const outcome = await this.changes.change(
      (set, now) => planEmergency(set, now, policy, { compromised: request.compromised, targetKid }),
      { ...requester, reason: request.reason },
    );
    let stored = outcome?.stored ?? (await this.read());
    // The compromised keys to disable: those this rollover retired, or on a retry the target if it is still lagging.
    const compromisedKids = outcome?.record?.compromised
      ? outcome.record.retiredKids
      : request.compromised && targetKid && stored?.set.keys.some((k) => k.kid === targetKid && k.compromised)
        ? [targetKid]
        : [];
    let disabled: { disabledInKeyVault?: boolean } = {};
    if (compromisedKids.length > 0) {
      const result = await this.disableCompromised(stored, compromisedKids);
      stored = result.stored;
      disabled = { disabledInKeyVault: result.disabled };
    }
    if (outcome?.record) return { record: outcome.record, ...this.summary(stored, disabled) };
    const earlier = targetKid ? await this.earlierEmergency(stored, targetKid) : undefined;
    return {
      ...(earlier ? { record: earlier } : {}),
      detail: 'The key that signed when the request arrived had already stopped signing',
      ...this.summary(stored, disabled),
    };
  }

  private summary(stored: StoredKeySet | undefined, extra: { disabledInKeyVault?: boolean }) {
    return { ...extra, signingKid: signingKey(stored?.set)?.kid, publishedKids: publishedKeys(stored?.set).map((k) => k.kid) };
  }

  /** The latest emergency rollover away from `kid` (it stopped signing or was retired as compromised), in the outbox or stored. */
  private async earlierEmergency(stored: StoredKeySet | undefined, kid: string): Promise<RolloverRecord | undefined> {
    const recorded = await this.deps.sets.rollovers(this.deps.settings.issuer, 50);
    const all = [...(stored?.set.outbox ?? []), ...recorded];
    return all
      .filter((r) => r.trigger === 'emergency' && (r.fromKid === kid || r.retiredKids.includes(kid)))
      .sort((a, b) => b.keySetVersion - a.keySetVersion)[0];
  }

  /**
   * Disables the compromised keys in Key Vault now, not only in the follow-up: the set
   * write already unpublished them. A Key Vault failure is not an error for the caller
   * (the rollover is done and must not be repeated): it says `disabled: false` and the
   * rollover timer retries the disable.
   */
  private async disableCompromised(
    stored: StoredKeySet | undefined,
    kids: string[],
  ): Promise<{ stored: StoredKeySet | undefined; disabled: boolean }> {
    const lagging = stored?.set.keys.filter((k) => kids.includes(k.kid) && k.compromised && k.vaultState !== 'retired') ?? [];
    if (lagging.length === 0) return { stored, disabled: true };
    let disabled = true;
    for (const key of lagging) {
      try {
        await this.deps.keys.setState(key.vaultKey, 'retired');
      } catch (e) {
        disabled = false;
        this.deps.log.error('Key Vault did not disable a compromised signing key; it is unpublished and the rollover timer retries', {
          kid: key.kid,
          error: logText(e),
        });
      }
    }
    try {
      return { stored: (await this.sync.followUp(await this.read())) ?? stored, disabled };
    } catch (e) {
      this.deps.log.warn('Recording the Key Vault disable failed; the rollover timer retries', { error: logText(e) });
      return { stored, disabled };
    }
  }
}
