/**
 * Starting renewals: attempt 1 for a secret's current version (an event, the sweep),
 * or the next attempt on request (HTTP renew). Rotation ids are deterministic, so a
 * duplicate start is a no-op; a new rotation is advanced at once, after an earlier one
 * still in grace has retired its old version (at most two enabled versions).
 */
import { ConcurrencyConflict, KeyturnError, describeError, notFound } from '../../errors';
import { type ManagedCredential, isPendingSecretName, readCredentialTags } from '../../domain/managedCredential';
import { type Rotation, type Trigger, awaitingRetire, endGrace, isInFlight, nextAttempt, startRotation } from '../../domain/rotation';
import { isInjectedCrash } from '../jobs/runner';
import { type RenewalContext, type RotationInput, isVaultAlias, rotationInput, tagDefaults } from './context';
import type { SecretProps } from './ports';
import { type RotationView, rotationView } from './views';

export type StartOutcome = { outcome: 'started' | 'duplicate'; rotationId: string } | { outcome: 'ignored'; reason: string };

/** Reasons of `managed` that mean Keyturn does not manage the secret at all (vs. cannot renew it now). */
export const NOT_MANAGED_REASONS = new Set(['a pending sibling secret (never managed)', 'secret not found', 'not managed by Keyturn']);

/** The secret's latest version and its managed-credential tags, or why it is not renewable. */
export async function managed(
  c: RenewalContext,
  vaultAlias: string,
  name: string,
): Promise<{ latest: SecretProps; credential: ManagedCredential } | { reason: string }> {
  if (isPendingSecretName(name)) return { reason: 'a pending sibling secret (never managed)' };
  const latest = await c.deps.secrets.latest(vaultAlias, name);
  if (!latest) return { reason: 'secret not found' };
  const reading = readCredentialTags(latest.tags, tagDefaults(c.deps.settings), latest.name);
  if (reading.kind === 'unmanaged') return { reason: 'not managed by Keyturn' };
  if (reading.kind === 'invalid') return { reason: `invalid: ${reading.tag}: ${reading.message}` };
  return { latest, credential: reading.credential };
}

/** Starts attempt 1 for the secret's current version (events, sweep): a duplicate is a no-op. */
export async function startRenewal(c: RenewalContext, input: { vault: string; name: string; version?: string; trigger: Trigger }): Promise<StartOutcome> {
  const found = await managed(c, input.vault, input.name);
  if ('reason' in found) return { outcome: 'ignored', reason: found.reason };
  if (input.version && input.version.toLowerCase() !== found.latest.version.toLowerCase()) {
    return { outcome: 'ignored', reason: 'version is no longer current' };
  }
  const version = found.latest.version.toLowerCase();
  const rotation = startRotation(rotationInput(input.vault, found.latest, found.credential, input.trigger), await c.deps.clock.now());
  let all = await c.deps.rotations.forCredential(input.vault, input.name);
  if (all.some((r) => r.id === rotation.id)) return { outcome: 'duplicate', rotationId: rotation.id };
  const busy = all.find((r) => isInFlight(r) && r.fromVersion !== version);
  if (busy) return { outcome: 'ignored', reason: `rotation ${busy.id} of this credential is in flight` };
  all = await retirePrevious(c, all);
  const waiting = all.find(awaitingRetire);
  if (waiting) return { outcome: 'ignored', reason: `rotation ${waiting.id} of this credential is still retiring its old version` };
  try {
    await c.deps.rotations.create(rotation);
  } catch (e) {
    if (e instanceof ConcurrencyConflict) return { outcome: 'duplicate', rotationId: rotation.id };
    throw e;
  }
  await kick(c, rotation.id, found.latest);
  return { outcome: 'started', rotationId: rotation.id };
}

/** What HTTP renew answers: a rotation it started (202), or the one already replacing `fromVersion` (200). */
export type RenewAnswer = { outcome: 'started' | 'existing'; rotation: RotationView };

/**
 * HTTP renew: the next attempt (after a failed one) or the first; 409 while one is in
 * flight. With `fromVersion` only that version is renewed: when a rotation of it is
 * already under way or done, that rotation is the answer (so repeated and concurrent
 * calls make one rotation); when it is no longer current and none is known, 409.
 */
export async function renew(c: RenewalContext, vault: string, name: string, options: { fromVersion?: string; noGrace?: boolean } = {}): Promise<RenewAnswer> {
  const { rotations, settings, clock } = c.deps;
  if (!isVaultAlias(settings, vault)) throw notFound(`Vault '${vault}'`, { vault });
  const alias = vault.toLowerCase();
  const found = await managed(c, alias, name);
  if ('reason' in found) {
    if (found.reason === 'secret not found') throw notFound(`Secret '${name}'`, { vault, name });
    throw new KeyturnError('NOT_MANAGED', `Secret '${name}' is not renewable: ${found.reason}`, { vault, name });
  }
  const current = found.latest.version.toLowerCase();
  const from = options.fromVersion?.toLowerCase();
  let all = await rotations.forCredential(alias, name);
  if (from !== undefined) {
    const replacing = rotationReplacing(all, from);
    // No grace (a leaked credential): one already promoted and waiting out its grace retires its old version now.
    if (replacing && options.noGrace) return existing(c, (await retirePrevious(c, [replacing]))[0]!);
    if (replacing) return existing(c, replacing);
    if (from !== current) {
      throw new KeyturnError('VERSION_NOT_CURRENT', `Version ${from} of '${name}' is no longer current and no known rotation replaced it`, {
        vault,
        name,
        fromVersion: from,
        currentVersion: current,
      });
    }
  }
  const busy = all.find(isInFlight);
  if (busy) throw inFlight(busy.id);
  all = await retirePrevious(c, all);
  const waiting = all.find((r) => isInFlight(r) || awaitingRetire(r));
  if (waiting) throw inFlight(waiting.id);
  const now = await clock.now();
  const last = all.filter((r) => r.fromVersion === current).sort((a, b) => a.attempt - b.attempt).at(-1);
  const tagged = rotationInput(alias, found.latest, found.credential, 'renew');
  // A leaked credential (breach playbook): the old version retires as soon as the new one is promoted and announced.
  const input = options.noGrace ? { ...tagged, graceDays: 0 } : tagged;
  // Current tags win (a fixed tag may be why the last attempt failed); leftovers come along.
  const rotation =
    last?.status === 'failed' && !last.promoted ? withSettings(nextAttempt(last, 'renew', now), input) : startRotation({ ...input, attempt: (last?.attempt ?? 0) + 1 }, now);
  try {
    await rotations.create(rotation);
  } catch (e) {
    if (!(e instanceof ConcurrencyConflict)) throw e;
    // Another call made this very rotation first: with `fromVersion` it is the answer.
    const winner = from !== undefined ? (await rotations.read(rotation.id))?.doc : undefined;
    if (winner) return existing(c, winner);
    throw inFlight(rotation.id);
  }
  c.deps.log.info('Renewal requested', { rotationId: rotation.id, attempt: rotation.attempt });
  const advanced = await kick(c, rotation.id, found.latest);
  return { outcome: 'started', rotation: rotationView(advanced ?? rotation, await clock.now()) };
}

/** The rotation renewing `fromVersion`: one that promoted a new version, else one still in flight. */
function rotationReplacing(all: Rotation[], fromVersion: string): Rotation | undefined {
  const of = all.filter((r) => r.fromVersion === fromVersion).sort((a, b) => b.attempt - a.attempt);
  return of.find((r) => r.promoted) ?? of.find(isInFlight);
}

async function existing(c: RenewalContext, r: Rotation): Promise<RenewAnswer> {
  return { outcome: 'existing', rotation: rotationView(r, await c.deps.clock.now()) };
}

/**
 * Before a new rotation of a credential starts, earlier rotations waiting out their
 * grace retire their old version now: a managed secret keeps at most two enabled
 * versions (current and previous). Returns the credential's rotations as they are after.
 */
async function retirePrevious(c: RenewalContext, all: Rotation[]): Promise<Rotation[]> {
  const waiting = all.filter(awaitingRetire);
  if (waiting.length === 0) return all;
  const { rotations, clock, log } = c.deps;
  for (const r of waiting) {
    const stored = await rotations.read(r.id);
    if (!stored || !awaitingRetire(stored.doc)) continue;
    try {
      await rotations.replace(endGrace(stored.doc, await clock.now()), stored.etag);
      log.info('A newer rotation is starting: the previous version retires now, before its grace ends', { rotationId: r.id });
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e; // changed meanwhile (another call ended it): advance decides
    }
    await kick(c, r.id);
  }
  const after = new Map((await Promise.all(waiting.map((r) => rotations.read(r.id)))).flatMap((v) => (v ? [[v.doc.id, v.doc] as const] : [])));
  return all.map((r) => after.get(r.id) ?? r);
}

/**
 * The provider facts of the next attempt come from the current tags, absent ones
 * included: an operator may have fixed `CredentialId` or the application id after the
 * failure. Leftovers keep the app they were made on (`nextAttempt`).
 */
function withSettings(next: Rotation, input: RotationInput): Rotation {
  const { provider, validityDays, graceDays, appObjectId, previousCredentialRef } = input;
  const out: Rotation = { ...next, provider, validityDays, graceDays };
  delete out.appObjectId;
  delete out.previousCredentialRef;
  if (appObjectId) out.appObjectId = appObjectId;
  if (previousCredentialRef) out.previousCredentialRef = previousCredentialRef;
  return out;
}

function inFlight(id: string) {
  return new KeyturnError('ROTATION_IN_FLIGHT', 'A rotation of this credential is already in flight', { rotationId: id });
}

/**
 * Advances a new rotation at once; a failure is recorded in it, never thrown at the
 * caller. `latest` (just read by this call) spares its create step a second read.
 */
async function kick(c: RenewalContext, id: string, latest?: SecretProps): Promise<Rotation | undefined> {
  if (latest) c.justRead = { rotationId: id, latest };
  try {
    return await c.advance(id);
  } catch (e) {
    if (isInjectedCrash(e)) throw e;
    c.deps.log.warn('Rotation could not advance now; the resume timer will retry', { rotationId: id, error: describeError(e) });
    return undefined;
  } finally {
    c.justRead = undefined;
  }
}
