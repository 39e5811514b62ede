/**
 * Runs the signing-key state machine against Key Vault and the key set document:
 * the hourly rollover, emergency rollovers and Key Vault expiry events. Every change
 * is one ETag-guarded write; a lost race discards the keys it created, re-reads and
 * re-decides, so two timer runs at once roll at most once.
 */
import { calculateJwkThumbprint } from 'jose';
import type { Config } from '../../config';
import {
  type KeySet,
  type NewKey,
  type RolloverPolicy,
  type RolloverRecord,
  type RolloverRequest,
  type SigningKeyType,
  type Transition,
  type VaultWrite,
  ALG_OF,
  applyTransition,
  keyExpiry,
  markExpiryNotice,
  markFollowUpsDone,
  newKeysFor,
  planEmergency,
  planScheduled,
  publishedKeys,
  requesterSchema,
  signingKey,
  vaultSyncNeeded,
} from '../../domain/signingKeys';
import { ConcurrencyConflict, KeyturnError, ValidationError, dependencyError, describeError } from '../../errors';
import type { Clock, Logger } from '../../ports';
import { type KeySetStore, type SigningKeyStore, type StoredKeySet } from './ports';

export interface SigningSettings {
  issuer: string;
  /** Vault key (from KEYTURN_VAULTS) holding the signing keys. */
  vault: string;
  keyName: string;
  keyType: SigningKeyType;
  policy: RolloverPolicy;
  /** KEYTURN_TRUST_EASY_AUTH_HEADER: App Service authentication sets (and strips client copies of) the principal header. */
  trustEasyAuthHeader: boolean;
}

export function signingSettings(config: Config['signing']): SigningSettings {
  return {
    issuer: config.issuer,
    vault: config.vault,
    keyName: config.keyName,
    keyType: config.keyType,
    trustEasyAuthHeader: config.trustEasyAuthHeader,
    policy: {
      rolloverMs: config.rolloverDays * 86_400_000,
      publishAheadMs: config.publishAheadHours * 3_600_000,
      tokenMaxLifetimeMs: config.tokenMaxLifetimeMinutes * 60_000,
      jwksMaxAgeMs: config.jwksMaxAgeSeconds * 1000,
    },
  };
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
  keys: SigningKeyStore;
  sets: KeySetStore;
  clock: Clock;
  log: Logger;
  settings: SigningSettings;
  /** One per process: concurrent token requests on an empty key set bootstrap once. */
  bootstrap: SingleFlight;
}

/** Set by App Service authentication (Easy Auth); trusted only with KEYTURN_TRUST_EASY_AUTH_HEADER. */
export const PRINCIPAL_NAME_HEADER = 'x-ms-client-principal-name';

export interface EmergencyRequest {
  reason: string;
  compromised: boolean;
  /**
   * The kid the caller means to roll away from (the signer it saw). A retry naming the
   * same kid does nothing more (it answers the earlier record); without it the key
   * signing on arrival is the target, so a retry would roll the new signer too.
   */
  kid?: string;
  /** Self-declared in the body (already validated at the edge). */
  requestedBy?: string;
  /** The raw `x-ms-client-principal-name` header, if any. */
  principalName?: string | null;
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

export interface ChangeOutcome {
  stored: StoredKeySet;
  transition: Transition;
  record?: RolloverRecord;
}

/** A Key Vault NearExpiry/Expired event for a key, as the event router hands it on. */
export interface KeyExpiringEvent {
  vaultKey: string;
  name: string;
  version?: string;
  eventType: string;
}

const MAX_ATTEMPTS = 5;
/** Transitions one timer run may make (e.g. add-next then promote then retire). */
const MAX_STEPS = 6;

export class SigningKeyService {
  constructor(private readonly deps: SigningKeyDeps) {}

  read(): Promise<StoredKeySet | undefined> {
    return this.deps.sets.read(this.deps.settings.issuer);
  }

  /**
   * The key set with a signing key, bootstrapped (a signer and a next) if there is none
   * yet: for `/api/tokens` (function auth) only. Anonymous paths only `read`; the timer
   * bootstraps at start-up. One bootstrap at a time per process; across processes the
   * ETag lets one win and the others discard their keys.
   */
  async signingKeySet(): Promise<StoredKeySet> {
    const stored = await this.read();
    if (stored && signingKey(stored.set)) return stored;
    const { policy } = this.deps.settings;
    await this.deps.bootstrap.run(async () => {
      await this.change((set, now) => (signingKey(set) ? undefined : planScheduled(set, now, policy)));
    });
    const created = await this.read();
    if (!created || !signingKey(created.set)) {
      throw new KeyturnError('SIGNING_KEYS_NOT_READY', 'There is no signing key yet; retry shortly');
    }
    return created;
  }

  /** The timer: applies every transition that is due, then retries any lagging Key Vault writes. */
  async runSchedule(): Promise<ChangeOutcome[]> {
    const { policy } = this.deps.settings;
    const outcomes: ChangeOutcome[] = [];
    for (let step = 0; step < MAX_STEPS; step++) {
      const outcome = await this.change((set, now) => planScheduled(set, now, policy));
      if (!outcome) break;
      outcomes.push(outcome);
    }
    await this.followUp(await this.read());
    return outcomes;
  }

  /**
   * Promotes the published next key at once (or a fresh key when there is no usable
   * next). A compromised signer leaves the published set in the same write and is
   * disabled in Key Vault before this returns (if Key Vault fails, the answer says so
   * and the timer retries). With `kid`, a retry after the key stopped signing is a no-op.
   */
  async emergency(request: EmergencyRequest): Promise<EmergencyResult> {
    const { policy, issuer } = this.deps.settings;
    const requester = this.requester(request);
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
    const outcome = await this.change(
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

  /** The platform's principal when it is trusted and present, else the self-declared name (unverified). */
  private requester(request: EmergencyRequest): Pick<RolloverRequest, 'requestedBy' | 'requestedByVerified'> {
    if (request.principalName != null && this.deps.settings.trustEasyAuthHeader) {
      const parsed = requesterSchema.safeParse(request.principalName);
      if (!parsed.success) {
        throw new ValidationError(PRINCIPAL_NAME_HEADER, `${PRINCIPAL_NAME_HEADER}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      }
      return { requestedBy: parsed.data, requestedByVerified: true };
    }
    if (request.principalName != null) {
      this.deps.log.warn(`${PRINCIPAL_NAME_HEADER} ignored: KEYTURN_TRUST_EASY_AUTH_HEADER is off`, {});
    }
    const parsed = requesterSchema.optional().safeParse(request.requestedBy);
    if (!parsed.success) throw new ValidationError('requestedBy', `requestedBy: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return { requestedBy: parsed.data ?? 'unknown', requestedByVerified: false };
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
      return { stored: (await this.followUp(await this.read())) ?? stored, disabled };
    } catch (e) {
      this.deps.log.warn('Recording the Key Vault disable failed; the rollover timer retries', { error: logText(e) });
      return { stored, disabled };
    }
  }

  /**
   * A KeyNearExpiry/KeyExpired event: a signing key brings its rollover forward (next
   * is promoted once published for the publish-ahead time); an expiring next is replaced.
   */
  async onKeyExpiring(event: KeyExpiringEvent): Promise<'handled' | 'not-managed'> {
    const { vault, keyName } = this.deps.settings;
    if (event.vaultKey.toLowerCase() !== vault || !event.name.toLowerCase().startsWith(`${keyName.toLowerCase()}-`)) {
      return 'not-managed';
    }
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const stored = await this.read();
      const marked = markExpiryNotice(stored?.set, { vault, name: event.name, version: event.version }, event.eventType, await this.deps.clock.now());
      if (marked === 'not-managed') return 'not-managed';
      if (marked === 'no-change') break;
      try {
        await this.deps.sets.write(marked.set, stored?.etag);
        this.deps.log.info('Signing key expiry noticed', { kid: marked.key.kid, state: marked.key.state, eventType: event.eventType });
        break;
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      }
    }
    await this.runSchedule();
    return 'handled';
  }

  rollovers(limit = 20): Promise<RolloverRecord[]> {
    return this.deps.sets.rollovers(this.deps.settings.issuer, limit);
  }

  /**
   * Read → decide → create keys → ETag-guarded write; a lost race discards and re-decides.
   * Any failed write re-reads the set first and discards only the new keys it does not hold.
   */
  private async change(
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
      return { stored: (await this.followUp(written)) ?? written, transition, record };
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

  /**
   * After a transition: brings Key Vault tags/enabled flags in line with the set and
   * stores outbox records, then records both. Failures are retried by the next run.
   */
  private async followUp(stored: StoredKeySet | undefined): Promise<StoredKeySet | undefined> {
    const { keys, sets, clock, log, settings } = this.deps;
    const synced: VaultWrite[] = [];
    const storedRecords: string[] = [];
    for (const key of vaultSyncNeeded(stored?.set)) {
      try {
        await keys.setState(key.vaultKey, key.state);
        synced.push({ kid: key.kid, state: key.state, from: key.vaultState });
      } catch (e) {
        log.warn('Key Vault state write failed; the next run retries', { kid: key.kid, state: key.state, error: logText(e) });
      }
    }
    for (const record of stored?.set.outbox ?? []) {
      try {
        await sets.saveRollover(record);
        storedRecords.push(record.id);
      } catch (e) {
        log.warn('Storing a rollover record failed; the next run retries', { id: record.id, error: describeError(e) });
      }
    }
    let current = stored;
    for (let attempt = 1; current && attempt <= MAX_ATTEMPTS; attempt++) {
      const marked = markFollowUpsDone(current.set, { synced, storedRecords }, await clock.now());
      if (!marked) return current;
      try {
        return await sets.write(marked, current.etag);
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
        current = await sets.read(settings.issuer);
      }
    }
    return current;
  }
}

/** Full error text for logs only (with the SDK's error kept as `cause`). */
export const logText = describeError;
