/**
 * Tenant keys (life cycles 2 and 3): a tenant's root key and its versions, as pure
 * rules over plain data. A tenant is `active` with one version for new content; a
 * rekey activates a new version at once and keeps the previous one accepted for new
 * content during the changeover window (`changeover`), then archives it: it never
 * protects again, yet keeps opening old content. A compromised version skips the
 * changeover (it leaves the published set at once). Revoke stops all use.
 *
 * Versions: pending → active → archived → revoked (`compromised` is a flag on any of
 * them). Every forbidden move is a 409 (`INVALID_TRANSITION`, or the tenant's own code).
 */
import { z } from 'zod';
import { lazySchema } from './lazySchema';
import { KeyturnError, invalidTransition } from '../errors';

export const TENANT_ID = /^[a-z0-9][a-z0-9-]{2,62}$/;
export const tenantIdSchema = lazySchema(() => z.string().regex(TENANT_ID, 'expected 3–63 characters: lower-case letters, digits and -, not starting with -'));

export const TOPOLOGIES = ['service-managed', 'byok'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

export const TENANT_STATES = ['active', 'changeover', 'rekey-required', 'revoked', 'access-lost'] as const;
export type TenantState = (typeof TENANT_STATES)[number];

export const VERSION_STATES = ['pending', 'active', 'archived', 'revoked'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

/** The only content format: fixed per tenant, never taken from a JWE's header. */
export const CONTENT_ALG = 'RSA-OAEP-256';
export const CONTENT_ENC = 'A256GCM';

export interface RsaPublicJwk {
  kty: 'RSA';
  n: string;
  e: string;
}

export interface TenantKeyVersion {
  /** The version's Key Vault key id: `{vaultUrl}/keys/{name}/{version}`. */
  kid: string;
  vaultUrl: string;
  name: string;
  version: string;
  state: VersionState;
  compromised: boolean;
  publicJwk: RsaPublicJwk;
  /** The `exp` the version was created with (cleared in Key Vault when archived). */
  expiresAt?: string;
  createdAt: string;
  activatedAt?: string;
  archivedAt?: string;
  revokedAt?: string;
  compromisedAt?: string;
  requestedBy: string;
  reason?: string;
}

export interface Tenant {
  /** Equals `tenantId` (one document per tenant, in its own partition). */
  id: string;
  tenantId: string;
  topology: Topology;
  state: TenantState;
  adminContacts: string[];
  /** Principal ids allowed to unprotect (when App Service authentication is trusted). */
  allowedCallers: string[];
  /** The version new content is protected with (undefined once revoked). */
  activeKid?: string;
  /** While in `changeover`: when the previous versions stop being accepted for new content. */
  changeoverUntil?: string;
  versions: TenantKeyVersion[];
  createdAt: string;
  updatedAt: string;
  requestedBy: string;
  /** Set by revoke: who asked, and the versions already disabled in Key Vault. */
  revocation?: Revocation;
  /** BYOK: the customer's Entra tenant when it is not Keyturn's (cross-tenant credential). */
  customerTenantId?: string;
  /** BYOK: the access probes' record. */
  access?: AccessRecord;
}

/** BYOK: the access probes' record (rules in `tenantByok.ts`). */
export interface AccessRecord {
  /** The first failed probe of the current run of failures. */
  failingSince?: string;
  failures: number;
  lastProbeAt?: string;
  /** When access was marked lost (the AccessLost notice's id is derived from it). */
  lostAt?: string;
  /** The state to return to when access is back. */
  stateBeforeLoss?: TenantState;
}

export interface Revocation {
  at: string;
  reason: string;
  requestedBy: string;
  disabledKids: string[];
  /** The revoke job carrying it out (step kernel). */
  revokeId?: string;
}

export type NewVersion = Omit<TenantKeyVersion, 'state' | 'compromised' | 'createdAt' | 'activatedAt' | 'archivedAt' | 'revokedAt' | 'compromisedAt'>;

const iso = (d: Date) => d.toISOString();

function refuse(tenant: Pick<Tenant, 'tenantId'>, message: string, details: Record<string, unknown> = {}): KeyturnError {
  return invalidTransition(`Tenant '${tenant.tenantId}': ${message}`, { tenantId: tenant.tenantId, ...details });
}

export function versionOf(tenant: Tenant, kid: string): TenantKeyVersion | undefined {
  return tenant.versions.find((v) => v.kid === kid);
}

function requireVersion(tenant: Tenant, kid: string): TenantKeyVersion {
  const v = versionOf(tenant, kid);
  if (!v) throw refuse(tenant, `no version '${kid}'`, { kid });
  return v;
}

const withVersion = (tenant: Tenant, kid: string, change: (v: TenantKeyVersion) => TenantKeyVersion): TenantKeyVersion[] =>
  tenant.versions.map((v) => (v.kid === kid ? change(v) : v));

/** A tenant as created: its first version already active (creation answers once it is). */
export function newTenant(
  input: { tenantId: string; topology: Topology; adminContacts?: string[]; allowedCallers?: string[]; customerTenantId?: string; requestedBy: string },
  first: NewVersion,
  now: Date,
): Tenant {
  const at = iso(now);
  const tenant: Tenant = {
    ...(input.customerTenantId ? { customerTenantId: input.customerTenantId } : {}),
    id: input.tenantId,
    tenantId: input.tenantId,
    topology: input.topology,
    state: 'active',
    adminContacts: input.adminContacts ?? [],
    allowedCallers: input.allowedCallers ?? [],
    versions: [],
    createdAt: at,
    updatedAt: at,
    requestedBy: input.requestedBy,
  };
  return activateVersion(addPending(tenant, first, now), first.kid, now, 0);
}

/** A new version, not yet used for anything (never published while pending). */
export function addPending(tenant: Tenant, version: NewVersion, now: Date): Tenant {
  if (tenant.state === 'revoked') throw new KeyturnError('TENANT_REVOKED', `Tenant '${tenant.tenantId}' is revoked`, { tenantId: tenant.tenantId });
  if (versionOf(tenant, version.kid)) throw refuse(tenant, `version '${version.kid}' exists already`, { kid: version.kid });
  const pending: TenantKeyVersion = { ...version, state: 'pending', compromised: false, createdAt: iso(now) };
  return { ...tenant, versions: [...tenant.versions, pending], updatedAt: iso(now) };
}

/**
 * pending → active: new content uses it at once. The previous version stays accepted
 * for new content until `now + changeoverMs` (clients cache the published keys), unless
 * it is compromised or the window is 0: then it is archived at once.
 */
export function activateVersion(tenant: Tenant, kid: string, now: Date, changeoverMs: number): Tenant {
  const v = requireVersion(tenant, kid);
  if (v.state !== 'pending') throw refuse(tenant, `version '${kid}' is ${v.state}, only a pending version can become active`, { kid });
  if (tenant.state === 'revoked') throw new KeyturnError('TENANT_REVOKED', `Tenant '${tenant.tenantId}' is revoked`, { tenantId: tenant.tenantId });
  const at = iso(now);
  // A new version in use ends rekey-required or access-lost (a BYOK rekey to a key Keyturn can reach).
  let next: Tenant = {
    ...tenant,
    versions: withVersion(tenant, kid, (x) => ({ ...x, state: 'active', activatedAt: at })),
    activeKid: kid,
    state: tenant.state === 'changeover' ? 'changeover' : 'active',
    updatedAt: at,
  };
  const previous = tenant.activeKid ? versionOf(tenant, tenant.activeKid) : undefined;
  if (previous && previous.state === 'active') {
    if (previous.compromised || changeoverMs <= 0) next = archiveVersion(next, previous.kid, now);
    else next = { ...next, state: 'changeover', changeoverUntil: iso(new Date(now.getTime() + changeoverMs)) };
  }
  return next;
}

/** active → archived, for a version that no longer protects new content (never the one in use). */
export function archiveVersion(tenant: Tenant, kid: string, now: Date): Tenant {
  const v = requireVersion(tenant, kid);
  if (v.state !== 'active') throw refuse(tenant, `version '${kid}' is ${v.state}, only an active version can be archived`, { kid });
  if (tenant.activeKid === kid) throw refuse(tenant, `version '${kid}' protects new content; rekey first`, { kid });
  const at = iso(now);
  const next: Tenant = { ...tenant, versions: withVersion(tenant, kid, (x) => ({ ...x, state: 'archived', archivedAt: at })), updatedAt: at };
  // The changeover ends once no earlier version is still accepted for new content.
  if (next.state === 'changeover' && !next.versions.some((x) => x.state === 'active' && x.kid !== next.activeKid)) {
    next.state = 'active';
    delete next.changeoverUntil;
  }
  return next;
}

/** The versions whose changeover has ended: to archive now. */
export function dueForArchive(tenant: Tenant, now: Date): string[] {
  if (tenant.state !== 'changeover' || !tenant.changeoverUntil || Date.parse(tenant.changeoverUntil) > now.getTime()) return [];
  return tenant.versions.filter((v) => v.state === 'active' && v.kid !== tenant.activeKid).map((v) => v.kid);
}

/**
 * Marks a version compromised: it leaves the published set at once and never protects
 * again, but still opens old content. The version in use can only be compromised by a
 * rekey (a new version must take over first), so this is refused for it.
 */
export function markCompromised(tenant: Tenant, kid: string, now: Date): Tenant {
  const v = requireVersion(tenant, kid);
  if (v.state === 'pending' || v.state === 'revoked') throw refuse(tenant, `version '${kid}' is ${v.state}`, { kid });
  if (tenant.activeKid === kid) throw refuse(tenant, `version '${kid}' protects new content; rekey with compromised: true`, { kid });
  if (v.compromised) return tenant;
  const at = iso(now);
  let next: Tenant = { ...tenant, versions: withVersion(tenant, kid, (x) => ({ ...x, compromised: true, compromisedAt: at })), updatedAt: at };
  if (v.state === 'active') next = archiveVersion(next, kid, now);
  return next;
}

/**
 * A rekey in one transition: the new version is added and activated; the previous one
 * (`fromKid`, the version in use) enters its changeover, or, when `compromised`, is
 * flagged and archived at once (it never protects again, yet opens old content).
 */
export function rekeyTenant(tenant: Tenant, next: NewVersion, options: { fromKid: string; compromised: boolean }, now: Date, changeoverMs: number): Tenant {
  if (tenant.activeKid !== options.fromKid) throw refuse(tenant, `version '${options.fromKid}' is not the one in use`, { kid: options.fromKid });
  let t = addPending(tenant, next, now);
  if (options.compromised) {
    t = { ...t, versions: withVersion(t, options.fromKid, (v) => (v.compromised ? v : { ...v, compromised: true, compromisedAt: iso(now) })) };
  }
  return activateVersion(t, next.kid, now, changeoverMs);
}

/** Revoke: all use stops at once; every version is revoked (content under them stays unreadable). */
export function revokeTenant(
  tenant: Tenant,
  now: Date,
  request: { reason: string; requestedBy: string; revokeId?: string } = { reason: '', requestedBy: 'unknown' },
): Tenant {
  if (tenant.state === 'revoked') return tenant;
  const at = iso(now);
  const next: Tenant = {
    ...tenant,
    state: 'revoked',
    revocation: { at, reason: request.reason, requestedBy: request.requestedBy, disabledKids: [], ...(request.revokeId ? { revokeId: request.revokeId } : {}) },
    versions: tenant.versions.map((v) => (v.state === 'revoked' ? v : { ...v, state: 'revoked', revokedAt: at })),
    updatedAt: at,
  };
  delete next.activeKid;
  delete next.changeoverUntil;
  return next;
}

/**
 * A new key after a revoke: the tenant protects again with it (`active`); the revoked
 * versions stay revoked, so content under them stays unreadable.
 */
export function reinstateTenant(tenant: Tenant, next: NewVersion, now: Date): Tenant {
  if (tenant.state !== 'revoked') throw refuse(tenant, 'only a revoked tenant is given a new key this way');
  if (versionOf(tenant, next.kid)) throw refuse(tenant, `version '${next.kid}' was revoked; name a new key`, { kid: next.kid });
  const at = iso(now);
  const version: TenantKeyVersion = { ...next, state: 'active', compromised: false, createdAt: at, activatedAt: at };
  const { access: _access, ...rest } = tenant;
  void _access;
  return { ...rest, state: 'active', activeKid: next.kid, versions: [...tenant.versions, version], updatedAt: at };
}

/** Records versions disabled in Key Vault after a revoke (idempotent). */
export function recordDisabled(tenant: Tenant, kids: string[], now: Date): Tenant {
  if (tenant.state !== 'revoked' || !tenant.revocation) throw refuse(tenant, 'only a revoked tenant has versions to disable');
  const disabledKids = [...new Set([...tenant.revocation.disabledKids, ...kids])];
  return { ...tenant, revocation: { ...tenant.revocation, disabledKids }, updatedAt: iso(now) };
}

/** What a revoke still has to do: each version not yet disabled in Key Vault. */
export function revocationRemaining(tenant: Tenant): string[] {
  if (tenant.state !== 'revoked') return [];
  const done = new Set(tenant.revocation?.disabledKids ?? []);
  return tenant.versions.filter((v) => !done.has(v.kid)).map((v) => `disable ${v.kid}`);
}

/** What stops a tenant from protecting or opening content, as the error to answer. */
function unusable(tenant: Tenant): KeyturnError | undefined {
  const details = { tenantId: tenant.tenantId };
  if (tenant.state === 'revoked') return new KeyturnError('TENANT_REVOKED', `Tenant '${tenant.tenantId}' is revoked`, details);
  if (tenant.state === 'access-lost') {
    return new KeyturnError('TENANT_ACCESS_LOST', `Keyturn has lost access to the key of tenant '${tenant.tenantId}'; the customer must restore it`, details);
  }
  return undefined;
}

/** The version new content is protected with; refused for a revoked, access-lost or rekey-required tenant. */
export function protectingVersion(tenant: Tenant): TenantKeyVersion {
  const stop = unusable(tenant);
  if (stop) throw stop;
  if (tenant.state === 'rekey-required') {
    throw new KeyturnError('TENANT_REKEY_REQUIRED', `The key of tenant '${tenant.tenantId}' is compromised; the customer must name a new key`, { tenantId: tenant.tenantId });
  }
  const v = tenant.activeKid ? versionOf(tenant, tenant.activeKid) : undefined;
  if (!v || v.state !== 'active' || v.compromised) throw refuse(tenant, 'no version protects new content');
  return v;
}

/**
 * The version a JWE's `kid` names, looked up among the tenant's own versions only
 * (never a URL taken from the JWE). Undefined when it is not one of them, or one that
 * can no longer open content (pending, revoked).
 */
export function openingVersion(tenant: Tenant, kid: string): TenantKeyVersion | undefined {
  const stop = unusable(tenant);
  if (stop) throw stop;
  const v = versionOf(tenant, kid);
  return v && (v.state === 'active' || v.state === 'archived') ? v : undefined;
}

/** The keys accepted for new content: the active one and those in their changeover; never pending or compromised. */
export function publishedVersions(tenant: Tenant): TenantKeyVersion[] {
  if (tenant.state === 'revoked' || tenant.state === 'access-lost' || tenant.state === 'rekey-required') return [];
  const active = tenant.versions.filter((v) => v.state === 'active' && !v.compromised);
  // The one in use first: a client taking the first key uses the newest.
  return [...active.filter((v) => v.kid === tenant.activeKid), ...active.filter((v) => v.kid !== tenant.activeKid)];
}

/** A published key as JWKS-style JSON (no `key_ops`: jose refuses keys that carry them with `use`). */
export function publicKeyEntry(v: TenantKeyVersion) {
  return { kty: 'RSA' as const, n: v.publicJwk.n, e: v.publicJwk.e, kid: v.kid, use: 'enc' as const, alg: CONTENT_ALG };
}

/** The tenant as the API shows it: states and timestamps, never key material beyond public keys. */
export function tenantView(tenant: Tenant) {
  return {
    tenantId: tenant.tenantId,
    topology: tenant.topology,
    state: tenant.state,
    activeKid: tenant.activeKid ?? null,
    changeoverUntil: tenant.changeoverUntil ?? null,
    adminContacts: tenant.adminContacts,
    createdAt: tenant.createdAt,
    updatedAt: tenant.updatedAt,
    versions: tenant.versions.map((v) => ({
      kid: v.kid,
      state: v.state,
      compromised: v.compromised,
      createdAt: v.createdAt,
      activatedAt: v.activatedAt ?? null,
      archivedAt: v.archivedAt ?? null,
      revokedAt: v.revokedAt ?? null,
    })),
  };
}

export type TenantView = ReturnType<typeof tenantView>;
