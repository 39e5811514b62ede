/**
 * Starting renewals: attempt 1 for a secret's current version (an event, the sweep),
 * or the next attempt on request (HTTP renew). Rotation ids are deterministic, so a
 * duplicate start is a no-op; a new rotation is advanced at once.
 */
import { ConcurrencyConflict, KeyturnError, describeError, notFound } from '../../errors';
import { type ManagedCredential, isPendingSecretName, readCredentialTags } from '../../domain/managedCredential';
import { type Rotation, type Trigger, isInFlight, nextAttempt, startRotation } from '../../domain/rotation';
import { isInjectedCrash } from '../jobs/runner';
import { type RenewalContext, type RotationInput, isVaultAlias, rotationInput, tagDefaults } from './context';
import type { SecretProps } from './ports';
import { rotationView } from './views';

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
  const busy = (await c.deps.rotations.forCredential(input.vault, input.name)).find((r) => isInFlight(r) && r.fromVersion !== version);
  if (busy) return { outcome: 'ignored', reason: `rotation ${busy.id} of this credential is in flight` };
  const rotation = startRotation(rotationInput(input.vault, found.latest, found.credential, input.trigger), await c.deps.clock.now());
  try {
    await c.deps.rotations.create(rotation);
  } catch (e) {
    if (e instanceof ConcurrencyConflict) return { outcome: 'duplicate', rotationId: rotation.id };
    throw e;
  }
  await kick(c, rotation.id);
  return { outcome: 'started', rotationId: rotation.id };
}

/** HTTP renew: the next attempt (after a failed one) or the first; 409 while one is in flight. */
export async function renew(c: RenewalContext, vault: string, name: string) {
  const { rotations, settings, clock } = c.deps;
  if (!isVaultAlias(settings, vault)) throw notFound(`Vault '${vault}'`, { vault });
  const found = await managed(c, vault.toLowerCase(), name);
  if ('reason' in found) {
    if (found.reason === 'secret not found') throw notFound(`Secret '${name}'`, { vault, name });
    throw new KeyturnError('NOT_MANAGED', `Secret '${name}' is not renewable: ${found.reason}`, { vault, name });
  }
  const all = await rotations.forCredential(vault, name);
  const busy = all.find(isInFlight);
  if (busy) throw inFlight(busy.id);
  const now = await clock.now();
  const last = all.filter((r) => r.fromVersion === found.latest.version.toLowerCase()).sort((a, b) => a.attempt - b.attempt).at(-1);
  const input = rotationInput(vault.toLowerCase(), found.latest, found.credential, 'renew');
  // Current tags win (a fixed tag may be why the last attempt failed); leftovers come along.
  const rotation =
    last?.status === 'failed' && !last.promoted ? withSettings(nextAttempt(last, 'renew', now), input) : startRotation({ ...input, attempt: (last?.attempt ?? 0) + 1 }, now);
  try {
    await rotations.create(rotation);
  } catch (e) {
    if (e instanceof ConcurrencyConflict) throw inFlight(rotation.id);
    throw e;
  }
  c.deps.log.info('Renewal requested', { rotationId: rotation.id, attempt: rotation.attempt });
  const advanced = await kick(c, rotation.id);
  return rotationView(advanced ?? rotation, await clock.now());
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

/** Advances a new rotation at once; a failure is recorded in it, never thrown at the caller. */
async function kick(c: RenewalContext, id: string): Promise<Rotation | undefined> {
  try {
    return await c.advance(id);
  } catch (e) {
    if (isInjectedCrash(e)) throw e;
    c.deps.log.warn('Rotation could not advance now; the resume timer will retry', { rotationId: id, error: describeError(e) });
    return undefined;
  }
}
