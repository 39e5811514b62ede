/**
 * In-memory stand-ins for the signing ports. The Key Vault fake implements the shared
 * VaultKeys port with real crypto (Node key pairs, signing the digest it is given as
 * Key Vault does) so tokens verify with jose; it refuses disabled or expired keys as
 * Key Vault does. The signing service reaches it through the real `signingVault` mapping.
 */
import { ConcurrencyConflict } from '../../../shared/errors';
import { type KeyObject, constants, generateKeyPair, privateEncrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { p256 } from '@noble/curves/nist.js';
import { exportJWK } from 'jose';
import type { KeySet, KeyState, PublicJwk, RolloverPolicy, RolloverRecord } from '../../../shared/domain/signingKeys';
import type { KeyAttributes, KeyProperties, KeyRef, KeySignAlg, KeySpec, Logger, VaultKey, VaultKeys } from '../../../shared/ports';
import { type KeySetStore, type StoredKeySet } from '../../../shared/services/signing/ports';
import { SigningKeyService, type SigningSettings, SingleFlight } from '../../../shared/services/signing/signingKeys';
import { STATE_TAG, signingVault } from '../../../shared/services/signing/signingVault';
import { TokenIssuer } from '../../../shared/services/signing/tokens';
import { keyFailure } from '../../../shared/adapters/keyVault/vaultKeys';

const generate = promisify(generateKeyPair);

export class FakeClock {
  constructor(public time: Date) {}
  now = async () => new Date(this.time);
  advance(ms: number): void {
    this.time = new Date(this.time.getTime() + ms);
  }
}

/** What an Azure SDK failure looks like: its text (vault URLs, service messages) must reach logs only. */
export const SDK_ERROR_TEXT = 'AKV10032: Invalid issuer at https://kv-prod.vault.azure.net/keys/keyturn-signing-7';
export const sdkError = () => Object.assign(new Error(SDK_ERROR_TEXT), { name: 'RestError', code: 'ServiceUnavailable', statusCode: 503 });

export const silentLog: Logger = { info() {}, warn() {}, error() {} };

export const FAKE_VAULT_URL = 'https://keyturn-test.vault.azure.net';

export interface FakeVaultKey {
  name: string;
  version: string;
  privateKey: KeyObject;
  enabled: boolean;
  /** The `keyturn-state` tag. */
  state: KeyState;
  expiresAt?: Date;
  tags: Record<string, string>;
  createdOn: Date;
}

/** SHA-256's DigestInfo prefix: RS256 signs DigestInfo‖digest (PKCS #1 v1.5). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * Key Vault keys in memory. The port is `port()`; the rest is for tests: `get` (sync),
 * the keys by `name/version`, call counters and hooks. Reassigning `create`/`sign`/`update`
 * changes what the port does.
 */
export class FakeVaultKeys {
  readonly keys = new Map<string, FakeVaultKey>();
  private versionCount = 0;
  /** Signatures made. */
  signCalls = 0;
  /** Calls of `sign`, counted on arrival: a refused or failed signature counts too. */
  signAttempts = 0;
  createCalls = 0;
  /** Run before a signature is made / after it is made but before it is returned: let a test slip a concurrent change in. */
  beforeSign?: () => Promise<void>;
  afterSign?: () => Promise<void>;
  /** Updates it says yes to (by the state tag they write) fail as Key Vault does when down. */
  failSetState?: (ref: { name: string; version: string }, state: KeyState) => boolean;
  /** Runs before an update lands (a slow Key Vault write): lets a test slip a concurrent change in. */
  beforeSetState?: (ref: { name: string; version: string }, state: KeyState) => Promise<void>;

  constructor(private readonly clock: FakeClock) {}

  /** The VaultKeys port over this fake (late-bound, so a test may replace a method). */
  port(): VaultKeys {
    const unused = async (): Promise<never> => {
      throw new Error('not used by the signing life cycle');
    };
    return {
      create: (...a) => this.create(...a),
      update: (...a) => this.update(...a),
      sign: (...a) => this.sign(...a),
      get: async (ref) => {
        const key = this.keys.get(`${ref.name}/${ref.version}`);
        return key && { properties: this.properties(key) };
      },
      versions: async (_url, name) => [...this.keys.values()].filter((k) => k.name === name).map((k) => this.properties(k)),
      import: unused,
      rotate: unused,
      backup: unused,
      restore: unused,
      delete: unused,
      recover: unused,
      purge: unused,
      getDeleted: unused,
      wrap: unused,
      unwrap: unused,
    };
  }

  async create(vaultUrl: string, name: string, spec: KeySpec, attributes: KeyAttributes = {}): Promise<VaultKey> {
    this.createCalls++;
    const { publicKey, privateKey } =
      spec.kty === 'EC' ? await generate('ec', { namedCurve: 'P-256' }) : await generate('rsa', { modulusLength: 2048 });
    const version = `v${++this.versionCount}`;
    const tags = { ...(attributes.tags ?? {}) };
    const key: FakeVaultKey = {
      name,
      version,
      privateKey,
      enabled: attributes.enabled ?? true,
      state: tags[STATE_TAG] as KeyState,
      ...(attributes.expiresOn ? { expiresAt: attributes.expiresOn } : {}),
      tags,
      createdOn: await this.clock.now(),
    };
    this.keys.set(`${name}/${version}`, key);
    return { properties: { ...this.properties(key), vaultUrl }, publicJwk: (await exportJWK(publicKey)) as PublicJwk };
  }

  async update(ref: KeyRef, changes: KeyAttributes): Promise<KeyProperties> {
    const at = { name: ref.name, version: ref.version ?? '' };
    const state = (changes.tags?.[STATE_TAG] ?? this.get(at).state) as KeyState;
    if (this.failSetState?.(at, state)) throw keyFailure('update', sdkError());
    await this.beforeSetState?.(at, state);
    const key = this.get(at);
    if (changes.enabled !== undefined) key.enabled = changes.enabled;
    if (changes.tags) key.tags = { ...changes.tags };
    key.state = key.tags[STATE_TAG] as KeyState;
    return this.properties(key);
  }

  async sign(ref: KeyRef & { version: string }, alg: KeySignAlg, digest: Uint8Array): Promise<Uint8Array> {
    this.signAttempts++;
    const before = this.beforeSign;
    await before?.();
    const key = this.get(ref);
    if (!key.enabled) throw keyFailure('sign', Object.assign(new Error(`Operation sign is not allowed on a disabled key (${ref.name})`), { name: 'RestError', statusCode: 403 }));
    if (key.expiresAt && key.expiresAt <= (await this.clock.now())) throw keyFailure('sign', new Error(`Key ${ref.name} expired`));
    this.signCalls++;
    const signature =
      alg === 'ES256'
        ? p256.sign(digest, new Uint8Array(Buffer.from(key.privateKey.export({ format: 'jwk' }).d!, 'base64url')), { prehash: false, lowS: false })
        : new Uint8Array(privateEncrypt({ key: key.privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, digest])));
    const hook = this.afterSign;
    await hook?.();
    return signature;
  }

  get(ref: { name: string; version: string }): FakeVaultKey {
    const key = this.keys.get(`${ref.name}/${ref.version}`);
    if (!key) throw new Error(`No key ${ref.name}/${ref.version}`);
    return key;
  }

  private properties(key: FakeVaultKey): KeyProperties {
    return {
      vaultUrl: FAKE_VAULT_URL,
      name: key.name,
      version: key.version,
      enabled: key.enabled,
      tags: { ...key.tags },
      createdOn: key.createdOn,
      ...(key.expiresAt ? { expiresOn: key.expiresAt } : {}),
    };
  }
}

export class InMemoryKeySetStore implements KeySetStore {
  readonly records: RolloverRecord[] = [];
  private doc?: StoredKeySet;
  private etags = 0;
  writes = 0;
  /** Runs before a write is checked: lets a test slip a concurrent writer in. */
  beforeWrite?: () => Promise<void>;
  /** Says yes to fail a write after it committed (a timeout, 503 or reset on the way back), once. */
  failAfterCommit?: (set: KeySet) => boolean;
  /** Says yes to fail a write before it commits. */
  failBeforeCommit?: (set: KeySet) => boolean;

  async read(): Promise<StoredKeySet | undefined> {
    return this.doc && structuredClone(this.doc);
  }

  async write(set: KeySet, etag: string | undefined): Promise<StoredKeySet> {
    const hook = this.beforeWrite;
    this.beforeWrite = undefined;
    await hook?.();
    if (this.failBeforeCommit?.(set)) throw sdkError();
    if (etag === undefined ? this.doc !== undefined : this.doc?.etag !== etag) throw new ConcurrencyConflict('changed', set.issuer);
    this.doc = { set: structuredClone(set), etag: `"e${++this.etags}"` };
    this.writes++;
    const failAfter = this.failAfterCommit;
    if (failAfter?.(set)) {
      this.failAfterCommit = undefined;
      throw Object.assign(new Error('socket hang up'), { name: 'Error', code: 'ECONNRESET' });
    }
    return structuredClone(this.doc);
  }

  async saveRollover(record: RolloverRecord) {
    if (!this.records.some((r) => r.id === record.id)) this.records.push(structuredClone(record));
  }

  async rollovers(_issuer: string, limit: number) {
    return [...this.records].reverse().slice(0, limit);
  }
}

export const ISSUER = 'https://keyturn.test';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export const defaultPolicy: RolloverPolicy = {
  rolloverMs: 42 * DAY,
  publishAheadMs: 24 * HOUR,
  tokenMaxLifetimeMs: 60 * 60_000,
  jwksMaxAgeMs: 300_000,
};

export function settingsFor(policy: RolloverPolicy = defaultPolicy, keyType: 'RSA-2048' | 'EC-P256' = 'RSA-2048'): SigningSettings {
  return { issuer: ISSUER, vaultAlias: 'local', keyName: 'keyturn-signing', keyType, policy };
}

/**
 * A signing life cycle on fakes. `keys` is the Key Vault fake (for inspection and
 * hooks); `deps` is what the service is given, to build a second service on the same world.
 * `trustEasyAuthHeader` is the edge's setting (see `emergencyAs`).
 */
export function signingWorld(
  options: { start?: Date; policy?: RolloverPolicy; keyType?: 'RSA-2048' | 'EC-P256'; trustEasyAuthHeader?: boolean; log?: Logger } = {},
) {
  const clock = new FakeClock(options.start ?? new Date('2026-01-01T00:00:00Z'));
  const keys = new FakeVaultKeys(clock);
  const sets = new InMemoryKeySetStore();
  const settings = settingsFor(options.policy, options.keyType);
  const trustEasyAuthHeader = options.trustEasyAuthHeader ?? false;
  const bootstrap = new SingleFlight();
  const log = options.log ?? silentLog;
  const vault = signingVault({ keys: keys.port(), vaultAlias: 'local', vaultUrlOf: () => FAKE_VAULT_URL, issuer: ISSUER });
  const deps = { keys: vault, sets, clock, log, settings, bootstrap };
  const service = new SigningKeyService(deps);
  /** A token issuer on this world, as root() builds one per invocation. */
  const tokens = () => new TokenIssuer({ signingKeys: service, keys: vault, clock, issuer: ISSUER, log });
  return { clock, keys, sets, settings, trustEasyAuthHeader, bootstrap, deps, service, tokens };
}

/** A logger that keeps every line, to check what reaches logs (and what does not reach answers). */
export function recordingLog(): Logger & { lines: { level: string; message: string; props?: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; props?: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, props?: Record<string, unknown>) => void lines.push({ level, message, props });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}
