/**
 * Renewal's steps as functions for the step runner: create → verify → promote → notify
 * → retire. Each side effect is tagged with the claim's token, so a resumed step finds
 * and adopts what an earlier claim made (or removes it when its value is lost), and
 * each external write is preceded by the lease check.
 */
import { describeError } from '../../errors';
import { TAG, pendingSecretName, promotedTags, tagValue, withStage } from '../../domain/managedCredential';
import { DAY_MS, type Rotation, type Step, type StepResult } from '../../domain/rotation';
import { type LeaseCheck, LeaseLapsing, type StepRun, isInjectedCrash } from '../jobs/runner';
import { disableDuplicates, disablePending, inUse, removeLeftovers, removeOrphans } from './artifacts';
import { ROTATED_EVENT, type RenewalContext, providerContext, providerOf } from './context';
import { type SecretProps, newestVersion } from './ports';

/** What a step returns: its result to record, or that the rotation is superseded. */
export type Performed = StepResult | { superseded: string };

type Run = StepRun<Rotation, Step>;

export function renewalSteps(c: RenewalContext): Record<Step, (run: Run) => Promise<Performed>> {
  return {
    create: (run) => create(c, run.job, run.token, run.now, run.check),
    verify: (run) => verify(c, run.job, run.now, run.check),
    promote: (run) => promoteOrLanded(c, run.job, run.token, run.check),
    notify: (run) => notify(c, run.job, run.now, run.check),
    retire: (run) => retire(c, run.job, run.check),
  };
}

async function create(c: RenewalContext, r: Rotation, token: string, now: Date, check: LeaseCheck): Promise<Performed> {
  const { secrets, faults } = c.deps;
  const ctx = providerContext(r);
  const provider = providerOf(c, r);
  if (r.leftovers) {
    const keep = await inUse(c, r);
    await check('removing the last attempt’s leftovers');
    await removeLeftovers(c, r, r.leftovers, keep);
  }

  const tokens = r.steps.create?.tokens ?? [token];
  const justRead = c.justRead?.rotationId === r.id && tokens.length === 1 ? c.justRead.latest : undefined;
  c.justRead = undefined;
  const latest = justRead ?? (await secrets.latest(r.vault, r.name));
  if (latest?.version.toLowerCase() !== r.fromVersion) return { superseded: `version ${r.fromVersion} is no longer current` };

  const pendingName = pendingSecretName(r.name);
  // Only an earlier claim can have stored a value (this one writes last): a first claim lists nothing.
  const resumed = tokens.some((t) => t !== token);
  const tagged = resumed
    ? (await secrets.versions(r.vault, pendingName)).filter(
        (v) => v.enabled && tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '') && (r.provider === 'symmetric' || tagValue(v.tags, TAG.credentialId)),
      )
    : [];
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
  const lostOnes = await provider.findTagged(ctx, tokens);
  const keep = lostOnes.length > 0 ? await inUse(c, r) : undefined;
  for (const lost of lostOnes) {
    if (keep!.refs.has(lost.ref)) continue;
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
  if (!resumed) c.justCreated = { rotationId: r.id, token, stored };
  return {
    step: 'create',
    pendingVersion: stored.version,
    expiresOn: expiresOn.toISOString(),
    token,
    ...(created.ref ? { credentialRef: created.ref } : {}),
  };
}

async function verify(c: RenewalContext, r: Rotation, now: Date, check: LeaseCheck): Promise<Performed> {
  const value = await c.deps.secrets.read(r.vault, pendingSecretName(r.name), r.pending!.version);
  await providerOf(c, r).verify(providerContext(r), value, r.pending!.credentialRef, now);
  await check('removing orphans');
  const listed = await removeOrphans(c, r, onlyPendingVersion(c, r));
  c.justVerified = { rotationId: r.id, version: r.pending!.version, value, ...(listed ? { listed } : {}) };
  return { step: 'verify' };
}

/**
 * The recorded pending version as this invocation's create wrote it, when that proves it
 * is the only version carrying a create token: the step had one claim (no earlier claim
 * can have written one) and the SDK sent its write once (no retry after a lost answer
 * landed a second). Undefined otherwise (a re-claimed or resumed create, a retried or
 * uncounted write, another invocation): verify then lists the pending versions.
 */
function onlyPendingVersion(c: RenewalContext, r: Rotation): SecretProps | undefined {
  const created = c.justCreated?.rotationId === r.id ? c.justCreated : undefined;
  if (!created) return undefined;
  c.justCreated = undefined;
  const tokens = r.steps.create?.tokens ?? [];
  const single = tokens.length === 1 && tokens[0] === created.token;
  return single && created.stored.attempts === 1 && created.stored.version === r.pending?.version ? created.stored : undefined;
}

/** Tokens of every promote claim, this one included: a version carrying one is this rotation's. */
function promoteTokens(r: Rotation, token: string): string[] {
  const tokens = r.steps.promote?.tokens ?? [];
  return tokens.includes(token) ? tokens : [...tokens, token];
}

/**
 * The managed secret's version a promote claim wrote, if any: `latest` itself when its
 * tags carry a token (a listing may lag behind), else the newest listed version that
 * does (an SDK retry after a lost answer can write the value twice).
 */
async function promotionState(c: RenewalContext, r: Rotation, tokens: string[], options: { firstTry?: boolean } = {}) {
  const { secrets } = c.deps;
  if (options.firstTry) {
    // No promote claim has written yet: nothing to find but the old version, which is `latest` while current.
    const latest = await secrets.latest(r.vault, r.name);
    const old = latest?.version.toLowerCase() === r.fromVersion ? latest : undefined;
    return { latest, old, promoted: undefined };
  }
  const versions = await secrets.versions(r.vault, r.name);
  const latest = await secrets.latest(r.vault, r.name);
  const carries = (v: SecretProps) => tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '');
  const promoted = latest && carries(latest) ? latest : newestVersion(versions.filter(carries));
  const old = versions.find((v) => v.version.toLowerCase() === r.fromVersion);
  return { latest, old, promoted };
}

/** A write whose answer was lost may have landed: a promotion that did is completed, never failed. */
async function promoteOrLanded(c: RenewalContext, r: Rotation, token: string, check: LeaseCheck): Promise<Performed> {
  try {
    return await promote(c, r, token, check);
  } catch (e) {
    if (isInjectedCrash(e) || e instanceof LeaseLapsing) throw e;
    const landed = await landedPromotion(c, r, token, check, e);
    if (landed) return landed;
    throw e;
  }
}

async function promote(c: RenewalContext, r: Rotation, token: string, check: LeaseCheck): Promise<Performed> {
  const { secrets } = c.deps;
  const pending = r.pending!;
  const tokens = promoteTokens(r, token);
  const justVerified = c.justVerified;
  c.justVerified = undefined;
  const verified = justVerified?.rotationId === r.id && justVerified.version === pending.version ? justVerified : undefined;
  const state = await promotionState(c, r, tokens, { firstTry: tokens.length === 1 });
  let promoted = state.promoted;
  if (!promoted) {
    const { latest, old } = state;
    if (!latest || latest.version.toLowerCase() !== r.fromVersion || !old) {
      return { superseded: `version ${r.fromVersion} was replaced by someone else before promotion` };
    }
    const value = verified ? verified.value : await secrets.read(r.vault, pendingSecretName(r.name), pending.version);
    await check('writing the new version');
    const written = await secrets.write(r.vault, r.name, value, {
      tags: promotedTags(latest.tags, { token, rotationId: r.id, credentialRef: pending.credentialRef }),
      expiresOn: new Date(pending.expiresOn),
      ...(latest.contentType ? { contentType: latest.contentType } : {}),
    });
    // The only promote claim, its write sent once: no other version carries a promote token.
    const noDuplicates = tokens.length === 1 && written.attempts === 1;
    return promotedResult(c, r, token, written, state.old, check, { ...(verified?.listed ? { listedPending: verified.listed } : {}), noDuplicates });
  }
  return promotedResult(c, r, token, promoted, state.old, check, verified?.listed ? { listedPending: verified.listed } : {});
}

/**
 * After a promote try threw: re-lists the versions, and when one carries a promote
 * token the write landed (only its answer was lost) and the step completes. Undefined
 * when none does, or when that cannot be told now (the failure is then recorded).
 */
async function landedPromotion(c: RenewalContext, r: Rotation, token: string, check: LeaseCheck, thrown: unknown): Promise<Performed | undefined> {
  let state: Awaited<ReturnType<typeof promotionState>>;
  try {
    state = await promotionState(c, r, promoteTokens(r, token));
  } catch (e) {
    if (isInjectedCrash(e)) throw e;
    c.deps.log.warn('Promote failed and whether its write landed cannot be told now', { rotationId: r.id, error: describeError(e) });
    return undefined;
  }
  if (!state.promoted) return undefined;
  c.deps.log.warn('Promote reported an error but its write landed: the step is completed', {
    rotationId: r.id,
    newVersion: state.promoted.version,
    error: describeError(thrown),
  });
  return promotedResult(c, r, token, state.promoted, state.old, check);
}

/**
 * Promotion's clean-up once the new version is current: the old version tagged
 * previous, duplicates of the promote write and the pending copy disabled. Throws when
 * any of it fails (the caller decides whether that can wait).
 */
async function tidyPromotion(c: RenewalContext, r: Rotation, tokens: string[], promotedVersion: string, old?: SecretProps, known: Known = {}): Promise<void> {
  const { secrets } = c.deps;
  if (old && tagValue(old.tags, TAG.stage) !== 'previous') {
    await secrets.update(r.vault, r.name, old.version, { tags: withStage(old.tags, 'previous') });
  }
  if (!known.noDuplicates) await disableDuplicates(c, r, tokens, promotedVersion, known.managedVersions);
  await disablePending(c, r, r.pending!.version, known.listedPending);
}

/**
 * What this invocation already knows, sparing promotion's clean-up a listing:
 * `listedPending`, the pending version as verify's orphan listing showed it (or as create
 * wrote it); `noDuplicates`, that the promote write was the only one (see `promote`).
 */
interface Known {
  listedPending?: SecretProps;
  noDuplicates?: boolean;
  /** The managed secret's versions as this step just listed them. */
  managedVersions?: SecretProps[];
}

/** The new version is current: its clean-up (notify finishes it when it fails here) and the step's result. */
async function promotedResult(
  c: RenewalContext,
  r: Rotation,
  token: string,
  promoted: SecretProps,
  old: SecretProps | undefined,
  check: LeaseCheck,
  known: Known = {},
): Promise<Performed> {
  const pending = r.pending!;
  await check('tagging the previous version');
  let tidied = true;
  try {
    await tidyPromotion(c, r, promoteTokens(r, token), promoted.version, old, known);
  } catch (e) {
    if (isInjectedCrash(e)) throw e;
    tidied = false;
    c.deps.log.warn('Promoted; tagging the previous version, disabling a duplicate or the pending copy failed (notify retries it before publishing)', {
      rotationId: r.id,
      error: describeError(e),
    });
  }
  return {
    step: 'promote',
    version: promoted.version,
    expiresOn: promoted.expiresOn?.toISOString() ?? pending.expiresOn,
    token: tagValue(promoted.tags, TAG.stepToken) ?? token,
    ...(tidied ? { tidied } : {}),
  };
}

async function notify(c: RenewalContext, r: Rotation, now: Date, check: LeaseCheck): Promise<Performed> {
  if (!r.promoted!.tidied) {
    // Part of promotion: no pending copy stays enabled past it. A failure here fails the
    // try (retried with backoff; after promotion a rotation never fails).
    await check('finishing promotion’s clean-up');
    const managedVersions = await c.deps.secrets.versions(r.vault, r.name);
    const old = managedVersions.find((v) => v.version.toLowerCase() === r.fromVersion);
    await tidyPromotion(c, r, r.steps.promote?.tokens ?? [], r.promoted!.version, old, { managedVersions });
  }
  // A stable id: a crash between publish and record republishes the same event.
  await check('publishing');
  await c.deps.notifier.publish({
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

async function retire(c: RenewalContext, r: Rotation, check: LeaseCheck): Promise<Performed> {
  const { secrets, log } = c.deps;
  const latest = await secrets.latest(r.vault, r.name);
  // Consumers read the latest version: it must never be the one disabled.
  if (!latest || latest.version.toLowerCase() === r.fromVersion) {
    throw new Error(`refusing to retire ${r.fromVersion}: it is the latest version`);
  }
  await check('retiring the previous credential');
  // One listing of each secret serves the whole step (it was one per clean-up before).
  const versions = await secrets.versions(r.vault, r.name);
  if (r.promoted) await disableDuplicates(c, r, r.steps.promote?.tokens ?? [], r.promoted.version, versions);
  if (r.provider !== 'symmetric') {
    if (r.previousCredentialRef && r.previousCredentialRef !== r.pending?.credentialRef) {
      await providerOf(c, r).remove(providerContext(r), r.previousCredentialRef);
    } else {
      log.warn('The previous credential has no recorded id at the provider; it stays until its own end date', { rotationId: r.id });
    }
  }
  const old = versions.find((v) => v.version.toLowerCase() === r.fromVersion);
  if (old && (old.enabled || tagValue(old.tags, TAG.stage) !== 'retired')) {
    await secrets.update(r.vault, r.name, old.version, { enabled: false, tags: withStage(old.tags, 'retired') });
  }
  // Orphans first: their listing shows the recorded pending version too (left to disablePending).
  const listedPending = await removeOrphans(c, r);
  if (r.pending) await disablePending(c, r, r.pending.version, listedPending);
  return { step: 'retire' };
}
