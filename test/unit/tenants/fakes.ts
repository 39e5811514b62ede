/**
 * In-memory stand-ins for the tenant-key ports: stores with real ETag checks, and a
 * Key Vault that imports real RSA keys and unwraps with them, refusing (as Key Vault
 * does) expired or disabled versions and operations outside their keyOps.
 */
import { type KeyObject, constants, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes } from 'node:crypto';
import { ConcurrencyConflict, KeyturnError } from '../../../shared/errors';
import { DEFAULT_KEY_POLICY } from '../../../shared/domain/tenantKeyPolicy';
import type { Rekey } from '../../../shared/domain/tenantRekey';
import type { Revoke } from '../../../shared/domain/tenantRevoke';
import type { TenantNotice } from '../../../shared/domain/tenantNotice';
import { type ByokKeyRef, claimId } from '../../../shared/domain/tenantByok';
import type { Tenant } from '../../../shared/domain/tenantKeys';
import { isDue, byDueAt } from '../../../shared/domain/stepKernel';
import type { KeyAttributes, KeyOperation, KeyProperties, KeyRef, Logger, Versioned, VaultKey, VaultKeys } from '../../../shared/ports';
import type { CreateStore, KeyClaimStore, KeyPolicyStore, NoticeStore, RekeyStore, RevokeStore, TenantStore } from '../../../shared/services/tenants/ports';
import type { TenantCreate } from '../../../shared/domain/tenantCreate';
import { type FaultPoints, noFaults } from '../../../shared/ports';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { tenantCreator } from '../../../shared/services/tenants/createJob';
import type { TenantCreator } from '../../../shared/services/tenants/tenantService';
import type { Notifier } from '../../../shared/ports';

export const VAULT = 'https://keyturn-test.vault.azure.net';
export const silentLog: Logger = { info() {}, warn() {}, error() {} };

export class FakeClock {
  constructor(public time: Date) {}
  now = async () => new Date(this.time);
  advance(ms: number): void {
    this.time = new Date(this.time.getTime() + ms);
  }
}

class Docs<T extends { id: string }> {
  readonly docs = new Map<string, { doc: T; etag: string }>();
  private n = 0;
  read(id: string): Versioned<T> | undefined {
    const d = this.docs.get(id);
    return d ? { doc: structuredClone(d.doc), etag: d.etag } : undefined;
  }
  createOnly(doc: T): Versioned<T> | undefined {
    if (this.docs.has(doc.id)) return undefined;
    const etag = `e${++this.n}`;
    this.docs.set(doc.id, { doc: structuredClone(doc), etag });
    return { doc: structuredClone(doc), etag };
  }
  replace(doc: T, etag: string): Versioned<T> {
    const d = this.docs.get(doc.id);
    if (!d || d.etag !== etag) throw new ConcurrencyConflict('changed', doc.id);
    const next = `e${++this.n}`;
    this.docs.set(doc.id, { doc: structuredClone(doc), etag: next });
    return { doc: structuredClone(doc), etag: next };
  }
}

export class FakeTenants implements TenantStore {
  readonly store = new Docs<Tenant>();
  read = async (id: string) => this.store.read(id);
  createOnly = async (t: Tenant) => {
    const v = this.store.createOnly(t);
    return v ? { created: true as const, value: v } : { created: false as const };
  };
  replace = async (t: Tenant, etag: string) => this.store.replace(t, etag);
  /** Tenants not revoked, in pages of `maxItems` (the continuation is the next index). */
  livePage = async (page: { maxItems: number; continuation?: string }) => {
    const all = [...this.store.docs.values()].map((d) => structuredClone(d.doc)).filter((t) => t.state !== 'revoked');
    const from = Number(page.continuation ?? 0);
    const next = from + page.maxItems;
    return { items: all.slice(from, next), ...(next < all.length ? { continuation: String(next) } : {}) };
  };
}

class FakeJobs<J extends { id: string; dueAt?: string }> {
  readonly store = new Docs<J>();
  read = async (id: string) => this.store.read(id);
  createOnly = async (j: J) => this.store.createOnly(j) !== undefined;
  replace = async (j: J, etag: string) => this.store.replace(j, etag);
  due = async (now: Date, limit: number) => [...this.store.docs.values()].map((d) => structuredClone(d.doc)).filter((j) => isDue(j, now)).sort(byDueAt).slice(0, limit);
}
export class FakeRevokes extends FakeJobs<Revoke> implements RevokeStore {}
export class FakeNotices extends FakeJobs<TenantNotice> implements NoticeStore {}

/** Keyturn's topic in memory: every published event, in order. */
export class FakeNotifier implements Notifier {
  readonly events: { id?: string; eventType: string; data: Record<string, unknown> }[] = [];
  publish = async (e: { id?: string; eventType: string; subject: string; data: Record<string, unknown> }) => {
    this.events.push({ ...(e.id ? { id: e.id } : {}), eventType: e.eventType, data: e.data });
  };
}

/** Claims as the Cosmos store keeps them: a holder and the job that took the claim (only that job's failure frees it). */
export class FakeClaims implements KeyClaimStore {
  readonly held = new Map<string, string>();
  readonly by = new Map<string, string>();
  claim = async (key: ByokKeyRef, tenantId: string, _now?: Date, by = '') => {
    const id = claimId(key);
    const holder = this.held.get(id);
    if (holder === undefined) {
      this.held.set(id, tenantId);
      this.by.set(id, by);
    }
    return (holder ?? tenantId) === tenantId;
  };
  holder = async (key: ByokKeyRef) => this.held.get(claimId(key));
  release = async (key: ByokKeyRef, tenantId: string, _now?: Date, by = '') => {
    const id = claimId(key);
    if (this.held.get(id) === tenantId && this.by.get(id) === by) {
      this.held.delete(id);
      this.by.delete(id);
    }
  };
}

export class FakeCreates extends FakeJobs<TenantCreate> implements CreateStore {}

/**
 * `TenantDeps.creates` over an in-memory store: the real create job on a real step
 * runner (`faults` make one "process" crash at a step boundary).
 */
export function fakeCreator(clock: FakeClock, options: { store?: FakeCreates; faults?: FaultPoints; owner?: string; waitMs?: number } = {}): TenantCreator {
  const runner = new StepRunner({ clock, faults: options.faults ?? noFaults, log: silentLog, owner: options.owner ?? 'test-host' });
  return tenantCreator({ store: options.store ?? new FakeCreates(), runner, leaseMs: 300_000, maxAttempts: 5, ...(options.waitMs !== undefined ? { waitMs: options.waitMs } : {}) });
}

export class FakeRekeys implements RekeyStore {
  readonly store = new Docs<Rekey>();
  read = async (id: string) => this.store.read(id);
  createOnly = async (j: Rekey) => this.store.createOnly(j) !== undefined;
  replace = async (j: Rekey, etag: string) => this.store.replace(j, etag);
  due = async (now: Date, limit: number) => [...this.store.docs.values()].map((d) => structuredClone(d.doc)).filter((j) => isDue(j, now)).sort(byDueAt).slice(0, limit);
}

export const defaultPolicies: KeyPolicyStore = { current: async () => DEFAULT_KEY_POLICY };

interface Version {
  properties: KeyProperties;
  privateKey: KeyObject;
  keyOps: KeyOperation[];
}

/** Key Vault in memory: versions per name, real RSA. Counts imports. */
export class FakeVault {
  readonly versions = new Map<string, Version[]>();
  /** Names Keyturn has no role on (every call answers 403). */
  readonly denied = new Set<string>();
  readonly deleted: string[] = [];
  imports = 0;
  constructor(private readonly clock: FakeClock) {}

  /** A key the customer made (BYOK): a new version of `name` with its tags. */
  async customerKey(vaultUrl: string, name: string, tags: Record<string, string>): Promise<KeyProperties> {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const version: Version = {
      privateKey,
      keyOps: ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt', 'sign', 'verify'],
      properties: { vaultUrl, name, version: randomBytes(16).toString('hex'), enabled: true, tags: { ...tags }, createdOn: await this.clock.now() },
    };
    this.versions.set(name, [...(this.versions.get(name) ?? []), version]);
    return version.properties;
  }

  private guard(ref: { name: string }): void {
    if (this.denied.has(ref.name)) throw new KeyturnError('ACCESS_DENIED', 'forbidden', { statusCode: 403 });
  }

  private find(ref: KeyRef): Version | undefined {
    const list = this.versions.get(ref.name) ?? [];
    return ref.version ? list.find((v) => v.properties.version === ref.version) : list.at(-1);
  }

  port(): VaultKeys {
    const unsupported = async () => {
      throw new Error('not in the fake');
    };
    const view = (v: Version): VaultKey => {
      const { n, e } = createPublicKey(v.privateKey).export({ format: 'jwk' }) as { n: string; e: string };
      return { properties: { ...v.properties, keyOps: [...v.keyOps], tags: { ...v.properties.tags } }, publicJwk: { kty: 'RSA', n, e } };
    };
    return {
      import: async (vaultUrl, name, jwk, attributes: KeyAttributes = {}) => {
        this.imports++;
        const privateKey = createPrivateKey({ key: jwk as never, format: 'jwk' });
        const version: Version = {
          privateKey,
          keyOps: attributes.keyOps ?? ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt'],
          properties: {
            vaultUrl,
            name,
            version: randomBytes(16).toString('hex'),
            enabled: attributes.enabled ?? true,
            tags: { ...(attributes.tags ?? {}) },
            ...(attributes.expiresOn ? { expiresOn: attributes.expiresOn } : {}),
            createdOn: await this.clock.now(),
          },
        };
        this.versions.set(name, [...(this.versions.get(name) ?? []), version]);
        return view(version);
      },
      get: async (ref) => {
        this.guard(ref);
        const v = this.find(ref);
        return v ? view(v) : undefined;
      },
      versions: async (_url, name) => (this.versions.get(name) ?? []).map((v) => ({ ...v.properties, tags: { ...v.properties.tags } })),
      update: async (ref, changes) => {
        const v = this.find(ref);
        if (!v) throw new KeyturnError('NOT_FOUND', 'no such key');
        if (changes.enabled !== undefined) v.properties.enabled = changes.enabled;
        if (changes.keyOps) v.keyOps = [...changes.keyOps];
        if (changes.expiresOn === null) delete v.properties.expiresOn;
        else if (changes.expiresOn) v.properties.expiresOn = changes.expiresOn;
        if (changes.tags) v.properties.tags = { ...changes.tags };
        return { ...v.properties };
      },
      wrap: async (ref, _alg, key) => {
        this.guard(ref);
        const v = this.find(ref);
        if (!v) throw new KeyturnError('NOT_FOUND', 'no such key');
        if (!v.properties.enabled || !v.keyOps.includes('wrapKey')) throw new KeyturnError('ACCESS_DENIED', 'refused', { statusCode: 403 });
        return publicEncrypt({ key: createPublicKey(v.privateKey), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, key);
      },
      delete: async (_url, name) => {
        if (!this.versions.delete(name)) throw new KeyturnError('NOT_FOUND', 'no such key');
        this.deleted.push(name);
      },
      unwrap: async (ref, _alg, wrapped) => {
        this.guard(ref);
        const v = this.find(ref);
        if (!v) throw new KeyturnError('NOT_FOUND', 'no such key');
        const now = await this.clock.now();
        if (!v.properties.enabled || (v.properties.expiresOn && v.properties.expiresOn <= now) || !v.keyOps.includes('unwrapKey')) {
          throw new KeyturnError('ACCESS_DENIED', 'refused', { statusCode: 403 });
        }
        try {
          return privateDecrypt({ key: v.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrapped);
        } catch {
          throw new KeyturnError('DEPENDENCY_FAILED', 'bad input', { statusCode: 400 });
        }
      },
      create: unsupported,
      rotate: unsupported,
      backup: unsupported,
      restore: unsupported,
      recover: unsupported,
      purge: unsupported,
      getDeleted: unsupported,
      sign: unsupported,
    };
  }
}
