/**
 * Changes to the key set: read → decide → create the Key Vault keys the transition
 * needs → one ETag-guarded write. A lost race discards the keys it created, re-reads
 * and re-decides, so two timer runs at once roll at most once.
 */
import { calculateJwkThumbprint } from 'jose';
import {
  type KeySet,
  type NewKey,
  type RolloverRecord,
  type RolloverRequest,
  type Transition,
  ALG_OF,
  applyTransition,
  keyExpiry,
  newKeysFor,
  signingKey,
} from '../../domain/signingKeys';
import { ConcurrencyConflict, KeyturnError, dependencyError } from '../../errors';
import type { StoredKeySet } from './ports';
import { MAX_ATTEMPTS, type SigningKeyDeps, logText } from './signingDeps';
import type { VaultSync } from './vaultSync';

export interface ChangeOutcome {
  stored: StoredKeySet;
  transition: Transition;
  record?: RolloverRecord;
}

export class KeySetChanges {
  constructor(
    private readonly deps: SigningKeyDeps,
    private readonly sync: VaultSync,
  ) {}

  /**
   * Read → decide → create keys → ETag-guarded write; a lost race discards and re-decides.
   * Any failed write re-reads the set first and discards only the new keys it does not hold.
   */
  async change(
    decide: (set: KeySet | undefined, now: Date) => Transition | undefined,
    request?: RolloverRequest,
  ): Promise<ChangeOutcome | undefined> {
    const { sets, clock, log, settings } = this.deps;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const stored = await sets.read(settings.issuer);
      const now = await clock.now();
      const transition = decide(stored?.set, now);
      if (!transition) return undefined;
      const newKeys = await this.createKeys(stored?.set, transition, now);
      const { set, record } = applyTransition(stored?.set, transition, { issuer: settings.issuer, now, newKeys, request });
      let written: StoredKeySet;
      try {
        written = await sets.write(set, stored?.etag);
      } catch (e) {
        // Disable only the new keys the set does not hold: a timeout, 503 or reset may follow a
        // commit (and an SDK retry of a committed write sees its own ETag change).
        await this.discardUnwritten(newKeys);
        if (!(e instanceof ConcurrencyConflict)) throw e;
        log.info('Signing key set changed concurrently; deciding again', { issuer: settings.issuer, attempt });
        continue;
      }
      log.info('Signing key set changed', {
        issuer: settings.issuer,
        transition: transition.type,
        trigger: record?.trigger,
        version: written.set.version,
        signingKid: signingKey(written.set)?.kid,
        newKids: newKeys.map((k) => k.kid),
        retiredKids: record?.retiredKids,
      });
      return { stored: (await this.sync.followUp(written)) ?? written, transition, record };
    }
    throw new KeyturnError('CONFLICT', 'The signing key set kept changing concurrently; try again');
  }

  private async createKeys(set: KeySet | undefined, t: Transition, now: Date): Promise<NewKey[]> {
    const { keys, settings } = this.deps;
    const generation = set?.nextGeneration ?? 1;
    const created: NewKey[] = [];
    try {
      for (let i = 0; i < newKeysFor(t); i++) {
        // bootstrap and replace create the signer first; everything else is a next.
        const state = i === 0 && (t.type === 'bootstrap' || t.type === 'replace') ? 'current' : 'next';
        const expiresAt = keyExpiry(now, settings.policy);
        const made = await keys.create({ name: `${settings.keyName}-${generation + i}`, keyType: settings.keyType, expiresAt, state });
        created.push({
          kid: await calculateJwkThumbprint(made.publicJwk),
          alg: ALG_OF[settings.keyType],
          vaultKey: made.vaultKey,
          publicJwk: made.publicJwk,
          createdAt: now.toISOString(),
          expiresAt: expiresAt.toISOString(),
        });
      }
    } catch (e) {
      this.deps.log.error('Creating a signing key failed', { error: logText(e) });
      await this.discard(created);
      throw dependencyError('Creating a signing key in Key Vault failed; retry later', e);
    }
    return created;
  }

  /**
   * After a write whose outcome is unknown: the keys it created that the set does not
   * hold are discarded. If the set cannot be read, none are: a published key disabled
   * would break signing, an unused key left enabled only waits for clean-up.
   */
  private async discardUnwritten(newKeys: NewKey[]): Promise<void> {
    if (newKeys.length === 0) return;
    let held: Set<string>;
    try {
      held = new Set((await this.deps.sets.read(this.deps.settings.issuer))?.set.keys.map((k) => k.kid) ?? []);
    } catch (e) {
      this.deps.log.warn('Could not re-read the signing key set after a failed write; the keys it created stay enabled', {
        kids: newKeys.map((k) => k.kid),
        error: logText(e),
      });
      return;
    }
    const unwritten = newKeys.filter((k) => !held.has(k.kid));
    if (unwritten.length < newKeys.length) {
      this.deps.log.warn('The signing key set write failed but had committed; its keys stay', {
        kids: newKeys.filter((k) => held.has(k.kid)).map((k) => k.kid),
      });
    }
    await this.discard(unwritten);
  }

  /** Keys created for a transition that lost its race: disabled, never published. */
  private async discard(keys: NewKey[]): Promise<void> {
    for (const key of keys) {
      try {
        await this.deps.keys.setState(key.vaultKey, 'retired');
      } catch (e) {
        this.deps.log.warn('Could not disable an unused signing key', { ...key.vaultKey, error: logText(e) });
      }
    }
  }
}
