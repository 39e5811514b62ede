/**
 * Credential renewal: runs the rotation state machine (shared/domain/rotation.ts)
 * against the ports. Each step is: decide → claim (ETag-guarded lease, fresh token)
 * → side effect tagged with the token → record (ETag-guarded) → next. A lost race
 * re-reads and re-decides; a resumed step adopts what its token created, or removes
 * it when its value is lost, so nothing is created twice or left unrecorded.
 */
import { ConcurrencyConflict } from '../../errors';
import { randomUUID } from 'node:crypto';
import { KeyturnError, describeError, notFound } from '../../errors';
import { type KeyVaultEvent, readKeyVaultEvent, resolveVaultKey, vaultNameOfTopic, byteSize } from '../../domain/keyVaultEvent';
import {
  type ManagedCredential,
  type ProviderKind,
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
  ROTATION_ID,
  type Rotation,
  type Step,
  type StepResult,
  type Trigger,
  alertDue,
  claimStep,
  completeStep,
  decideNext,
  failStep,
  isInFlight,
  markAlerted,
  nextAttempt,
  rotationView,
  startRotation,
  stateOf,
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
  /** This worker's identity in leases (one per process). */
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

const newest = (versions: SecretProps[]): SecretProps | undefined =>
  [...versions].sort((a, b) => (a.createdOn?.getTime() ?? 0) - (b.createdOn?.getTime() ?? 0)).at(-1);

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
    const envelope = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v.slice(0, 300) : undefined);
    const source = str(envelope.topic) ?? str(envelope.source) ?? 'unknown';
    let excerpt: string;
    try {
      excerpt = (JSON.stringify(raw) ?? String(raw)).slice(0, 1024);
    } catch {
      excerpt = '(not serialisable)';
    }
    const eventId = str(envelope.id);
    const letter: DeadLetter = {
      id: `${reason}:${eventId ?? randomUUID()}`.slice(0, 255).replace(/[/\\?#]/g, '_'),
      source,
      reason,
      detail,
      receivedAt: (await this.deps.clock.now()).toISOString(),
      bytes,
      excerpt,
      ...(eventId ? { eventId } : {}),
      ...(str(envelope.eventType) ?? str(envelope.type) ? { eventType: str(envelope.eventType) ?? str(envelope.type) } : {}),
    };
    await this.deps.deadLetters.record(letter);
    this.deps.log.warn(`Event refused (${reason}) and recorded as a dead letter`, { detail, source, eventId });
    return { outcome: 'dead-lettered', reason };
  }

  // ------------------------------------------------------------------ starting

  private async managed(vault: string, name: string): Promise<{ latest: SecretProps; credential: ManagedCredential } | { reason: string }> {
    if (isPendingSecretName(name)) return { reason: 'a pending sibling secret (never managed)' };
    const latest = await this.deps.secrets.latest(vault, name);
    if (!latest) return { reason: 'secret not found' };
    const reading = readCredentialTags(latest.tags, this.defaults());
    if (reading.kind === 'unmanaged') return { reason: 'not managed by Keyturn' };
    if (reading.kind === 'invalid') return { reason: `tag ${reading.tag} is invalid: ${reading.message}` };
    return { latest, credential: reading.credential };
  }

  /** Starts attempt 1 for the secret's current version (events, sweep): a duplicate is a no-op. */
  async startRenewal(input: { vault: string; name: string; version?: string; trigger: Trigger }): Promise<StartOutcome> {
    const found = await this.managed(input.vault, input.name);
    if ('reason' in found) return { outcome: 'ignored', reason: found.reason };
    if (input.version && input.version.toLowerCase() !== found.latest.version.toLowerCase()) {
      return { outcome: 'ignored', reason: 'version is no longer current' };
    }
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
        ? { ...nextAttempt(last, 'renew', now), ...this.settingsOf(input) }
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

  private settingsOf(input: ReturnType<RenewalService['rotationInput']>) {
    const { provider, validityDays, graceDays, appObjectId } = input;
    return { provider, validityDays, graceDays, ...(appObjectId ? { appObjectId } : {}) };
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

  /** Runs the rotation until it waits (lease, backoff, grace) or ends. */
  async advance(id: string): Promise<Rotation> {
    const { rotations, faults, log, settings, owner } = this.deps;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const stored = await rotations.read(id);
      if (!stored) throw notFound(`Rotation '${id}'`, { rotationId: id });
      const r = stored.doc;
      const now = await this.deps.clock.now();
      const decision = decideNext(r, now, { owner });
      if (decision.action === 'none' || decision.action === 'wait') return r;

      if (decision.action === 'claim') {
        faults.hit(`${decision.step}:before`);
        const claimed = claimStep(r, { owner, token: this.newToken(), leaseMs: settings.leaseSeconds * 1000 }, now);
        await this.write(claimed, stored.etag);
        continue;
      }

      const { step, token } = decision;
      faults.hit(`${step}:claimed`);
      let performed: Performed;
      try {
        performed = await this.perform(r, step, token, now);
      } catch (e) {
        if (isInjectedCrash(e)) throw e;
        const failed = failStep(r, token, describeError(e), now, { maxAttempts: settings.maxAttempts, jitter: this.random() });
        if (await this.write(failed, stored.etag)) this.reportFailure(failed, step);
        continue;
      }
      faults.hit(`${step}:after`);
      const next = 'superseded' in performed ? supersede(r, token, performed.superseded, now) : completeStep(r, token, performed, now);
      if (!(await this.write(next, stored.etag))) {
        if ('step' in performed && performed.step === 'create') await this.discardCreated(r, performed);
        continue;
      }
      log.info(`Rotation ${'superseded' in performed ? 'superseded' : `step ${step} done`}`, {
        rotationId: r.id,
        state: stateOf(next, now),
        ...(next.promoted && step === 'promote' ? { newVersion: next.promoted.version } : {}),
        ...('superseded' in performed ? { reason: performed.superseded } : {}),
      });
    }
    throw new Error(`Rotation ${id} did not settle after ${MAX_ROUNDS} rounds`);
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

  private reportFailure(r: Rotation, step: Step): void {
    const props = { rotationId: r.id, vault: r.vault, name: r.name, step, attempt: r.attempt, error: r.lastError?.message };
    if (r.status === 'failed') {
      this.deps.log.error('ALERT: credential rotation failed; the old credential stays current. Renew it with POST /api/credentials/{vault}/{name}/renew', props);
    } else {
      this.deps.log.warn('Rotation step failed; will retry', { ...props, nextAttemptAt: r.nextAttemptAt });
    }
  }

  private ctx(r: Rotation): ProviderContext {
    return { vault: r.vault, name: r.name, rotationId: r.id, credential: { provider: r.provider, appObjectId: r.appObjectId } };
  }

  private provider(r: Rotation): CredentialProvider {
    return this.deps.providers[r.provider];
  }

  private perform(r: Rotation, step: Step, token: string, now: Date): Promise<Performed> {
    switch (step) {
      case 'create':
        return this.create(r, token, now);
      case 'verify':
        return this.verify(r, now);
      case 'promote':
        return this.promote(r, token);
      case 'notify':
        return this.notify(r, now);
      case 'retire':
        return this.retire(r);
    }
  }

  private async create(r: Rotation, token: string, now: Date): Promise<Performed> {
    const { secrets, faults } = this.deps;
    const ctx = this.ctx(r);
    const provider = this.provider(r);
    if (r.leftovers) await this.removeArtifacts(r, r.leftovers.tokens, r.leftovers);

    const latest = await secrets.latest(r.vault, r.name);
    if (latest?.version.toLowerCase() !== r.fromVersion) return { superseded: `version ${r.fromVersion} is no longer current` };

    const tokens = r.steps.create?.tokens ?? [token];
    const pendingName = pendingSecretName(r.name);
    const tagged = (await secrets.versions(r.vault, pendingName)).filter(
      (v) => v.enabled && tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '') && (r.provider === 'symmetric' || tagValue(v.tags, TAG.credentialId)),
    );
    const adopt = newest(tagged);
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
    for (const lost of await provider.findTagged(ctx, tokens)) await provider.remove(ctx, lost.ref);

    const expiresOn = new Date(now.getTime() + r.validityDays * DAY_MS);
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
    const stored = await secrets.write(r.vault, pendingName, created.value, { tags });
    return {
      step: 'create',
      pendingVersion: stored.version,
      expiresOn: expiresOn.toISOString(),
      token,
      ...(created.ref ? { credentialRef: created.ref } : {}),
    };
  }

  private async verify(r: Rotation, now: Date): Promise<Performed> {
    const value = await this.deps.secrets.read(r.vault, pendingSecretName(r.name), r.pending!.version);
    await this.provider(r).verify(this.ctx(r), value, r.pending!.credentialRef, now);
    await this.removeOrphans(r);
    return { step: 'verify' };
  }

  private async promote(r: Rotation, token: string): Promise<Performed> {
    const { secrets } = this.deps;
    const pending = r.pending!;
    const tokens = r.steps.promote?.tokens ?? [token];
    const versions = await secrets.versions(r.vault, r.name);
    let promoted = versions.find((v) => tokens.includes(tagValue(v.tags, TAG.stepToken) ?? ''));
    const old = versions.find((v) => v.version.toLowerCase() === r.fromVersion);
    if (!promoted) {
      const latest = await secrets.latest(r.vault, r.name);
      if (!latest || latest.version.toLowerCase() !== r.fromVersion || !old) {
        await this.removeArtifacts(r, [], { pendingVersion: pending.version, credentialRef: pending.credentialRef });
        return { superseded: `version ${r.fromVersion} was replaced by someone else before promotion` };
      }
      const value = await secrets.read(r.vault, pendingSecretName(r.name), pending.version);
      promoted = await secrets.write(r.vault, r.name, value, {
        tags: promotedTags(latest.tags, { token, rotationId: r.id, credentialRef: pending.credentialRef }),
        expiresOn: new Date(pending.expiresOn),
        ...(latest.contentType ? { contentType: latest.contentType } : {}),
      });
    }
    // Idempotent follow-ups: stage tags, and the pending copy of the value is switched off.
    if (old && tagValue(old.tags, TAG.stage) !== 'previous') {
      await secrets.update(r.vault, r.name, old.version, { tags: withStage(old.tags, 'previous') });
    }
    await this.disablePending(r, pending.version);
    return {
      step: 'promote',
      version: promoted.version,
      expiresOn: promoted.expiresOn?.toISOString() ?? pending.expiresOn,
      token: tagValue(promoted.tags, TAG.stepToken) ?? token,
    };
  }

  private async notify(r: Rotation, now: Date): Promise<Performed> {
    // A stable id: a crash between publish and record republishes the same event.
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

  private async retire(r: Rotation): Promise<Performed> {
    const { secrets, log } = this.deps;
    const latest = await secrets.latest(r.vault, r.name);
    // Consumers read the latest version: it must never be the one disabled.
    if (!latest || latest.version.toLowerCase() === r.fromVersion) {
      throw new Error(`refusing to retire ${r.fromVersion}: it is the latest version`);
    }
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
    await this.removeOrphans(r);
    return { step: 'retire' };
  }

  private async disablePending(r: Rotation, version: string): Promise<void> {
    const pendingName = pendingSecretName(r.name);
    const v = (await this.deps.secrets.versions(r.vault, pendingName)).find((p) => p.version === version);
    if (v?.enabled) await this.deps.secrets.update(r.vault, pendingName, version, { enabled: false, tags: withStage(v.tags, 'retired') });
  }

  /** What create claims made besides the adopted artifact (two hosts, a crash) is removed. */
  private async removeOrphans(r: Rotation): Promise<void> {
    const create = r.steps.create;
    const others = (create?.tokens ?? []).filter((t) => t !== create?.adoptedToken);
    if (others.length > 0) await this.removeArtifacts(r, others, {});
  }

  /** Disables pending versions and removes provider credentials carrying `tokens` (or named). */
  private async removeArtifacts(r: Rotation, tokens: string[], named: { pendingVersion?: string; credentialRef?: string }): Promise<void> {
    const { secrets } = this.deps;
    const ctx = this.ctx(r);
    const provider = this.provider(r);
    const pendingName = pendingSecretName(r.name);
    const refs = new Set<string>(named.credentialRef ? [named.credentialRef] : []);
    for (const v of await secrets.versions(r.vault, pendingName)) {
      const ours = v.version === named.pendingVersion || tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '');
      if (!ours) continue;
      const ref = tagValue(v.tags, TAG.credentialId);
      if (ref) refs.add(ref);
      if (v.enabled) await secrets.update(r.vault, pendingName, v.version, { enabled: false, tags: withStage(v.tags, 'retired') });
    }
    if (tokens.length > 0) for (const found of await provider.findTagged(ctx, tokens)) refs.add(found.ref);
    for (const ref of refs) await provider.remove(ctx, ref);
  }

  /** Lost the race to record a create: what this worker made is an orphan, remove it now. */
  private async discardCreated(r: Rotation, created: Extract<StepResult, { step: 'create' }>): Promise<void> {
    const current = await this.deps.rotations.read(r.id);
    if (current?.doc.steps.create?.adoptedToken === created.token) return;
    await this.removeArtifacts(r, [created.token], { pendingVersion: created.pendingVersion, credentialRef: created.credentialRef });
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
        const hasRotation = all.some((r) => r.fromVersion === version);
        const windowStart = latest.expiresOn ? latest.expiresOn.getTime() - settings.windowDays * DAY_MS : Infinity;
        if (!hasRotation && now.getTime() >= windowStart) {
          const started = await this.startRenewal({ vault, name: latest.name, version, trigger: 'sweep' });
          if (started.outcome === 'started') report.started.push(started.rotationId);
        }
        for (const r of all) {
          const expiresOn = r.fromVersion === version ? latest.expiresOn : undefined;
          if (!alertDue(r, now, expiresOn)) continue;
          const expired = expiresOn !== undefined && now.getTime() >= expiresOn.getTime();
          log.error(`ALERT: credential rotation failed and the credential is ${expired ? 'EXPIRED' : 'not renewed'}`, {
            rotationId: r.id,
            vault,
            name: r.name,
            expiresOn: expiresOn?.toISOString(),
            lastError: r.lastError?.message,
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
        const reading = readCredentialTags(item.tags, this.defaults());
        if (reading.kind === 'unmanaged') continue;
        const latest = await secrets.latest(vault, item.name);
        if (!latest) continue;
        const latestRotation = (await rotations.forCredential(vault, item.name)).sort((a, b) => a.createdAt.localeCompare(b.createdAt)).at(-1);
        out.push({
          vault,
          name: latest.name,
          provider: reading.kind === 'managed' ? reading.credential.provider : null,
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
                lastError: latestRotation.lastError?.message ?? null,
              }
            : null,
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
