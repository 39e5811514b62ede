/**
 * BYOK (customer-managed) tenant keys, as pure rules: which key URL a customer may
 * name, the proof of control (the `keyturn-tenant` tag), the create-only claim per key,
 * and the access-probe rule (a 403 marks `access-lost` only after consecutive failed
 * probes spanning the window: RBAC changes take minutes to propagate, a single 403 is
 * not a revoke). Keyturn never creates, rotates or changes a key in a customer's vault.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../errors';
import { checkVaultUrl } from './vaultUrl';
import type { AccessRecord, Tenant } from './tenantKeys';

export type { AccessRecord };

/** The tag naming a key's tenant (service-managed: set by Keyturn; BYOK: the customer's proof of control). */
export const TENANT_TAG = 'keyturn-tenant';

/** The shortest probe window the rules accept (RBAC propagation takes minutes). */
export const MIN_ACCESS_LOST_MS = 10 * 60_000;

export interface ByokKeyRef {
  vaultUrl: string;
  name: string;
}

const refused = (why: string) => new ValidationError('keyUrl', `keyUrl: ${why}`);

/**
 * `keyUrl` as a customer's key: on the vault allow-list, NOT one of Keyturn's own vaults,
 * a key without a version (Keyturn pins the current one). 400 naming `keyUrl` otherwise.
 */
export function parseByokKeyUrl(raw: string, options: { local: boolean; ownVaultUrls: string[] }): ByokKeyRef {
  const checked = checkVaultUrl(raw, { local: options.local });
  if ('refused' in checked) throw refused(`not on the vault allow-list (${checked.refused})`);
  if (options.ownVaultUrls.map((u) => u.toLowerCase().replace(/\/$/, '')).includes(checked.vaultUrl)) {
    throw refused("one of Keyturn's own vaults; a BYOK key lives in the customer's vault");
  }
  if (checked.object?.collection !== 'keys') throw refused('expected https://{vault}/keys/{name}');
  if (checked.object.version) throw refused('name the key without a version; Keyturn pins the current one');
  return { vaultUrl: checked.vaultUrl, name: checked.object.name };
}

/** Proof of control: the customer tagged the key for this tenant (no tenant can claim another's key). */
export function checkTenantTag(tags: Record<string, string>, tenantId: string): void {
  const tag = Object.entries(tags).find(([k]) => k.toLowerCase() === TENANT_TAG)?.[1];
  if (tag === undefined) throw refused(`the key carries no tag ${TENANT_TAG}=${tenantId} (set it in your vault to prove you control the key)`);
  if (tag !== tenantId) throw refused(`the key's tag ${TENANT_TAG} names another tenant`);
}

/** One claim document per key (vault + name, case-insensitive): who holds it. */
export interface KeyClaim {
  id: string;
  vaultUrl: string;
  name: string;
  tenantId: string;
  claimedAt: string;
  /** The job that took the claim (a create or a rekey); only its failure releases it. */
  by?: string;
  /** Set when the onboarding or rekey that claimed it failed: the key is free again. */
  releasedAt?: string;
}

export const claimId = (key: ByokKeyRef): string =>
  `claim-${createHash('sha256').update(`${key.vaultUrl.toLowerCase()}/keys/${key.name.toLowerCase()}`).digest('hex').slice(0, 40)}`;

export const keyHeldByAnother = () => refused('another tenant holds this key');

// ---------------------------------------------------------------------------------
// Access probes.

export type ProbeOutcome = 'ok' | 'forbidden' | 'unknown';

/**
 * A probe's result applied to a BYOK tenant: a failure starts (or extends) a run of
 * failures; `access-lost` once that run has at least two probes and spans `windowMs`;
 * a success ends the run and, when access was lost, returns to the earlier state.
 * An `unknown` outcome (Key Vault down, throttling) changes nothing.
 */
export function applyProbe(tenant: Tenant, outcome: ProbeOutcome, now: Date, windowMs: number): Tenant {
  if (tenant.topology !== 'byok' || tenant.state === 'revoked' || outcome === 'unknown') return tenant;
  const at = now.toISOString();
  const access: AccessRecord = tenant.access ?? { failures: 0 };
  if (outcome === 'ok') {
    if (tenant.state !== 'access-lost' && access.failures === 0) return tenant; // nothing to write
    const next: Tenant = { ...tenant, access: { failures: 0, lastProbeAt: at }, updatedAt: at };
    if (tenant.state === 'access-lost') {
      // A changeover that ended while access was lost (its archive ran) is over.
      const inChangeover = tenant.versions.some((v) => v.state === 'active' && v.kid !== tenant.activeKid);
      next.state = access.stateBeforeLoss === 'rekey-required' ? 'rekey-required' : inChangeover ? 'changeover' : 'active';
      if (next.state === 'active') delete next.changeoverUntil;
    }
    return next;
  }
  const failingSince = access.failingSince ?? at;
  const failures = access.failures + 1;
  const next: Tenant = { ...tenant, access: { ...access, failingSince, failures, lastProbeAt: at }, updatedAt: at };
  const spanned = now.getTime() - Date.parse(failingSince) >= Math.max(windowMs, MIN_ACCESS_LOST_MS);
  if (tenant.state !== 'access-lost' && failures >= 2 && spanned) {
    next.state = 'access-lost';
    next.access = { ...next.access!, lostAt: at, stateBeforeLoss: tenant.state };
  }
  return next;
}

/** A compromised BYOK key: no new content until the customer names a new key (old content still opens). */
export function requireRekey(tenant: Tenant, now: Date): Tenant {
  if (tenant.topology !== 'byok' || tenant.state === 'revoked' || tenant.state === 'rekey-required') return tenant;
  const at = now.toISOString();
  const versions = tenant.versions.map((v) => (v.kid === tenant.activeKid && !v.compromised ? { ...v, compromised: true, compromisedAt: at } : v));
  return { ...tenant, state: 'rekey-required', versions, updatedAt: at };
}
