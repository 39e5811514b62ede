/**
 * In-memory stand-ins for the tenant-key ports: stores with real ETag checks, and a
 * Key Vault that imports real RSA keys and unwraps with them, refusing (as Key Vault
 * does) expired or disabled versions and operations outside their keyOps.
 */
import { type KeyObject, constants, createPrivateKey, createPublicKey, privateDecrypt, randomBytes } from 'node:crypto';
import { ConcurrencyConflict, KeyturnError } from '../../../shared/errors';
import { DEFAULT_KEY_POLICY } from '../../../shared/domain/tenantKeyPolicy';
import type { Rekey } from '../../../shared/domain/tenantRekey';
import type { Tenant } from '../../../shared/domain/tenantKeys';
import { isDue, byDueAt } from '../../../shared/domain/stepKernel';
import type { KeyAttributes, KeyOperation, KeyProperties, KeyRef, Logger, Versioned, VaultKey, VaultKeys } from '../../../shared/ports';
import type { KeyPolicyStore, RekeyStore, TenantStore } from '../../../shared/services/tenants/ports';

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
  imports = 0;
  constructor(private readonly clock: FakeClock) {}

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
      unwrap: async (ref, _alg, wrapped) => {
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
      delete: unsupported,
      recover: unsupported,
      purge: unsupported,
      getDeleted: unsupported,
      wrap: unsupported,
      sign: unsupported,
    };
  }
}
