/**
 * What a rotation creates besides its record (pending versions, provider credentials,
 * duplicate versions a retried write made) and how it is removed: orphans of earlier
 * claims, leftovers of a failed attempt, everything of a failed or superseded rotation.
 * A removal never touches what the managed secret's enabled versions still use.
 */
import { describeError } from '../../errors';
import { SAMPLE_TAG, TAG, pendingSecretName, tagValue, withStage } from '../../domain/managedCredential';
import type { Leftovers, Rotation, StepResult } from '../../domain/rotation';
import { isInjectedCrash } from '../jobs/runner';
import { type RenewalContext, providerContext, providerOf } from './context';
import { type SecretProps, newestVersion } from './ports';

/** Artifacts a clean-up must not touch: the recorded pending version and credentials in use. */
export interface Keep {
  pendingVersion?: string;
  refs: Set<string>;
}

/**
 * Versions a repeated promote write made besides the recorded one (same value): disabled,
 * never the latest. `listed`: the managed secret's versions as this step just listed them.
 */
export async function disableDuplicates(c: RenewalContext, r: Rotation, tokens: string[], keepVersion: string, listed?: SecretProps[]): Promise<void> {
  const { secrets } = c.deps;
  if (tokens.length === 0) return;
  const versions = listed ?? (await secrets.versions(r.vault, r.name));
  const latest = newestVersion(versions);
  for (const v of versions) {
    if (!v.enabled || v.version.toLowerCase() === keepVersion.toLowerCase() || v.version === latest?.version) continue;
    if (!tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '')) continue;
    await secrets.update(r.vault, r.name, v.version, { enabled: false, tags: withStage(v.tags, 'retired') });
  }
}

/** `listed`: that version as a listing of this invocation showed it (verify's), which spares listing it again. */
export async function disablePending(c: RenewalContext, r: Rotation, version: string, listed?: SecretProps): Promise<void> {
  const pendingName = pendingSecretName(r.name);
  const v = listed?.version === version ? listed : (await c.deps.secrets.versions(r.vault, pendingName)).find((p) => p.version === version);
  if (v?.enabled) await c.deps.secrets.update(r.vault, pendingName, version, { enabled: false, tags: withStage(v.tags, 'retired') });
}

/**
 * What create claims made besides the recorded artifact (an expired lease, a crash) is
 * removed. Returns the recorded pending version as the listing showed it (left untouched).
 * `onlyPending`: the recorded version, known to be the only one carrying a create token,
 * so the pending versions are not listed (provider credentials are still looked for).
 */
export async function removeOrphans(c: RenewalContext, r: Rotation, onlyPending?: SecretProps): Promise<SecretProps | undefined> {
  const tokens = r.steps.create?.tokens ?? [];
  if (tokens.length === 0) return undefined;
  const kept = recorded(r);
  const listed = await removeArtifacts(c, r, tokens, {}, kept, onlyPending ? [onlyPending] : undefined);
  return listed.find((v) => v.version === kept.pendingVersion);
}

/** The artifact a rotation recorded: never removed as an orphan. */
export function recorded(r: Rotation): Keep {
  return { ...(r.pending ? { pendingVersion: r.pending.version } : {}), refs: new Set(r.pending?.credentialRef ? [r.pending.credentialRef] : []) };
}

/** Provider credentials the managed secret's enabled versions hold: a clean-up never removes them. */
export async function inUse(c: RenewalContext, r: Rotation): Promise<Keep> {
  const refs = new Set<string>();
  for (const v of await c.deps.secrets.versions(r.vault, r.name)) {
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
export async function cleanUp(c: RenewalContext, r: Rotation): Promise<boolean> {
  try {
    const keep = await inUse(c, r);
    if (r.leftovers) await removeLeftovers(c, r, r.leftovers, keep);
    const named = r.pending ? { pendingVersion: r.pending.version, credentialRef: r.pending.credentialRef } : {};
    await removeArtifacts(c, r, r.steps.create?.tokens ?? [], named, keep);
    return true;
  } catch (e) {
    if (isInjectedCrash(e)) throw e;
    c.deps.log.warn('Clean-up of a rotation’s artifacts failed; the resume timer retries it', { rotationId: r.id, error: describeError(e) });
    return false;
  }
}

/** A failed attempt's artifacts, removed at the provider and application they were created on. */
export async function removeLeftovers(c: RenewalContext, r: Rotation, leftovers: Leftovers, keep: Keep): Promise<void> {
  // Leftovers recorded before `provider` was kept in them were made with the attempt's own settings.
  const known = leftovers.provider !== undefined;
  const at: Rotation = { ...r, provider: leftovers.provider ?? r.provider };
  delete at.appObjectId;
  const appObjectId = known ? leftovers.appObjectId : r.appObjectId;
  if (appObjectId) at.appObjectId = appObjectId;
  await removeArtifacts(c, at, leftovers.tokens, leftovers, keep);
}

/**
 * Disables pending versions and removes provider credentials carrying `tokens` (or named),
 * except `keep`. `pendingVersions`: every pending version carrying `tokens`, when known
 * without listing them.
 */
export async function removeArtifacts(
  c: RenewalContext,
  r: Rotation,
  tokens: string[],
  named: { pendingVersion?: string; credentialRef?: string },
  keep: Keep,
  pendingVersions?: SecretProps[],
): Promise<SecretProps[]> {
  const { secrets } = c.deps;
  const ctx = providerContext(r);
  const provider = providerOf(c, r);
  const pendingName = pendingSecretName(r.name);
  const refs = new Set<string>(named.credentialRef ? [named.credentialRef] : []);
  const listed = pendingVersions ?? (await secrets.versions(r.vault, pendingName));
  for (const v of listed) {
    const ours = v.version === named.pendingVersion || tokens.includes(tagValue(v.tags, TAG.stepToken) ?? '');
    if (!ours || v.version === keep.pendingVersion) continue;
    const ref = tagValue(v.tags, TAG.credentialId);
    if (ref) refs.add(ref);
    if (v.enabled) await secrets.update(r.vault, pendingName, v.version, { enabled: false, tags: withStage(v.tags, 'retired') });
  }
  if (tokens.length > 0) for (const found of await provider.findTagged(ctx, tokens)) refs.add(found.ref);
  for (const ref of refs) if (!keep.refs.has(ref)) await provider.remove(ctx, ref);
  return listed;
}

/**
 * Lost the race to record a create: the artifact is an orphan only once the current
 * document can no longer come to reference it. While another holder still runs create
 * it may be adopting it right now (it carries a token of the step): it is left to that
 * holder, and to verify's and retire's orphan removal (or a failure's clean-up) if not adopted.
 */
export async function discardCreated(c: RenewalContext, r: Rotation, created: Extract<StepResult, { step: 'create' }>): Promise<void> {
  const current = (await c.deps.rotations.read(r.id))?.doc;
  if (current?.status === 'active' && current.step === 'create') return;
  const keep = current ? recorded(current) : { refs: new Set<string>() };
  if (keep.pendingVersion === created.pendingVersion) return;
  await removeArtifacts(c, r, [created.token], { pendingVersion: created.pendingVersion, credentialRef: created.credentialRef }, keep);
}
