/**
 * Credential renewal: runs the rotation state machine (shared/domain/rotation.ts)
 * against the ports. Each step is: decide → claim (ETag-guarded lease, fresh token)
 * → side effect tagged with the token → record (ETag-guarded) → next. A lost race
 * re-reads and re-decides; a resumed step adopts what its token created, or removes
 * it when its value is lost, so nothing is created twice or left unrecorded.
 */
import { createHash, randomUUID } from 'node:crypto';
import { ConcurrencyConflict, KeyturnError, describeError, errorFacts, notFound } from '../../errors';
import { type KeyVaultEvent, byteSize, projectEvent, readKeyVaultEvent, resolveVaultKey, vaultNameOfTopic } from '../../domain/keyVaultEvent';
import {
  type ManagedCredential,
  type ProviderKind,
  SAMPLE_TAG,
  TAG,
  isPendingSecretName,
  pendingSecretName,
  promotedTags,
  readCredentialTags,
  tagValue,
  withStage,
} from '../../domain/managedCredential';
import {
  DAY_MS,
  type Leftovers,
  ROTATION_ID,
  type Rotation,
  type Step,
  type StepResult,
  type Trigger,
  STEP_FAILURE,
  alertDue,
  claimStep,
  completeStep,
  decideNext,
  failStep,
  isInFlight,
  markAlerted,
  nextAttempt,
  recordCleanup,
  rotationView,
  startRotation,
  stateOf,
  stuckAlertDue,
  supersede,
} from '../../domain/rotation';
import type { Clock, FaultPoints, Logger, Notifier } from '../../ports';
import {
  type CredentialProvider,
  type DeadLetter,
  type DeadLetterStore,
  type KeyEventHandler,
  type ProviderContext,
  type RotationStore,
  type SecretProps,
  type SecretStore,
  newestVersion,
} from './ports';

export interface RenewalSettings {
  vaults: Record<string, string>;
  /** Event VaultName → vault key (KEYTURN_EVENT_VAULT_NAMES). */
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
  deadLetters: DeadLetterStore;
  keyEvents: KeyEventHandler;
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

export const ROTATED_EVENT = 'Keyturn.CredentialRotated';

export type StartOutcome =
  | { outcome: 'started' | 'duplicate'; rotationId: string }
  | { outcome: 'ignored'; reason: string };

export type EventOutcome = StartOutcome | { outcome: 'dead-lettered'; reason: DeadLetter['reason'] } | { outcome: 'routed' };

type Performed = StepResult | { superseded: string };

const MAX_ROUNDS = 40;

/** A test-only crash (InjectedFault): it must escape like a process crash, never be recorded. */
const isInjectedCrash = (e: unknown): boolean => e instanceof Error && e.name === 'InjectedFault';

/**
 * A step stops before an external write once its lease has less than this left (half
 * the lease at most): an SDK call with its retries (delays up to 64 s) or a Graph call
 * (up to 30 s) must end before another worker may take the step over.
 */
const LEASE_MARGIN_MS = 120_000;

/** Thrown by a step's lease check: the step is abandoned as is (no failure, no clean-up). */
class LeaseLapsing extends KeyturnError {
  constructor(readonly step: Step, readonly before: string, readonly leftMs: number) {
    super('LEASE_LAPSING', `lease of step ${step} has ${Math.max(0, Math.round(leftMs / 1000))} s left: not starting ${before}`, { step });
    this.name = 'LeaseLapsing';
  }
}

/** Checks, before an external write, that the step's lease still has its safety margin. */
type LeaseCheck = (before: string) => Promise<void>;

/** Artifacts a clean-up must not touch: the recorded pending version and credentials in use. */
interface Keep {
  pendingVersion?: string;
  refs: Set<string>;
}

export class RenewalService {
  private readonly random: () => number;
  private readonly newToken: () => string;

  constructor(private readonly deps: RenewalDeps) {
    this.random = deps.random ?? Math.random;
    this.newToken = deps.newToken ?? randomUUID;
  }

  private defaults() {
    return { validityDays: this.deps.settings.defaultValidityDays, graceDays: this.deps.settings.defaultGraceDays };
  }

  // ------------------------------------------------------------------ events

  /** Handles one delivered event. Throws only when a dependency is down (so Event Grid retries). */
  async handleEvent(raw: unknown): Promise<EventOutcome> {
    const { log, settings } = this.deps;
    const bytes = byteSize(raw);
    const reading = readKeyVaultEvent(raw, bytes);
    if (!reading.ok) return this.deadLetter(raw, bytes, reading.reason, reading.detail);

    const topic = 'event' in reading ? reading.event.topic : reading.topic;
    const vaultName = 'event' in reading ? reading.event.vaultName : vaultNameOfTopic(topic)!;
    const vault = resolveVaultKey(vaultName, settings.vaults, settings.eventVaultNames);
    if (!vault) return this.deadLetter(raw, bytes, 'spoofed', `topic: vault '${vaultName}' is not one of Keyturn's vaults`);
    if (!('event' in reading)) {
      log.info('Key Vault event acknowledged; not one Keyturn acts on', { vault, type: reading.type, id: reading.id });
      return { outcome: 'ignored', reason: 'event type not handled' };
    }
    const event = reading.event;
    if (event.objectType === 'Key') {
      await this.deps.keyEvents.handle({ vault, event }, log);
      return { outcome: 'routed' };
    }
    if (event.kind !== 'SecretNearExpiry' && event.kind !== 'SecretExpired') {
      log.info('Key Vault event acknowledged', this.eventProps(vault, event));
      return { outcome: 'ignored', reason: 'event type not handled' };
    }
    const result = await this.startRenewal({ vault, name: event.objectName, version: event.version, trigger: event.kind });
    log.info(`Key Vault event ${event.kind}: ${result.outcome}`, {
      ...this.eventProps(vault, event),
      ...('reason' in result ? { reason: result.reason } : { rotationId: result.rotationId }),
    });
    return result;
  }

  private eventProps(vault: string, e: KeyVaultEvent) {
    return { vault, type: e.kind, name: e.objectName, version: e.version, eventId: e.id };
  }

  private async deadLetter(raw: unknown, bytes: number, reason: DeadLetter['reason'], detail: string): Promise<EventOutcome> {
    const event = projectEvent(raw);
    let json: string | undefined;
    try {
      json = JSON.stringify(raw);
    } catch {
      json = undefined; // cyclic: nothing to hash
    }
    const letter: DeadLetter = {
      id: `${reason}:${event.id ?? randomUUID()}`.slice(0, 255).replace(/[/\\?#]/g, '_'),
      source: event.topic ?? 'unknown',
      reason,
      detail,
      receivedAt: (await this.deps.clock.now()).toISOString(),
      bytes: Number.isFinite(bytes) ? bytes : null,
      sha256: json === undefined ? null : createHash('sha256').update(json).digest('hex'),
      event,
    };
    await this.deps.deadLetters.record(letter);
    this.deps.log.warn(`Event refused (${reason}) and recorded as a dead letter`, { detail, source: letter.source, eventId: event.id, deadLetterId: letter.id });
    return { outcome: 'dead-lettered', reason };
  }

  // ------------------------------------------------------------------ starting

  private async managed(vault: string, name: string): Promise<{ latest: SecretProps; credential: ManagedCredential } | { reason: string }> {
    if (isPendingSecretName(name)) return { reason: 'a pending sibling secret (never managed)' };
    const latest = await this.deps.secrets.latest(vault, name);
    if (!latest) return { reason: 'secret not found' };
    const reading = readCredentialTags(latest.tags, this.defaults(), latest.name);
    if (reading.kind === 'unmanaged') return { reason: 'not managed by Keyturn' };
    if (reading.kind === 'invalid') return { reason: `invalid: ${reading.tag}: ${reading.message}` };
    return { latest, credential: reading.credential };
  }

  /** Starts attempt 1 for the secret's current version (events, sweep): a duplicate is a no-op. */
  async startRenewal(input: { vault: string; name: string; version?: string; trigger: Trigger }): Promise<StartOutcome> {
    const found = await this.managed(input.vault, input.name);
    if ('reason' in found) return { outcome: 'ignored', reason: found.reason };
    if (input.version && input.version.toLowerCase() !== found.latest.version.toLowerCase()) {
      return { outcome: 'ignored', reason: 'version is no longer current' };
    }
    const version = found.latest.version.toLowerCase();
    const busy = (await this.deps.rotations.forCredential(input.vault, input.name)).find((r) => isInFlight(r) && r.fromVersion !== version);
    if (busy) return { outcome: 'ignored', reason: `rotation ${busy.id} of this credential is in flight` };
    const rotation = startRotation(this.rotationInput(input.vault, found.latest, found.credential, input.trigger), await this.deps.clock.now());
    try {
      await this.deps.rotations.create(rotation);
    } catch (e) {
      if (e instanceof ConcurrencyConflict) return { outcome: 'duplicate', rotationId: rotation.id };
      throw e;
    }
    await this.kick(rotation.id);
    return { outcome: 'started', rotationId: rotation.id };
  }

  private rotationInput(vault: string, latest: SecretProps, credential: ManagedCredential, trigger: Trigger) {
    return {
      vault,
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

  /** HTTP renew: the next attempt (after a failed one) or the first; 409 while one is in flight. */
  async renew(vault: string, name: string) {
    const { rotations, settings, clock } = this.deps;
    if (settings.vaults[vault.toLowerCase()] === undefined) throw notFound(`Vault '${vault}'`, { vault });
    const found = await this.managed(vault.toLowerCase(), name);
    if ('reason' in found) {
      if (found.reason === 'secret not found') throw notFound(`Secret '${name}'`, { vault, name });
      throw new KeyturnError('NOT_MANAGED', `Secret '${name}' is not renewable: ${found.reason}`, { vault, name });
    }
    const all = await rotations.forCredential(vault, name);
    const inFlight = all.find(isInFlight);
    if (inFlight) throw this.inFlight(inFlight.id);
    const now = await clock.now();
    const last = all.filter((r) => r.fromVersion === found.latest.version.toLowerCase()).sort((a, b) => a.attempt - b.attempt).at(-1);
    const input = this.rotationInput(vault.toLowerCase(), found.latest, found.credential, 'renew');
    // Current tags win (a fixed tag may be why the last attempt failed); leftovers come along.
    const rotation =
      last?.status === 'failed' && !last.promoted
        ? this.withSettings(nextAttempt(last, 'renew', now), input)
        : startRotation({ ...input, attempt: (last?.attempt ?? 0) + 1 }, now);
    try {
      await rotations.create(rotation);
    } catch (e) {
      if (e instanceof ConcurrencyConflict) throw this.inFlight(rotation.id);
      throw e;
    }
    this.deps.log.info('Renewal requested', { rotationId: rotation.id, attempt: rotation.attempt });
    const advanced = await this.kick(rotation.id);
    return rotationView(advanced ?? rotation, await clock.now());
  }

  /**
   * The provider facts of the next attempt come from the current tags, absent ones
   * included: an operator may have fixed `CredentialId` or the application id after the
   * failure. Leftovers keep the app they were made on (`nextAttempt`).
   */
  private withSettings(next: Rotation, input: ReturnType<RenewalService['rotationInput']>): Rotation {
    const { provider, validityDays, graceDays, appObjectId, previousCredentialRef } = input;
    const out: Rotation = { ...next, provider, validityDays, graceDays };
    delete out.appObjectId;
    delete out.previousCredentialRef;
    if (appObjectId) out.appObjectId = appObjectId;
    if (previousCredentialRef) out.previousCredentialRef = previousCredentialRef;
    return out;
  }

  private inFlight(id: string) {
    return new KeyturnError('ROTATION_IN_FLIGHT', 'A rotation of this credential is already in flight', { rotationId: id });
  }

  /** Advances a new rotation at once; a failure is recorded in it, never thrown at the caller. */
  private async kick(id: string): Promise<Rotation | undefined> {
    try {
      return await this.advance(id);
    } catch (e) {
      if (isInjectedCrash(e)) throw e;
      this.deps.log.warn('Rotation could not advance now; the resume timer will retry', { rotationId: id, error: describeError(e) });
      return undefined;
    }
  }

  // ------------------------------------------------------------------ advancing

  /**
   * Runs the rotation until it waits (lease, backoff, grace) or ends. Each call holds
   * its leases under its own holder id (`{owner}:{random}`) and performs only a step it
   * claimed itself: two calls in one process (the event's kick and the resume timer)
   * never run the same step's side effect.
   */
  async advance(id: string): Promise<Rotation> {
    const { rotations, faults, log, settings, owner } = this.deps;
    const holder = `${owner}:${randomUUID().slice(0, 8)}`;
    const claimed = new Set<string>();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const stored = await rotations.read(id);
      if (!stored) throw notFound(`Rotation '${id}'`, { rotationId: id });
      const r = stored.doc;
      const now = await this.deps.clock.now();
      const decision = decideNext(r, now, { owner: holder });
      if (decision.action === 'none' || decision.action === 'wait') return r;

      if (decision.action === 'cleanup') {
        const ok = await this.cleanUp(r);
        if (await this.write(recordCleanup(r, ok, now, this.random()), stored.etag)) {
          log[ok ? 'info' : 'warn'](`Clean-up of the ${r.status} rotation ${ok ? 'done' : 'failed again; will retry'}`, { rotationId: r.id });
        }
        continue;
      }

      if (decision.action === 'claim') {
        faults.hit(`${decision.step}:before`);
        const token = this.newToken();
        const next = claimStep(r, { owner: holder, token, leaseMs: settings.leaseSeconds * 1000 }, now);
        if (await this.write(next, stored.etag)) claimed.add(token);
        continue;
      }

      const { step, token } = decision;
      if (!claimed.has(token)) return r; // not this call's claim (cannot happen with a unique holder): never perform it
      faults.hit(`${step}:claimed`);
      const check = this.leaseCheck(r, step);
      let performed: Performed | undefined;
      try {
        try {
          performed = await this.perform(r, step, token, now, check);
        } catch (e) {
          if (isInjectedCrash(e) || e instanceof LeaseLapsing) throw e;
          // A write whose answer was lost may have landed: a promotion that did is completed, never failed.
          if (step === 'promote') performed = await this.landedPromotion(r, token, check, e);
          if (!performed) {
            await this.recordFailure(stored, step, token, e, now);
            continue;
          }
        }
      } catch (e) {
        if (!(e instanceof LeaseLapsing)) throw e;
        // Another worker may own the step by now: leave everything as it is (what this claim
        // made carries its token, so the next holder adopts or removes it) and record nothing.
        log.warn('Rotation step abandoned: its lease is about to lapse; the resume timer takes it over', {
          rotationId: r.id,
          step,
          leftSeconds: Math.max(0, Math.round(e.leftMs / 1000)),
          before: e.before,
        });
        return r;
      }
      faults.hit(`${step}:after`);
      let next = 'superseded' in performed ? supersede(r, token, performed.superseded, now) : completeStep(r, token, performed, now);
      // Nothing of a superseded rotation may stay valid: its artifacts go before the status is written.
      if (next.status === 'superseded') next = recordCleanup(next, await this.cleanUp(r), now, this.random());
      if (!(await this.write(next, stored.etag))) {
        if ('step' in performed && performed.step === 'create') await this.discardCreated(r, performed);
        continue;
      }
      log.info(`Rotation ${'superseded' in performed ? 'superseded' : `step ${step} done`}`, {
        rotationId: r.id,
        state: stateOf(next, now),
        ...(next.promoted && step === 'promote' ? { newVersion: next.promoted.version } : {}),
        ...('superseded' in performed ? { reason: performed.superseded, cleanup: next.cleanup?.state } : {}),
      });
    }
    throw new Error(`Rotation ${id} did not settle after ${MAX_ROUNDS} rounds`);
  }

  /**
   * A failed try: stored as name/code/status and the step's fixed message (the full text
   * goes to the log only). Before promotion the last try fails the rotation, after its
   * artifacts are cleaned up; after promotion it never fails and alerts when stuck.
   */
  private async recordFailure(stored: { doc: Rotation; etag: string }, step: Step, token: string, thrown: unknown, now: Date): Promise<void> {
    const { settings } = this.deps;
    const r = stored.doc;
    let next = failStep(r, token, errorFacts(thrown), now, { maxAttempts: settings.maxAttempts, jitter: this.random() });
    if (next.status === 'failed') next = recordCleanup(next, await this.cleanUp(r), now, this.random());
    const stuck = stuckAlertDue(next, now, settings.maxAttempts);
    if (stuck) next = markAlerted(next, now);
    if (!(await this.write(next, stored.etag))) return;
    const props = {
      rotationId: r.id,
      vault: r.vault,
      name: r.name,
      step,
      attempt: r.attempt,
      failures: next.steps[step]?.failures,
      error: describeError(thrown),
    };
    if (next.status === 'failed') {
      this.deps.log.error(
        'ALERT: credential rotation failed before promotion; the old credential stays current. Renew it with POST /api/credentials/{vault}/{name}/renew',
        { ...props, cleanup: next.cleanup?.state },
      );
    } else if (stuck) {
      const what = step === 'notify' ? 'consumers have not been told' : 'the old credential is still enabled';
      this.deps.log.error(`ALERT: credential rotation is stuck at ${step} after promotion: the new version is current but ${what}; retrying`, {
        ...props,
        newVersion: next.promoted?.version,
        nextAttemptAt: next.nextAttemptAt,
      });
    } else {
      this.deps.log.warn('Rotation step failed; will retry', { ...props, nextAttemptAt: next.nextAttemptAt });
    }
  }

  /** ETag-guarded write; false when another worker changed it first (re-read and re-decide). */
  private async write(r: Rotation, etag: string): Promise<boolean> {
    try {
      await this.deps.rotations.replace(r, etag);
      return true;
    } catch (e) {
      if (e instanceof ConcurrencyConflict) return false;
      throw e;
    }
  }

  private ctx(r: Rotation): ProviderContext {
    return { vault: r.vault, name: r.name, rotationId: r.id, credential: { provider: r.provider, appObjectId: r.appObjectId } };
  }

  private provider(r: Rotation): CredentialProvider {
    return this.deps.providers[r.provider];
  }

  /** The check a step runs before each external write (`perform`): throws LeaseLapsing when too little lease is left. */
  private leaseCheck(r: Rotation, step: Step): LeaseCheck {
    const leaseMs = this.deps.settings.leaseSeconds * 1000;
    const margin = Math.min(leaseMs / 2, LEASE_MARGIN_MS);
    const expiresAt = Date.parse(r.lease!.expiresAt);
    return async (before) => {
      const left = expiresAt - (await this.deps.clock.now()).getTime();
      if (!(left >= margin)) throw new LeaseLapsing(step, before, left);
    };
  }

  private perform(r: Rotation, step: Step, token: string, now: Date, check: LeaseCheck): Promise<Performed> {
    switch (step) {
      case 'create':
        return this.create(r, token, now, check);
      case 'verify':
        return this.verify(r, now, check);
      case 'promote':
        return this.promote(r, token, check);
      case 'notify':
        return this.notify(r, now, check);
      case 'retire':
        return this.retire(r, check);
    }
  }

  private async create(r: Rotation, token: string, now: Date, check: LeaseCheck): Promise<Performed> {
    const { secrets, faults } = this.deps;
    const ctx = this.ctx(r);
    const provider = this.provider(r);
    if (r.leftovers) {
      const keep = await this.inUse(r);
      await check('removing the last attempt’s leftovers');
      await this.removeLeftovers(r, r.leftovers, keep);
    }

    const latest = await secrets.latest(r.vault, r.name);
    if (latest?.version.toLowerCase() !== r.fromVersion) return { superseded: `version ${r.fromVersion} is no longer current` };

    const tokens = r.steps.create?.tokens ?? [token];
    const pendingName = pendingSecretName(r.name);
    const tagged = (await secrets.versions(r.vault, pendingName)).filter(
      (v) => v.enabled && tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '') && (r.provider === 'symmetric' || tagValue(v.tags, TAG.credentialId)),
    );
    const adopt = newestVersion(tagged);
    if (adopt) {
      const credentialRef = tagValue(adopt.tags, TAG.credentialId);
      return {
        step: 'create',
        pendingVersion: adopt.version,
        expiresOn: tagValue(adopt.tags, TAG.expiresOn) ?? new Date(now.getTime() + r.validityDays * DAY_MS).toISOString(),
        token: tagValue(adopt.tags, TAG.stepToken)!,
        ...(credentialRef ? { credentialRef } : {}),
      };
    }
    // Created at the provider by an earlier claim but never stored: the value is lost.
    const keep = await this.inUse(r);
    for (const lost of await provider.findTagged(ctx, tokens)) {
      if (keep.refs.has(lost.ref)) continue;
      await check('removing a credential whose value was lost');
      await provider.remove(ctx, lost.ref);
    }

    const expiresOn = new Date(now.getTime() + r.validityDays * DAY_MS);
    await check('creating the credential');
    const created = await provider.create(ctx, token, expiresOn);
    faults.hit('create:provider');
    const tags: Record<string, string> = {
      [TAG.stage]: 'pending',
      [TAG.stepToken]: token,
      [TAG.rotation]: r.id,
      [TAG.pendingFor]: r.name,
      [TAG.expiresOn]: expiresOn.toISOString(),
      ...(created.ref ? { [TAG.credentialId]: created.ref } : {}),
    };
    await check('storing the pending value');
    const stored = await secrets.write(r.vault, pendingName, created.value, { tags });
    return {
      step: 'create',
      pendingVersion: stored.version,
      expiresOn: expiresOn.toISOString(),
      token,
      ...(created.ref ? { credentialRef: created.ref } : {}),
    };
  }

  private async verify(r: Rotation, now: Date, check: LeaseCheck): Promise<Performed> {
    const value = await this.deps.secrets.read(r.vault, pendingSecretName(r.name), r.pending!.version);
    await this.provider(r).verify(this.ctx(r), value, r.pending!.credentialRef, now);
    await check('removing orphans');
    await this.removeOrphans(r);
    return { step: 'verify' };
  }

  /** Tokens of every promote claim, this one included: a version carrying one is this rotation's. */
  private promoteTokens(r: Rotation, token: string): string[] {
    const tokens = r.steps.promote?.tokens ?? [];
    return tokens.includes(token) ? tokens : [...tokens, token];
  }

  /**
   * The managed secret's version a promote claim wrote, if any: `latest` itself when its
   * tags carry a token (a listing may lag behind), else the newest listed version that
   * does (an SDK retry after a lost answer can write the value twice).
   */
  private async promotionState(r: Rotation, tokens: string[]) {
    const { secrets } = this.deps;
    const versions = await secrets.versions(r.vault, r.name);
    const latest = await secrets.latest(r.vault, r.name);
    const carries = (v: SecretProps) => tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '');
    const promoted = latest && carries(latest) ? latest : newestVersion(versions.filter(carries));
    const old = versions.find((v) => v.version.toLowerCase() === r.fromVersion);
    return { latest, old, promoted };
  }

  private async promote(r: Rotation, token: string, check: LeaseCheck): Promise<Performed> {
    const { secrets } = this.deps;
    const pending = r.pending!;
    const state = await this.promotionState(r, this.promoteTokens(r, token));
    let promoted = state.promoted;
    if (!promoted) {
      const { latest, old } = state;
      if (!latest || latest.version.toLowerCase() !== r.fromVersion || !old) {
        return { superseded: `version ${r.fromVersion} was replaced by someone else before promotion` };
      }
      const value = await secrets.read(r.vault, pendingSecretName(r.name), pending.version);
      await check('writing the new version');
      promoted = await secrets.write(r.vault, r.name, value, {
        tags: promotedTags(latest.tags, { token, rotationId: r.id, credentialRef: pending.credentialRef }),
        expiresOn: new Date(pending.expiresOn),
        ...(latest.contentType ? { contentType: latest.contentType } : {}),
      });
    }
    return this.promoted(r, token, promoted, state.old, check);
  }

  /**
   * After a promote try threw: re-lists the versions, and when one carries a promote
   * token the write landed (only its answer was lost) and the step completes. Undefined
   * when none does, or when that cannot be told now (the failure is then recorded).
   */
  private async landedPromotion(r: Rotation, token: string, check: LeaseCheck, thrown: unknown): Promise<Performed | undefined> {
    let state: Awaited<ReturnType<RenewalService['promotionState']>>;
    try {
      state = await this.promotionState(r, this.promoteTokens(r, token));
    } catch (e) {
      if (isInjectedCrash(e)) throw e;
      this.deps.log.warn('Promote failed and whether its write landed cannot be told now', { rotationId: r.id, error: describeError(e) });
      return undefined;
    }
    if (!state.promoted) return undefined;
    this.deps.log.warn('Promote reported an error but its write landed: the step is completed', {
      rotationId: r.id,
      newVersion: state.promoted.version,
      error: describeError(thrown),
    });
    return this.promoted(r, token, state.promoted, state.old, check);
  }

  /** The new version is current: follow-ups (best effort; retire repeats them) and the step's result. */
  private async promoted(r: Rotation, token: string, promoted: SecretProps, old: SecretProps | undefined, check: LeaseCheck): Promise<Performed> {
    const { secrets } = this.deps;
    const pending = r.pending!;
    await check('tagging the previous version');
    try {
      if (old && tagValue(old.tags, TAG.stage) !== 'previous') {
        await secrets.update(r.vault, r.name, old.version, { tags: withStage(old.tags, 'previous') });
      }
      await this.disableDuplicates(r, this.promoteTokens(r, token), promoted.version);
      await this.disablePending(r, pending.version);
    } catch (e) {
      if (isInjectedCrash(e)) throw e;
      this.deps.log.warn('Promoted; tagging the previous version, disabling a duplicate or the pending copy failed (retire repeats it)', {
        rotationId: r.id,
        error: describeError(e),
      });
    }
    return {
      step: 'promote',
      version: promoted.version,
      expiresOn: promoted.expiresOn?.toISOString() ?? pending.expiresOn,
      token: tagValue(promoted.tags, TAG.stepToken) ?? token,
    };
  }

  /** Versions a repeated promote write made besides the recorded one (same value): disabled, never the latest. */
  private async disableDuplicates(r: Rotation, tokens: string[], keepVersion: string): Promise<void> {
    const { secrets } = this.deps;
    if (tokens.length === 0) return;
    const versions = await secrets.versions(r.vault, r.name);
    const latest = newestVersion(versions);
    for (const v of versions) {
      if (!v.enabled || v.version.toLowerCase() === keepVersion.toLowerCase() || v.version === latest?.version) continue;
      if (!tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '')) continue;
      await secrets.update(r.vault, r.name, v.version, { enabled: false, tags: withStage(v.tags, 'retired') });
    }
  }

  private async notify(r: Rotation, now: Date, check: LeaseCheck): Promise<Performed> {
    // A stable id: a crash between publish and record republishes the same event.
    await check('publishing');
    await this.deps.notifier.publish({
      id: `${r.id}:rotated`,
      eventType: ROTATED_EVENT,
      subject: `/vaults/${r.vault}/secrets/${r.name}`,
      data: {
        vault: r.vault,
        name: r.name,
        newVersion: r.promoted!.version,
        newExpiresOn: r.promoted!.expiresOn,
        previousVersion: r.fromVersion,
        previousRetiresAfter: new Date(now.getTime() + r.graceDays * DAY_MS).toISOString(),
        provider: r.provider,
        rotationId: r.id,
      },
    });
    return { step: 'notify' };
  }

  private async retire(r: Rotation, check: LeaseCheck): Promise<Performed> {
    const { secrets, log } = this.deps;
    const latest = await secrets.latest(r.vault, r.name);
    // Consumers read the latest version: it must never be the one disabled.
    if (!latest || latest.version.toLowerCase() === r.fromVersion) {
      throw new Error(`refusing to retire ${r.fromVersion}: it is the latest version`);
    }
    await check('retiring the previous credential');
    if (r.promoted) await this.disableDuplicates(r, r.steps.promote?.tokens ?? [], r.promoted.version);
    if (r.provider !== 'symmetric') {
      if (r.previousCredentialRef && r.previousCredentialRef !== r.pending?.credentialRef) {
        await this.provider(r).remove(this.ctx(r), r.previousCredentialRef);
      } else {
        log.warn('The previous credential has no recorded id at the provider; it stays until its own end date', { rotationId: r.id });
      }
    }
    const old = (await secrets.versions(r.vault, r.name)).find((v) => v.version.toLowerCase() === r.fromVersion);
    if (old && (old.enabled || tagValue(old.tags, TAG.stage) !== 'retired')) {
      await secrets.update(r.vault, r.name, old.version, { enabled: false, tags: withStage(old.tags, 'retired') });
    }
    if (r.pending) await this.disablePending(r, r.pending.version);
    await this.removeOrphans(r);
    return { step: 'retire' };
  }

  private async disablePending(r: Rotation, version: string): Promise<void> {
    const pendingName = pendingSecretName(r.name);
    const v = (await this.deps.secrets.versions(r.vault, pendingName)).find((p) => p.version === version);
    if (v?.enabled) await this.deps.secrets.update(r.vault, pendingName, version, { enabled: false, tags: withStage(v.tags, 'retired') });
  }

  /** What create claims made besides the recorded artifact (an expired lease, a crash) is removed. */
  private async removeOrphans(r: Rotation): Promise<void> {
    const tokens = r.steps.create?.tokens ?? [];
    if (tokens.length > 0) await this.removeArtifacts(r, tokens, {}, this.recorded(r));
  }

  /** The artifact a rotation recorded: never removed as an orphan. */
  private recorded(r: Rotation): Keep {
    return { ...(r.pending ? { pendingVersion: r.pending.version } : {}), refs: new Set(r.pending?.credentialRef ? [r.pending.credentialRef] : []) };
  }

  /** Provider credentials the managed secret's enabled versions hold: a clean-up never removes them. */
  private async inUse(r: Rotation): Promise<Keep> {
    const refs = new Set<string>();
    for (const v of await this.deps.secrets.versions(r.vault, r.name)) {
      const ref = tagValue(v.tags, TAG.credentialId) || tagValue(v.tags, SAMPLE_TAG.credentialId);
      if (v.enabled && ref) refs.add(ref);
    }
    if (r.previousCredentialRef) refs.add(r.previousCredentialRef);
    return { refs };
  }

  /**
   * Best effort, before a rotation is written failed or superseded: disables its pending
   * versions and removes its provider credentials (recorded, or tagged with any create
   * token), except what the managed secret uses. False when something could not be removed.
   */
  private async cleanUp(r: Rotation): Promise<boolean> {
    try {
      const keep = await this.inUse(r);
      if (r.leftovers) await this.removeLeftovers(r, r.leftovers, keep);
      const named = r.pending ? { pendingVersion: r.pending.version, credentialRef: r.pending.credentialRef } : {};
      await this.removeArtifacts(r, r.steps.create?.tokens ?? [], named, keep);
      return true;
    } catch (e) {
      if (isInjectedCrash(e)) throw e;
      this.deps.log.warn('Clean-up of a rotation’s artifacts failed; the resume timer retries it', { rotationId: r.id, error: describeError(e) });
      return false;
    }
  }

  /** A failed attempt's artifacts, removed at the provider and application they were created on. */
  private removeLeftovers(r: Rotation, leftovers: Leftovers, keep: Keep): Promise<void> {
    // Leftovers recorded before `provider` was kept in them were made with the attempt's own settings.
    const recorded = leftovers.provider !== undefined;
    const at: Rotation = { ...r, provider: leftovers.provider ?? r.provider };
    delete at.appObjectId;
    const appObjectId = recorded ? leftovers.appObjectId : r.appObjectId;
    if (appObjectId) at.appObjectId = appObjectId;
    return this.removeArtifacts(at, leftovers.tokens, leftovers, keep);
  }

  /** Disables pending versions and removes provider credentials carrying `tokens` (or named), except `keep`. */
  private async removeArtifacts(
    r: Rotation,
    tokens: string[],
    named: { pendingVersion?: string; credentialRef?: string },
    keep: Keep,
  ): Promise<void> {
    const { secrets } = this.deps;
    const ctx = this.ctx(r);
    const provider = this.provider(r);
    const pendingName = pendingSecretName(r.name);
    const refs = new Set<string>(named.credentialRef ? [named.credentialRef] : []);
    for (const v of await secrets.versions(r.vault, pendingName)) {
      const ours = v.version === named.pendingVersion || tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '');
      if (!ours || v.version === keep.pendingVersion) continue;
      const ref = tagValue(v.tags, TAG.credentialId);
      if (ref) refs.add(ref);
      if (v.enabled) await secrets.update(r.vault, pendingName, v.version, { enabled: false, tags: withStage(v.tags, 'retired') });
    }
    if (tokens.length > 0) for (const found of await provider.findTagged(ctx, tokens)) refs.add(found.ref);
    for (const ref of refs) if (!keep.refs.has(ref)) await provider.remove(ctx, ref);
  }

  /**
   * Lost the race to record a create: the artifact is an orphan only once the current
   * document can no longer come to reference it. While another holder still runs create
   * it may be adopting it right now (it carries a token of the step): it is left to that
   * holder, and to verify's and retire's orphan removal (or a failure's clean-up) if not adopted.
   */
  private async discardCreated(r: Rotation, created: Extract<StepResult, { step: 'create' }>): Promise<void> {
    const current = (await this.deps.rotations.read(r.id))?.doc;
    if (current?.status === 'active' && current.step === 'create') return;
    const keep = current ? this.recorded(current) : { refs: new Set<string>() };
    if (keep.pendingVersion === created.pendingVersion) return;
    await this.removeArtifacts(r, [created.token], { pendingVersion: created.pendingVersion, credentialRef: created.credentialRef }, keep);
  }

  // ------------------------------------------------------------------ timers

  /** Resume timer: advances every due rotation; one failing does not stop the others. */
  async resumeDue(limit = 50): Promise<{ due: number; advanced: number; errors: number }> {
    const due = await this.deps.rotations.due(await this.deps.clock.now(), limit);
    let advanced = 0;
    let errors = 0;
    for (const r of due) {
      try {
        await this.advance(r.id);
        advanced++;
      } catch (e) {
        if (isInjectedCrash(e)) throw e;
        errors++;
        this.deps.log.error('Rotation could not be advanced', { rotationId: r.id, error: describeError(e) });
      }
    }
    return { due: due.length, advanced, errors };
  }

  /** Sweep timer: renews what is inside the window or expired, re-alerts failed rotations daily. */
  async sweep(): Promise<{ managed: number; started: string[]; alerted: string[] }> {
    const { secrets, rotations, settings, log } = this.deps;
    const report = { managed: 0, started: [] as string[], alerted: [] as string[] };
    for (const vault of Object.keys(settings.vaults)) {
      for (const item of await secrets.list(vault)) {
        const found = await this.managed(vault, item.name);
        if ('reason' in found) continue;
        report.managed++;
        const { latest } = found;
        const now = await this.deps.clock.now();
        const all = await rotations.forCredential(vault, latest.name);
        const version = latest.version.toLowerCase();
        const hasRotation = all.some((r) => r.fromVersion === version || isInFlight(r));
        const windowStart = latest.expiresOn ? latest.expiresOn.getTime() - settings.windowDays * DAY_MS : Infinity;
        if (!hasRotation && now.getTime() >= windowStart) {
          const started = await this.startRenewal({ vault, name: latest.name, version, trigger: 'sweep' });
          if (started.outcome === 'started') report.started.push(started.rotationId);
        }
        for (const r of all) {
          // Only while this attempt is the last word on the current version: a new version or a later attempt ends it.
          if (!alertDue(r, now, { currentVersion: version, expiresOn: latest.expiresOn, rotations: all })) continue;
          const expiresOn = latest.expiresOn;
          const expired = expiresOn !== undefined && now.getTime() >= expiresOn.getTime();
          log.error(`ALERT: credential rotation failed and the credential is ${expired ? 'EXPIRED' : 'not renewed'}`, {
            rotationId: r.id,
            vault,
            name: r.name,
            expiresOn: expiresOn?.toISOString(),
            lastError: r.lastError ? STEP_FAILURE[r.lastError.step] : undefined,
            cleanup: r.cleanup?.state,
          });
          const stored = await rotations.read(r.id);
          if (stored) await this.write(markAlerted(stored.doc, now), stored.etag);
          report.alerted.push(r.id);
        }
      }
    }
    return report;
  }

  // ------------------------------------------------------------------ reading

  async listCredentials() {
    const { secrets, rotations, settings } = this.deps;
    const now = await this.deps.clock.now();
    const out = [];
    for (const vault of Object.keys(settings.vaults)) {
      for (const item of await secrets.list(vault)) {
        if (isPendingSecretName(item.name)) continue;
        const reading = readCredentialTags(item.tags, this.defaults(), item.name);
        if (reading.kind === 'unmanaged') continue;
        const latest = await secrets.latest(vault, item.name);
        if (!latest) continue;
        const latestRotation = (await rotations.forCredential(vault, item.name)).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
        out.push({
          vault,
          name: latest.name,
          provider: reading.kind === 'managed' ? reading.credential.provider : (reading.provider ?? null),
          currentVersion: latest.version,
          expiresOn: latest.expiresOn?.toISOString() ?? null,
          enabled: latest.enabled,
          stage: tagValue(latest.tags, TAG.stage) ?? 'current',
          rotation: latestRotation
            ? {
                id: latestRotation.id,
                state: stateOf(latestRotation, now),
                fromVersion: latestRotation.fromVersion,
                attempt: latestRotation.attempt,
                retireAfter: latestRotation.retireAfter ?? null,
                // The step's fixed message; name, code and status are in GET /api/rotations/{id}.
                lastError: latestRotation.lastError ? STEP_FAILURE[latestRotation.lastError.step] : null,
              }
            : null,
          // `invalid`: Keyturn leaves it alone (and creates nothing) until `problem` is fixed.
          status: reading.kind,
          ...(reading.kind === 'invalid' ? { problem: `${reading.tag}: ${reading.message}` } : {}),
        });
      }
    }
    return out;
  }

  async getRotation(id: string) {
    if (!ROTATION_ID.test(id)) throw notFound(`Rotation '${id}'`);
    const stored = await this.deps.rotations.read(id);
    if (!stored) throw notFound(`Rotation '${id}'`, { rotationId: id });
    return rotationView(stored.doc, await this.deps.clock.now());
  }
}
