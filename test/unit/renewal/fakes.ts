/**
 * In-memory fakes of the renewal ports. The secret store enforces the consumer
 * invariants as it goes: a managed secret's new version must hold a value the provider
 * verified, and the latest version may never be disabled.
 */
import { ConcurrencyConflict } from '../../../shared/errors';
import type { Rotation } from '../../../shared/domain/rotation';
import { byDueAt, isDue } from '../../../shared/domain/stepKernel';
import type { Clock, Logger, Notifier, Versioned } from '../../../shared/ports';
import {
  type CredentialProvider,
  type IdempotencyRecord,
  type IdempotencyStore,
  type RotationStore,
  type SecretProps,
  type SecretStore,
  SecretValue,
} from '../../../shared/services/renewal/ports';
import type { DeadLetter, DeadLetterStore, RefusedEvent } from '../../../shared/services/events/ports';

export class FakeClock implements Clock {
  constructor(public time = new Date('2030-01-01T00:00:00Z')) {}
  async now() {
    return new Date(this.time);
  }
  advance(ms: number) {
    this.time = new Date(this.time.getTime() + ms);
  }
}

export class FakeRotations implements RotationStore {
  docs = new Map<string, Versioned<Rotation>>();
  /** Runs before each replace is applied (to hold one worker at a chosen point). */
  beforeReplace?: (doc: Rotation) => Promise<void>;
  private etags = 0;
  private put(doc: Rotation): Versioned<Rotation> {
    const stored = { doc: JSON.parse(JSON.stringify(doc)) as Rotation, etag: `"${++this.etags}"` };
    this.docs.set(doc.id, stored);
    return { doc: JSON.parse(JSON.stringify(stored.doc)), etag: stored.etag };
  }
  async create(r: Rotation) {
    await tick();
    if (this.docs.has(r.id)) throw new ConcurrencyConflict('exists', r.id);
    return this.put(r);
  }
  async read(id: string) {
    await tick();
    const v = this.docs.get(id);
    return v ? { doc: JSON.parse(JSON.stringify(v.doc)) as Rotation, etag: v.etag } : undefined;
  }
  async replace(r: Rotation, etag: string) {
    await tick();
    if (this.beforeReplace) await this.beforeReplace(JSON.parse(JSON.stringify(r)) as Rotation);
    if (this.docs.get(r.id)?.etag !== etag) throw new ConcurrencyConflict('changed', r.id);
    return this.put(r);
  }
  async due(now: Date, limit: number) {
    return [...this.docs.values()]
      .map((v) => v.doc)
      .filter((r) => isDue(r, now)) // the kernel's due rule, as the Cosmos DB query has it
      .sort(byDueAt)
      .slice(0, limit);
  }
  async forCredential(vault: string, name: string) {
    const key = `${vault.toLowerCase()}:${name.toLowerCase()}`;
    return [...this.docs.values()].map((v) => JSON.parse(JSON.stringify(v.doc)) as Rotation).filter((r) => r.credentialId === key);
  }
  /** Queries the rotation store answered for credential sets (one per listing page). */
  setQueries = 0;
  async forCredentials(vault: string, names: string[]) {
    await tick();
    this.setQueries++;
    const keys = new Set(names.map((n) => `${vault.toLowerCase()}:${n.toLowerCase()}`));
    return [...this.docs.values()].map((v) => JSON.parse(JSON.stringify(v.doc)) as Rotation).filter((r) => keys.has(r.credentialId));
  }
  all(): Rotation[] {
    return [...this.docs.values()].map((v) => v.doc);
  }
}

/** Lets other promises run between store calls, so concurrent workers really interleave. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

interface StoredVersion extends SecretProps {
  value: string;
}

/**
 * A write that goes wrong the way the SDK can:
 * `commits` versions land (an SDK retry after a lost response writes a second), then
 * the answer is lost (`lost`: the call throws) or the last version is returned.
 */
export interface WriteFault {
  commits: number;
  lost: boolean;
}

export class FakeSecrets implements SecretStore {
  entries = new Map<string, { name: string; versions: StoredVersion[] }>();
  writes: { vault: string; name: string; version: string }[] = [];
  /** Values a provider verified; only these may become a managed secret's new version. */
  verified = new Set<string>();
  /** Applied, in order, to the next writes of a managed secret. */
  writeFaults: WriteFault[] = [];
  /** Applied, in order, to the next writes of a `--pending` secret. */
  pendingWriteFaults: WriteFault[] = [];
  /** False: writes report no send count (a store that cannot tell), so nothing may be skipped. */
  countsAttempts = true;
  /** Runs after a write landed, before its answer returns (a slow answer). */
  afterCommit?: (props: SecretProps) => Promise<void>;
  /** `versions()` of a managed secret leaves out its newest N versions (a listing that lags behind). */
  listingLag = 0;
  private seq = 0;
  constructor(private readonly clock: FakeClock) {}

  private key = (vault: string, name: string) => `${vault.toLowerCase()}|${name.toLowerCase()}`;
  private strip = ({ value, ...props }: StoredVersion): SecretProps => (void value, { ...props, tags: { ...props.tags } });

  seed(vault: string, name: string, value: string, options: { tags: Record<string, string>; expiresOn?: Date }): SecretProps {
    return this.put(vault, name, value, options);
  }
  private put(vault: string, name: string, value: string, options: { tags: Record<string, string>; expiresOn?: Date; contentType?: string }) {
    const k = this.key(vault, name);
    const entry = this.entries.get(k) ?? { name, versions: [] };
    this.entries.set(k, entry);
    const seq = ++this.seq;
    const v: StoredVersion = {
      name: entry.name,
      version: seq.toString(16).padStart(32, '0'),
      enabled: true,
      tags: { ...options.tags },
      createdOn: new Date(this.clock.time.getTime() + seq),
      value,
      ...(options.expiresOn ? { expiresOn: options.expiresOn } : {}),
      ...(options.contentType ? { contentType: options.contentType } : {}),
    };
    entry.versions.push(v);
    return this.strip(v);
  }
  async latest(vault: string, name: string) {
    await tick();
    const v = this.entries.get(this.key(vault, name))?.versions.at(-1);
    return v ? this.strip(v) : undefined;
  }
  async versions(vault: string, name: string) {
    await tick();
    const all = this.entries.get(this.key(vault, name))?.versions ?? [];
    const listed = this.listingLag > 0 && !name.endsWith('--pending') ? all.slice(0, Math.max(0, all.length - this.listingLag)) : all;
    return listed.map(this.strip);
  }
  async list(vault: string) {
    return [...this.entries.entries()]
      .filter(([k]) => k.startsWith(`${vault.toLowerCase()}|`))
      .map(([, e]) => ({ name: e.name, tags: { ...e.versions.at(-1)!.tags } }));
  }
  /** Pages as Key Vault does: sorted by name, at most `maxItems`, an opaque offset as continuation. */
  listCalls = 0;
  async listPage(vault: string, page: { maxItems: number; continuation?: string }) {
    await tick();
    this.listCalls++;
    const all = [...this.entries.entries()]
      .filter(([k]) => k.startsWith(`${vault.toLowerCase()}|`))
      .map(([k, e]) => ({ k, e }))
      .sort((a, b) => a.k.localeCompare(b.k));
    const start = page.continuation ? Number(Buffer.from(page.continuation, 'base64url').toString()) : 0;
    if (!Number.isInteger(start)) throw new Error('bad continuation');
    const size = Math.min(page.maxItems, 25);
    const items = all.slice(start, start + size).map(({ e }) => {
      const { version: _v, ...listed } = this.strip(e.versions.at(-1)!);
      return listed;
    });
    const more = start + size < all.length;
    return { items, ...(more ? { continuation: Buffer.from(String(start + size)).toString('base64url') } : {}) };
  }
  async read(vault: string, name: string, version: string) {
    await tick();
    const v = this.entries.get(this.key(vault, name))?.versions.find((x) => x.version === version);
    if (!v) throw Object.assign(new Error('SecretNotFound'), { statusCode: 404 });
    if (!v.enabled) throw Object.assign(new Error('Operation get is not allowed on a disabled secret.'), { statusCode: 403 });
    return new SecretValue(v.value);
  }
  async write(vault: string, name: string, value: SecretValue, options: { tags: Record<string, string>; expiresOn?: Date; contentType?: string }) {
    await tick();
    if (!name.endsWith('--pending') && !this.verified.has(value.reveal())) {
      throw new Error(`INVARIANT: an unverified value was written as the latest version of ${name}`);
    }
    const fault = name.endsWith('--pending') ? this.pendingWriteFaults.shift() : this.writeFaults.shift();
    let props!: SecretProps;
    for (let i = 0; i < (fault?.commits ?? 1); i++) {
      props = this.put(vault, name, value.reveal(), options);
      this.writes.push({ vault, name, version: props.version });
    }
    if (this.afterCommit) await this.afterCommit(props);
    if (fault?.lost) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    // As the Key Vault store counts them: each landed version was one send of the write.
    return this.countsAttempts ? { ...props, attempts: fault?.commits ?? 1 } : props;
  }
  async update(vault: string, name: string, version: string, changes: { enabled?: boolean; tags?: Record<string, string> }) {
    await tick();
    const versions = this.entries.get(this.key(vault, name))?.versions ?? [];
    const v = versions.find((x) => x.version === version);
    if (!v) throw Object.assign(new Error('SecretNotFound'), { statusCode: 404 });
    if (changes.enabled === false && !name.endsWith('--pending') && versions.at(-1) === v) {
      throw new Error(`INVARIANT: the latest version of ${name} was disabled`);
    }
    if (changes.enabled !== undefined) v.enabled = changes.enabled;
    if (changes.tags) v.tags = { ...changes.tags };
  }
  /** What a consumer gets: the latest version's value (throws when disabled, like Key Vault's 403). */
  consumerRead(vault: string, name: string): string {
    const v = this.entries.get(this.key(vault, name))!.versions.at(-1)!;
    if (!v.enabled) throw new Error('disabled latest version');
    return v.value;
  }
  all(vault: string, name: string): StoredVersion[] {
    return this.entries.get(this.key(vault, name))?.versions ?? [];
  }
  values(): string[] {
    return [...this.entries.values()].flatMap((e) => e.versions.map((v) => v.value));
  }
}

/** Wraps a provider so every value it verified is allowed into the managed secret. */
export function recordingVerified(provider: CredentialProvider, secrets: FakeSecrets): CredentialProvider & { verifyCalls: number } {
  const wrapped = {
    kind: provider.kind,
    verifyCalls: 0,
    create: provider.create.bind(provider),
    findTagged: provider.findTagged.bind(provider),
    remove: provider.remove.bind(provider),
    async verify(...args: Parameters<CredentialProvider['verify']>) {
      wrapped.verifyCalls++;
      await provider.verify(...args);
      secrets.verified.add(args[1].reveal());
    },
  };
  return wrapped;
}

export class FakeDeadLetters implements DeadLetterStore {
  letters = new Map<string, DeadLetter>();
  constructor(private readonly clock: { now(): Promise<Date> } = { now: async () => new Date() }) {}
  async record(letter: RefusedEvent) {
    const receivedAt = (await this.clock.now()).toISOString();
    this.letters.set(letter.id, JSON.parse(JSON.stringify({ ...letter, receivedAt })));
  }
}

export class FakeNotifier implements Notifier {
  events: { eventType: string; subject: string; data: Record<string, unknown>; id?: string }[] = [];
  async publish(event: { eventType: string; subject: string; data: Record<string, unknown>; id?: string }) {
    this.events.push(JSON.parse(JSON.stringify(event)));
  }
}

export class MemoryLogger implements Logger {
  lines: string[] = [];
  private add = (level: string) => (m: string, p?: Record<string, unknown>) => void this.lines.push(`${level} ${m} ${p ? JSON.stringify(p) : ''}`);
  info = this.add('info');
  warn = this.add('warn');
  error = this.add('error');
}

export class FakeIdempotency implements IdempotencyStore {
  docs = new Map<string, Versioned<IdempotencyRecord>>();
  private etags = 0;
  private put(doc: IdempotencyRecord) {
    const stored = { doc: JSON.parse(JSON.stringify(doc)) as IdempotencyRecord, etag: `"${++this.etags}"` };
    this.docs.set(doc.id, stored);
    return { doc: JSON.parse(JSON.stringify(stored.doc)) as IdempotencyRecord, etag: stored.etag };
  }
  async create(doc: IdempotencyRecord) {
    await tick();
    if (this.docs.has(doc.id)) throw new ConcurrencyConflict('exists', doc.id);
    return this.put(doc);
  }
  async read(id: string) {
    await tick();
    const v = this.docs.get(id);
    return v ? { doc: JSON.parse(JSON.stringify(v.doc)) as IdempotencyRecord, etag: v.etag } : undefined;
  }
  async replace(doc: IdempotencyRecord, etag: string) {
    await tick();
    if (this.docs.get(doc.id)?.etag !== etag) throw new ConcurrencyConflict('changed', doc.id);
    return this.put(doc);
  }
}
