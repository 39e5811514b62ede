/**
 * Tenant keys, service-managed: creation (an RSA key generated here and imported into
 * Keyturn's vault), the published keys, and content protection. Only Keyturn opens
 * content: the content key is unwrapped by Key Vault (the private key never leaves
 * it) and A256GCM is opened here (`domain/tenantJwe.ts`).
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { KeyturnError, ValidationError, isRefusedInput, notFound } from '../../errors';
import { rsaBitsFor } from '../../domain/tenantKeyPolicy';
import { MAX_PLAINTEXT_BYTES, decryptContent, encryptContent, jweInvalid, parseCompactJwe, wrapContentKey } from '../../domain/tenantJwe';
import {
  CONTENT_ALG,
  type NewVersion,
  type Tenant,
  type Topology,
  openingVersion,
  protectingVersion,
  publicKeyEntry,
  publishedVersions,
} from '../../domain/tenantKeys';
import type { Clock, ImportedJwk, KeyOperation, Logger, VaultKey, VaultKeys } from '../../ports';
import { TENANT_TAG, parseByokKeyUrl } from '../../domain/tenantByok';
import type { CreateRequest } from '../../domain/tenantCreate';
import { type ByokDeps, onboardByokKey } from './byok';
import type { NoticeSink } from './notices';
import type { KeyPolicyStore, TenantStore } from './ports';
import type { TenantKeyEscrow } from './opsPorts';

const generateRsa = promisify(generateKeyPair);

export { TENANT_TAG };
/** Every operation a version in use needs; archiving narrows it to unwrapKey/decrypt. */
export const IN_USE_OPS: KeyOperation[] = ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt'];

export interface TenantSettings {
  /** Keyturn's vault for service-managed keys. */
  vaultUrl: string;
  keyBits: 2048 | 3072 | 4096;
  validityMs: number;
  changeoverMs: number;
}

export interface TenantDeps {
  tenants: TenantStore;
  policies: KeyPolicyStore;
  keys: VaultKeys;
  clock: Clock;
  log: Logger;
  settings: TenantSettings;
  /** BYOK: claims, Key Vault per customer tenant; absent → BYOK refused (unit tests of service-managed keys). */
  byok?: ByokDeps;
  /** Notifications on Keyturn's topic (absent in unit tests that do not look at them). */
  notices?: NoticeSink;
  /** Keeps an escrow copy of each generated key for export (tenant keys part 2; `escrow.ts`). */
  escrow?: TenantKeyEscrow;
  /** Runs a create on the create job (`createJob.ts`, `tenantCreator`); required by `create`. */
  creates?: TenantCreator;
}

/** Creates a tenant on the create job (bound to a store and a runner by the composition root). */
export type TenantCreator = (ctx: { deps: TenantDeps; service: TenantService }, tenantId: string, request: CreateRequest) => Promise<Tenant>;

export interface CreateTenantInput {
  tenantId: string;
  topology: Topology;
  /** BYOK: a key (no version) in the customer's vault. */
  keyUrl?: string;
  customerTenantId?: string;
  adminContacts?: string[];
  allowedCallers?: string[];
  requestedBy: string;
}

/** A fresh, unique Key Vault name: a soft-deleted name stays taken for the retention period. */
export const tenantKeyName = (tenantId: string): string => `tenant-${tenantId}-${randomBytes(4).toString('hex')}`;

export class TenantService {
  constructor(private readonly deps: TenantDeps) {}

  /**
   * Creates the tenant on the create job (`createJob.ts`): a crash at any step resumes
   * with one key; the same body again answers the same tenant (see `createService.ts`).
   */
  async create(input: CreateTenantInput): Promise<Tenant> {
    if (input.topology === 'service-managed' && (input.keyUrl !== undefined || input.customerTenantId !== undefined)) {
      throw new ValidationError(input.keyUrl !== undefined ? 'keyUrl' : 'customerTenantId', 'keyUrl/customerTenantId: only for topology byok; Keyturn makes service-managed keys');
    }
    if (input.topology === 'byok') {
      if (input.keyUrl === undefined) throw new ValidationError('keyUrl', "keyUrl: required for topology byok (a key in the customer's vault)");
      const byok = this.byokDeps();
      parseByokKeyUrl(input.keyUrl, { local: byok.local, ownVaultUrls: byok.ownVaultUrls }); // a bad URL is a 400 before any job
    }
    const creates = this.deps.creates;
    if (!creates) throw new Error('TenantService: no create job store');
    const request: CreateRequest = {
      topology: input.topology,
      ...(input.keyUrl !== undefined ? { keyUrl: input.keyUrl } : {}),
      ...(input.customerTenantId !== undefined ? { customerTenantId: input.customerTenantId } : {}),
      adminContacts: input.adminContacts ?? [],
      allowedCallers: input.allowedCallers?.map((c) => c.toLowerCase()) ?? [],
      requestedBy: input.requestedBy,
    };
    return creates({ deps: this.deps, service: this }, input.tenantId, request);
  }

  private byokDeps(): ByokDeps {
    if (!this.deps.byok) throw new ValidationError('topology', 'topology: byok is not configured on this host');
    return this.deps.byok;
  }

  /**
   * BYOK onboarding checks (each refusal a 400 naming keyUrl); the key is claimed for the
   * tenant by the job `by` (a create or a rekey), so only that job's failure releases it.
   */
  async onboard(tenantId: string, keyUrl: string, customerTenantId: string | undefined, now: Date, by: string) {
    return onboardByokKey(this.byokDeps(), { tenantId, keyUrl, by, ...(customerTenantId ? { customerTenantId } : {}) }, now);
  }

  /** Key Vault as Keyturn for this tenant's key (BYOK in another Entra tenant: the cross-tenant credential). */
  keysOf(tenant: Pick<Tenant, 'topology' | 'customerTenantId'>): VaultKeys {
    return tenant.topology === 'byok' && this.deps.byok ? this.deps.byok.keysFor(tenant.customerTenantId) : this.deps.keys;
  }

  /**
   * The one place a service-managed tenant key is generated (create, rekey, a new key
   * after a revoke): a fresh name unless a new version of `name` is wanted.
   */
  generateTenantKey(tenantId: string, now: Date, name?: string, tags?: Record<string, string>): Promise<VaultKey> {
    return this.newServiceManagedKey(tenantId, now, name, tags);
  }

  /**
   * An RSA key generated here and imported (an escrow copy becomes possible; the
   * backup-and-export issue keeps one). The private key lives only in this call: it is
   * not stored, logged or returned, and is left to the garbage collector right after
   * the import (JavaScript cannot wipe it).
   */
  async newServiceManagedKey(tenantId: string, now: Date, name: string = tenantKeyName(tenantId), tags: Record<string, string> = {}): Promise<VaultKey> {
    const { keys, policies, settings } = this.deps;
    const bits = rsaBitsFor(settings.keyBits, await policies.current());
    const { privateKey } = await generateRsa('rsa', { modulusLength: bits });
    const jwk = privateKey.export({ format: 'jwk' }) as ImportedJwk;
    const key = await keys.import(settings.vaultUrl, name, jwk, {
      keyOps: IN_USE_OPS,
      expiresOn: new Date(now.getTime() + settings.validityMs),
      tags: { ...tags, [TENANT_TAG]: tenantId },
    });
    await this.deps.escrow?.keep(tenantId, key, privateKey); // before the version is recorded
    return key;
  }

  async get(tenantId: string): Promise<Tenant> {
    const stored = await this.deps.tenants.read(tenantId);
    if (!stored) throw notFound(`Tenant '${tenantId}'`, { tenantId });
    return stored.doc;
  }

  /** The keys accepted for new content (JWKS-like). */
  async publishedKeys(tenantId: string) {
    return { keys: publishedVersions(await this.get(tenantId)).map(publicKeyEntry) };
  }

  async protect(tenantId: string, plaintext: Uint8Array): Promise<{ jwe: string; kid: string }> {
    if (plaintext.length > MAX_PLAINTEXT_BYTES) throw new ValidationError('plaintext', `plaintext: at most ${MAX_PLAINTEXT_BYTES} bytes`);
    const version = protectingVersion(await this.get(tenantId));
    const cek = randomBytes(32);
    const jwe = encryptContent({ kid: version.kid, cek, iv: randomBytes(12), encryptedKey: wrapContentKey(version.publicJwk, cek), plaintext });
    cek.fill(0);
    return { jwe, kid: version.kid };
  }

  /**
   * Opens content of this tenant: the `kid` is looked up among its own versions only
   * (never a URL from the JWE), the content key is unwrapped by Key Vault, then
   * A256GCM is opened here. Anything malformed or tampered with is JWE_INVALID.
   */
  async unprotect(tenantId: string, jwe: string, caller: Caller = { authenticated: false }): Promise<{ plaintext: Buffer; kid: string }> {
    const tenant = await this.get(tenantId);
    authorize(tenant, caller);
    const parsed = parseCompactJwe(jwe);
    const version = openingVersion(tenant, parsed.kid);
    if (!version) throw jweInvalid("kid is not one of this tenant's key versions");
    let cek: Uint8Array;
    try {
      cek = await this.keysOf(tenant).unwrap({ vaultUrl: version.vaultUrl, name: version.name, version: version.version }, CONTENT_ALG, parsed.encryptedKey);
    } catch (e) {
      // Key Vault refusing the bytes (not a wrapped key for this version) is the caller's input.
      if (isRefusedInput(e)) throw jweInvalid('the encrypted key does not open with this version');
      throw e;
    }
    try {
      return { plaintext: decryptContent(parsed, cek), kid: version.kid };
    } finally {
      cek.fill(0);
    }
  }
}

/**
 * Who calls unprotect: with App Service authentication trusted, its principal id;
 * otherwise only the function key vouches for the caller (see docs/tenant-keys.md).
 */
export type Caller = { authenticated: true; principalId: string } | { authenticated: false };

function authorize(tenant: Tenant, caller: Caller): void {
  if (!caller.authenticated || tenant.allowedCallers.length === 0) return;
  if (!tenant.allowedCallers.includes(caller.principalId.toLowerCase())) {
    throw new KeyturnError('CALLER_NOT_ALLOWED', `The caller may not open the content of tenant '${tenant.tenantId}'`, { tenantId: tenant.tenantId });
  }
}

/** A vault key as a tenant's new version. */
export function versionOf(key: VaultKey, requestedBy: string, reason?: string): NewVersion {
  const jwk = key.publicJwk;
  if (jwk?.kty !== 'RSA' || !jwk.n || !jwk.e) throw new KeyturnError('DEPENDENCY_FAILED', 'Key Vault returned no RSA public key for the tenant key');
  const { vaultUrl, name, version } = key.properties;
  return {
    kid: `${vaultUrl}/keys/${name}/${version}`,
    vaultUrl,
    name,
    version,
    publicJwk: { kty: 'RSA', n: jwk.n, e: jwk.e },
    ...(key.properties.expiresOn ? { expiresAt: key.properties.expiresOn.toISOString() } : {}),
    requestedBy,
    ...(reason ? { reason } : {}),
  };
}
