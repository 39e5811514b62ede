/**
 * In-memory stand-ins for the signing ports. The key store does real crypto (Node
 * key pairs) so tokens verify with jose; it refuses disabled or expired keys as Key
 * Vault does.
 */
import { ConcurrencyConflict } from '../../../shared/errors';
import { type KeyObject, generateKeyPair, sign } from 'node:crypto';
import { promisify } from 'node:util';
import { exportJWK } from 'jose';
import type { KeySet, KeyState, PublicJwk, RolloverPolicy, RolloverRecord } from '../../../shared/domain/signingKeys';
import type { Logger } from '../../../shared/ports';
import { type KeySetStore, type SigningKeyStore, type StoredKeySet } from '../../../shared/services/signing/ports';
import { SigningKeyService, type SigningSettings, SingleFlight } from '../../../shared/services/signing/signingKeys';
import { TokenIssuer } from '../../../shared/services/signing/tokens';
import { keyVaultFailure } from '../../../shared/adapters/signing/keyVaultSigningKeys';

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

export interface FakeVaultKey {
  name: string;
  version: string;
  privateKey: KeyObject;
  enabled: boolean;
  state: KeyState;
  expiresAt: Date;
}

export class FakeSigningKeyStore implements SigningKeyStore {
  readonly keys = new Map<string, FakeVaultKey>();
  private versions = 0;
  signCalls = 0;
  createCalls = 0;
  /** Run before a signature is made / after it is made but before it is returned: let a test slip a concurrent change in. */
  beforeSign?: () => Promise<void>;
  afterSign?: () => Promise<void>;
  /** `setState` calls it says yes to fail as Key Vault does when down. */
  failSetState?: (ref: { name: string; version: string }, state: KeyState) => boolean;
  /** Runs before a `setState` lands (a slow Key Vault write): lets a test slip a concurrent change in. */
  beforeSetState?: (ref: { name: string; version: string }, state: KeyState) => Promise<void>;

  constructor(private readonly clock: FakeClock) {}

  async create(input: { name: string; keyType: 'RSA-2048' | 'EC-P256'; expiresAt: Date; state: KeyState }) {
    this.createCalls++;
    const { publicKey, privateKey } =
      input.keyType === 'EC-P256'
        ? await generate('ec', { namedCurve: 'P-256' })
        : await generate('rsa', { modulusLength: 2048 });
    const version = `v${++this.versions}`;
    this.keys.set(`${input.name}/${version}`, { name: input.name, version, privateKey, enabled: true, state: input.state, expiresAt: input.expiresAt });
    const jwk = (await exportJWK(publicKey)) as PublicJwk;
    return { vaultKey: { vault: 'local', name: input.name, version }, publicJwk: jwk, createdAt: await this.clock.now() };
  }

  async setState(ref: { name: string; version: string }, state: KeyState) {
    if (this.failSetState?.(ref, state)) {
      throw keyVaultFailure('update', sdkError());
    }
    await this.beforeSetState?.(ref, state);
    const key = this.get(ref);
    key.state = state;
    key.enabled = state !== 'retired';
  }

  async sign(ref: { name: string; version: string }, alg: string, data: Uint8Array) {
    const before = this.beforeSign;
    await before?.();
    const key = this.get(ref);
    if (!key.enabled) throw new Error(`Operation sign is not allowed on a disabled key (${ref.name})`);
    if (key.expiresAt <= (await this.clock.now())) throw new Error(`Key ${ref.name} expired`);
    this.signCalls++;
    const signature = new Uint8Array(sign('sha256', data, alg === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' } : key.privateKey));
    const hook = this.afterSign;
    await hook?.();
    return signature;
  }

  get(ref: { name: string; version: string }): FakeVaultKey {
    const key = this.keys.get(`${ref.name}/${ref.version}`);
    if (!key) throw new Error(`No key ${ref.name}/${ref.version}`);
    return key;
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
  return { issuer: ISSUER, vault: 'local', keyName: 'keyturn-signing', keyType, policy, trustEasyAuthHeader: false };
}

export function signingWorld(
  options: { start?: Date; policy?: RolloverPolicy; keyType?: 'RSA-2048' | 'EC-P256'; trustEasyAuthHeader?: boolean; log?: Logger } = {},
) {
  const clock = new FakeClock(options.start ?? new Date('2026-01-01T00:00:00Z'));
  const keys = new FakeSigningKeyStore(clock);
  const sets = new InMemoryKeySetStore();
  const settings = { ...settingsFor(options.policy, options.keyType), trustEasyAuthHeader: options.trustEasyAuthHeader ?? false };
  const bootstrap = new SingleFlight();
  const log = options.log ?? silentLog;
  const service = new SigningKeyService({ keys, sets, clock, log, settings, bootstrap });
  /** A token issuer on this world, as root() builds one per invocation. */
  const tokens = () => new TokenIssuer({ signingKeys: service, keys, clock, issuer: ISSUER, log });
  return { clock, keys, sets, settings, bootstrap, service, tokens };
}

/** A logger that keeps every line, to check what reaches logs (and what does not reach answers). */
export function recordingLog(): Logger & { lines: { level: string; message: string; props?: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; props?: Record<string, unknown> }[] = [];
  const at = (level: string) => (message: string, props?: Record<string, unknown>) => void lines.push({ level, message, props });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}
