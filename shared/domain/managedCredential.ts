/**
 * Which Key Vault secrets Keyturn manages, read from their tags. Pure: no I/O.
 *
 * Keyturn's own vocabulary (`keyturn-*`) wins; the Azure rotation samples' tag names
 * (`ValidityPeriodDays`, `CredentialId`, `ProviderAddress`) are honoured where they map.
 * Tag names are matched case-insensitively (hand-edited tags vary in casing).
 */

export type ProviderKind = 'symmetric' | 'entra-app-password';
export const PROVIDER_KINDS: readonly ProviderKind[] = ['symmetric', 'entra-app-password'];

export const TAG = {
  provider: 'keyturn-provider',
  validityDays: 'keyturn-validity-days',
  graceDays: 'keyturn-grace-days',
  appObjectId: 'keyturn-app-object-id',
  credentialId: 'keyturn-credential-id',
  /** Life-cycle stage of a version: pending, current, previous, retired. */
  stage: 'keyturn-stage',
  /** The claim token of the step that created the version (adoption after a crash). */
  stepToken: 'keyturn-step-token',
  rotation: 'keyturn-rotation',
  pendingFor: 'keyturn-pending-for',
  expiresOn: 'keyturn-expires-on',
} as const;

/** The Azure-Samples rotation functions' tags (KeyVault-Rotation-*). */
export const SAMPLE_TAG = {
  validityDays: 'ValidityPeriodDays',
  credentialId: 'CredentialId',
  providerAddress: 'ProviderAddress',
} as const;

export type Stage = 'pending' | 'current' | 'previous' | 'retired';

/** Tags that describe one version's place in a rotation; never copied to the next version. */
const VERSION_TAGS = new Set<string>([TAG.stage, TAG.stepToken, TAG.rotation, TAG.expiresOn]);

/** The new value waits, unverified, in this sibling secret, which Keyturn never manages. */
export const PENDING_SUFFIX = '--pending';
export const pendingSecretName = (name: string): string => `${name}${PENDING_SUFFIX}`;
export const isPendingSecretName = (name: string): boolean => name.toLowerCase().endsWith(PENDING_SUFFIX);

/** Key Vault's limits that a rotation must fit in (checked before anything is created). */
export const KEY_VAULT_LIMITS = { nameLength: 127, tags: 15 } as const;
/** `{name}--pending` must still be a valid secret name. */
export const MAX_MANAGED_NAME_LENGTH = KEY_VAULT_LIMITS.nameLength - PENDING_SUFFIX.length;

export interface ManagedCredential {
  provider: ProviderKind;
  validityDays: number;
  graceDays: number;
  /** Entra application object id (`keyturn-app-object-id` or the samples' `ProviderAddress`). */
  appObjectId?: string;
  /** The provider's id of the credential in this version (Graph password keyId). */
  credentialRef?: string;
}

export type TagReading =
  | { kind: 'unmanaged' }
  /** `tag` names the bad tag, or `(name)` / `(tags)` when the secret cannot be rotated as it is. */
  | { kind: 'invalid'; tag: string; message: string; provider?: ProviderKind }
  | { kind: 'managed'; credential: ManagedCredential };

export type Tags = Record<string, string>;

export function tagValue(tags: Tags | undefined, name: string): string | undefined {
  if (!tags) return undefined;
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(tags)) if (k.trim().toLowerCase() === wanted) return v.trim();
  return undefined;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function days(tags: Tags, names: string[], fallback: number, min: number, max: number): { value: number } | { tag: string; message: string } {
  for (const name of names) {
    const raw = tagValue(tags, name);
    if (raw === undefined || raw === '') continue;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      return { tag: name, message: `${name} must be a whole number of days from ${min} to ${max}` };
    }
    return { value: Number(raw) };
  }
  return { value: fallback };
}

/**
 * Reads a secret's tags; `invalid` names the bad tag (the credential is then left alone).
 * With the secret's `name`, it also refuses what could never rotate, before anything is
 * created: a name too long for its `--pending` sibling, or too many tags for the
 * promoted version (Keyturn adds its own per-version tags).
 */
export function readCredentialTags(
  tags: Tags | undefined,
  defaults: { validityDays: number; graceDays: number },
  name?: string,
): TagReading {
  const provider = tagValue(tags, TAG.provider);
  if (!tags || provider === undefined) return { kind: 'unmanaged' };
  if (!PROVIDER_KINDS.includes(provider as ProviderKind)) {
    return { kind: 'invalid', tag: TAG.provider, message: `${TAG.provider} must be one of ${PROVIDER_KINDS.join(', ')}` };
  }
  const kind = provider as ProviderKind;
  if (name !== undefined && name.length > MAX_MANAGED_NAME_LENGTH) {
    return {
      kind: 'invalid',
      tag: '(name)',
      provider: kind,
      message: `the name has ${name.length} characters; a managed secret's name may have at most ${MAX_MANAGED_NAME_LENGTH}, so that its sibling {name}${PENDING_SUFFIX} fits Key Vault's ${KEY_VAULT_LIMITS.nameLength}`,
    };
  }
  const needed = tagsNeeded(tags, kind);
  if (needed > KEY_VAULT_LIMITS.tags) {
    return {
      kind: 'invalid',
      tag: '(tags)',
      provider: kind,
      message: `a renewed version would need ${needed} tags (these plus Keyturn's stage, step token, rotation and credential id tags); Key Vault allows ${KEY_VAULT_LIMITS.tags}: remove ${needed - KEY_VAULT_LIMITS.tags}`,
    };
  }
  const validity = days(tags, [TAG.validityDays, SAMPLE_TAG.validityDays], defaults.validityDays, 1, 3650);
  if (!('value' in validity)) return { kind: 'invalid', provider: kind, ...validity };
  const grace = days(tags, [TAG.graceDays], defaults.graceDays, 0, 365);
  if (!('value' in grace)) return { kind: 'invalid', provider: kind, ...grace };

  const credential: ManagedCredential = {
    provider: provider as ProviderKind,
    validityDays: validity.value,
    graceDays: grace.value,
  };
  const credentialRef = tagValue(tags, TAG.credentialId) || tagValue(tags, SAMPLE_TAG.credentialId);
  if (credentialRef) credential.credentialRef = credentialRef;

  if (credential.provider === 'entra-app-password') {
    const [tag, objectId] = tagValue(tags, TAG.appObjectId)
      ? [TAG.appObjectId, tagValue(tags, TAG.appObjectId)!]
      : [SAMPLE_TAG.providerAddress, tagValue(tags, SAMPLE_TAG.providerAddress) ?? ''];
    if (!GUID.test(objectId)) {
      return { kind: 'invalid', tag, provider: kind, message: `${tag} must be the Entra application's object id (a GUID)` };
    }
    credential.appObjectId = objectId.toLowerCase();
  }
  return { kind: 'managed', credential };
}

/** The most tags a rotation writes on one version of this secret: the promoted version's, or the old one's with its stage. */
function tagsNeeded(tags: Tags, provider: ProviderKind): number {
  const promoted = promotedTags(tags, { token: 't', rotationId: 'r', ...(provider === 'entra-app-password' ? { credentialRef: 'c' } : {}) });
  return Math.max(Object.keys(promoted).length, Object.keys(withStage(tags, 'retired')).length);
}

/** The tags to carry to a new version: everything but the per-version rotation tags. */
export function carriedTags(tags: Tags | undefined): Tags {
  const out: Tags = {};
  for (const [k, v] of Object.entries(tags ?? {})) if (!VERSION_TAGS.has(k.toLowerCase())) out[k] = v;
  return out;
}

/** The tags of the new current version: carried tags, the new stage and credential id. */
export function promotedTags(old: Tags | undefined, extra: { token: string; rotationId: string; credentialRef?: string }): Tags {
  const tags = carriedTags(old);
  tags[TAG.stage] = 'current';
  tags[TAG.stepToken] = extra.token;
  tags[TAG.rotation] = extra.rotationId;
  if (extra.credentialRef) {
    tags[TAG.credentialId] = extra.credentialRef;
    // Keep the samples' tag truthful when the secret uses that vocabulary.
    const sampleKey = Object.keys(tags).find((k) => k.toLowerCase() === SAMPLE_TAG.credentialId.toLowerCase());
    if (sampleKey) tags[sampleKey] = extra.credentialRef;
  }
  return tags;
}

export const withStage = (tags: Tags | undefined, stage: Stage): Tags => ({ ...(tags ?? {}), [TAG.stage]: stage });
