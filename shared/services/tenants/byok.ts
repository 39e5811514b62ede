/**
 * BYOK keys in a customer's vault: the onboarding checks (allow-list and not Keyturn's
 * own vault, the customer's `keyturn-tenant` tag, a create-only claim per key, a
 * wrap/unwrap probe as Keyturn) and the access probe. Keyturn only reads the key and
 * wraps/unwraps with it: it never creates, rotates or changes a key in a customer vault.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ValidationError, isKeyturnError } from '../../errors';
import { type ByokKeyRef, type ProbeOutcome, checkTenantTag, keyHeldByAnother, parseByokKeyUrl } from '../../domain/tenantByok';
import { CONTENT_ALG, type Tenant } from '../../domain/tenantKeys';
import type { KeyRef, VaultKey, VaultKeys } from '../../ports';
import type { KeyClaimStore } from './ports';

export interface ByokDeps {
  claims: KeyClaimStore;
  /** Key Vault as Keyturn, in the customer's Entra tenant when it is another (cross-tenant credential). */
  keysFor(customerTenantId?: string): VaultKeys;
  /** Keyturn's own vaults: never a BYOK key's. */
  ownVaultUrls: string[];
  /** The local stack: emulator URLs pass the allow-list. */
  local: boolean;
}

/**
 * Wrap then unwrap a random 32-byte key with the version: proves Keyturn may use it
 * (the least a tenant key needs: Key Vault Crypto Service Encryption User, or Crypto User).
 * `forbidden` for 401/403 and a missing key; `unknown` when Key Vault is down.
 */
export async function probeKey(keys: VaultKeys, ref: KeyRef & { version: string }): Promise<ProbeOutcome> {
  const sample = randomBytes(32);
  try {
    const wrapped = await keys.wrap(ref, CONTENT_ALG, sample);
    const back = Buffer.from(await keys.unwrap(ref, CONTENT_ALG, wrapped));
    return back.length === sample.length && timingSafeEqual(back, sample) ? 'ok' : 'forbidden';
  } catch (e) {
    if (isKeyturnError(e, 'ACCESS_DENIED') || isKeyturnError(e, 'NOT_FOUND') || isKeyturnError(e, 'CONFLICT')) return 'forbidden';
    return 'unknown';
  } finally {
    sample.fill(0);
  }
}

const refused = (why: string) => new ValidationError('keyUrl', `keyUrl: ${why}`);

/**
 * The onboarding checks of a customer's key for `tenantId`, in order; each refusal is
 * a 400 naming `keyUrl`. On success the key is claimed for the tenant by the job `by`
 * (a create or a rekey) and its current version returned (pinned); a refusal after the
 * claim releases it if that job took it (never the claim of the tenant's key in use).
 */
export async function onboardByokKey(
  deps: ByokDeps,
  input: { tenantId: string; keyUrl: string; customerTenantId?: string; by: string },
  now: Date,
): Promise<{ key: VaultKey; ref: ByokKeyRef }> {
  const ref = parseByokKeyUrl(input.keyUrl, { local: deps.local, ownVaultUrls: deps.ownVaultUrls });
  const keys = deps.keysFor(input.customerTenantId);
  let key: VaultKey | undefined;
  try {
    key = await keys.get(ref);
  } catch (e) {
    if (isKeyturnError(e, 'ACCESS_DENIED')) throw refused('Keyturn may not read this key: grant it Key Vault Crypto Service Encryption User on the key');
    throw e;
  }
  if (!key) throw refused('no such key in that vault (or Keyturn may not see it)');
  if (!key.properties.enabled) throw refused('the key is disabled');
  if (key.publicJwk?.kty !== 'RSA' || Buffer.from(key.publicJwk.n ?? '', 'base64url').length * 8 < 2048) throw refused('expected an RSA key of at least 2048 bits');
  checkTenantTag(key.properties.tags, input.tenantId);
  if (!(await deps.claims.claim(ref, input.tenantId, now, input.by))) throw keyHeldByAnother();
  const outcome = await probeKey(keys, { ...ref, version: key.properties.version });
  if (outcome !== 'ok') {
    await deps.claims.release(ref, input.tenantId, now, input.by);
    throw outcome === 'forbidden'
      ? refused('Keyturn may not wrap and unwrap with this key: grant it Key Vault Crypto Service Encryption User on the key')
      : refused('the vault did not answer the wrap/unwrap probe; try again');
  }
  return { key, ref };
}

/**
 * Releases the claim the job `by` took on `ref` (its create or rekey failed or was
 * abandoned), unless one of the tenant's versions is on that key: the claim of a key the
 * tenant uses (in use, in its changeover or archived) is never released.
 */
export async function releaseJobClaim(
  claims: KeyClaimStore,
  input: { ref: ByokKeyRef; tenantId: string; by: string; tenant?: Pick<Tenant, 'versions'> },
  now: Date,
): Promise<void> {
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (input.tenant?.versions.some((v) => same(v.vaultUrl, input.ref.vaultUrl) && same(v.name, input.ref.name))) return;
  await claims.release(input.ref, input.tenantId, now, input.by);
}
