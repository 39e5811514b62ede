/**
 * In-memory stand-ins for part 2's ports, on top of the tenant fakes: a Key Vault that
 * also creates keys (the escrow key), backs up, soft-deletes, recovers, purges and
 * restores (counting each); Blob storage with create-only writes; job stores with real
 * ETag checks; a notifier that records. Only Azure itself cannot run here.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { KeyturnError } from '../../../shared/errors';
import { byDueAt, isDue } from '../../../shared/domain/stepKernel';
import type { TenantBackup, TenantRestore } from '../../../shared/domain/tenantBackups';
import type { TenantExport } from '../../../shared/domain/tenantExports';
import type { Notifier, VaultKeys } from '../../../shared/ports';
import type { BackupStore, BlobObjects, ExportStore, RestoreStore, StoredBlob } from '../../../shared/services/tenants/opsPorts';
import { ConcurrencyConflict } from '../../../shared/errors';
import { FakeClock, FakeVault } from '../tenants/fakes';

type Entry = FakeVault['versions'] extends Map<string, infer V> ? V : never;

export class OpsVault extends FakeVault {
  readonly softDeleted = new Map<string, Entry>();
  readonly backups = new Map<string, { name: string; versions: Entry }>();
  counts = { recover: 0, restore: 0, create: 0 };
  /** As Key Vault Crypto Officer (Keyturn's role on its vault): no `deletedKeys/read`, recover allowed. */
  deletedReadForbidden = false;

  constructor(private readonly c: FakeClock) {
    super(c);
  }

  override port(): VaultKeys {
    const base = super.port();
    const notFound = () => new KeyturnError('NOT_FOUND', 'no such key');
    return {
      ...base,
      create: async (vaultUrl, name, spec, attributes = {}) => {
        this.counts.create++;
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: spec.kty === 'RSA' ? (spec.size ?? 2048) : 2048 });
        const jwk = privateKey.export({ format: 'jwk' }) as Record<string, string>;
        return base.import(vaultUrl, name, { ...jwk, kty: 'RSA' }, attributes);
      },
      backup: async (_vaultUrl, name) => {
        const versions = this.versions.get(name);
        if (!versions) throw notFound();
        const id = randomBytes(16).toString('hex');
        this.backups.set(id, { name, versions: versions.map((v) => ({ ...v, properties: { ...v.properties }, keyOps: [...v.keyOps] })) as never });
        return Buffer.from(`fake-backup:${id}`);
      },
      restore: async (_vaultUrl, bytes) => {
        const id = Buffer.from(bytes).toString('utf8').replace(/^fake-backup:/, '');
        const b = this.backups.get(id);
        if (!b) throw new KeyturnError('DEPENDENCY_FAILED', 'not a backup', { statusCode: 400 });
        if (this.versions.has(b.name) || this.softDeleted.has(b.name)) throw new KeyturnError('CONFLICT', 'name in use');
        this.counts.restore++;
        this.versions.set(b.name, b.versions as never);
        return (await base.get({ vaultUrl: _vaultUrl, name: b.name }))!;
      },
      delete: async (_vaultUrl, name) => {
        const v = this.versions.get(name);
        if (!v) throw notFound();
        this.versions.delete(name);
        this.softDeleted.set(name, v as never);
      },
      getDeleted: async (_vaultUrl, name) => {
        if (this.deletedReadForbidden) throw new KeyturnError('ACCESS_DENIED', 'Key Vault could not read the deleted a key; retry later', { statusCode: 403 });
        return this.softDeleted.has(name) ? { name } : undefined;
      },
      recover: async (vaultUrl, name) => {
        const v = this.softDeleted.get(name);
        if (!v) throw notFound();
        this.counts.recover++;
        this.softDeleted.delete(name);
        this.versions.set(name, v as never);
        return (await base.get({ vaultUrl, name }))!;
      },
      purge: async (_vaultUrl, name) => {
        if (!this.softDeleted.delete(name)) throw notFound();
      },
    };
  }
}

export class FakeBlobs implements BlobObjects {
  readonly blobs = new Map<string, StoredBlob>();
  writes = 0;
  failNextPut = false;
  putOnly = async (container: string, name: string, bytes: Uint8Array, metadata: Record<string, string> = {}) => {
    if (this.failNextPut) {
      this.failNextPut = false;
      throw new KeyturnError('DEPENDENCY_FAILED', 'storage down');
    }
    const key = `${container}/${name}`;
    if (this.blobs.has(key)) return false;
    this.writes++;
    this.blobs.set(key, { bytes: Buffer.from(bytes), metadata: { ...metadata } });
    return true;
  };
  get = async (container: string, name: string) => {
    const b = this.blobs.get(`${container}/${name}`);
    return b ? { bytes: Buffer.from(b.bytes), metadata: { ...b.metadata } } : undefined;
  };
  delete = async (container: string, name: string) => {
    this.blobs.delete(`${container}/${name}`);
  };
  in(container: string): string[] {
    return [...this.blobs.keys()].filter((k) => k.startsWith(`${container}/`));
  }
}

class JobDocs<J extends { id: string; dueAt?: string }> {
  readonly docs = new Map<string, { doc: J; etag: string }>();
  private n = 0;
  read = async (id: string) => {
    const d = this.docs.get(id);
    return d ? { doc: structuredClone(d.doc), etag: d.etag } : undefined;
  };
  createOnly = async (doc: J) => {
    if (this.docs.has(doc.id)) return false;
    this.docs.set(doc.id, { doc: structuredClone(doc), etag: `e${++this.n}` });
    return true;
  };
  replace = async (doc: J, etag: string) => {
    const d = this.docs.get(doc.id);
    if (!d || d.etag !== etag) throw new ConcurrencyConflict('changed', doc.id);
    const next = `e${++this.n}`;
    this.docs.set(doc.id, { doc: structuredClone(doc), etag: next });
    return { doc: structuredClone(doc), etag: next };
  };
  due = async (now: Date, limit: number) => this.all().filter((j) => isDue(j, now)).sort(byDueAt).slice(0, limit);
  all = () => [...this.docs.values()].map((d) => structuredClone(d.doc));
}

export class FakeRestores extends JobDocs<TenantRestore> implements RestoreStore {
  running = async (tenantId: string) => this.all().filter((j) => j.tenantId === tenantId && j.status === 'active');
}

export class FakeExports extends JobDocs<TenantExport> implements ExportStore {}

export class FakeBackups implements BackupStore {
  readonly records = new Map<string, TenantBackup>();
  create = async (b: TenantBackup) => void this.records.set(b.id, structuredClone(b));
  read = async (_t: string, id: string) => structuredClone(this.records.get(id));
  list = async (t: string, limit: number) => [...this.records.values()].filter((b) => b.tenantId === t).reverse().slice(0, limit);
}

export class FakeNotifier implements Notifier {
  readonly events: { id?: string; eventType: string; subject: string; data: Record<string, unknown> }[] = [];
  publish = async (e: { id?: string; eventType: string; subject: string; data: Record<string, unknown> }) => void this.events.push(structuredClone(e));
  ids = (eventType: string) => this.events.filter((e) => e.eventType === eventType).map((e) => e.id);
}
