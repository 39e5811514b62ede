/**
 * Keyturn's Key Vault emulator: HTTPS servers the real @azure/keyvault-keys and
 * @azure/keyvault-secrets clients talk to, one per vault (the SDK parses the vault
 * URL out of every key id, so vaults differ by port), sharing one movable clock,
 * each emitting Key Vault's Event Grid events on its own system topic and enforcing
 * Azure RBAC from one shared set of role assignments. It follows the wire contract
 * the SDK clients use (challenge auth, ids from the Host header, paging, error
 * shapes); see README.md.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:https';
import { join } from 'node:path';
import { ensureLocalTls } from '../tls';
import { VaultClock, Mutex } from './clock';
import { clockListeners } from './clockListeners';
import { backupKeyFor, type VaultContext } from './common';
import { dueExecutor, dueRunner } from './dueRunner';
import { keyVaultEvent, vaultTopic, type DueItem, type EventGridEvent, type EventSink, type ObjectKind, type VaultEventKind } from './events';
import { Authorization } from './rbac';
import { seedAssignments } from './seeds';
import { createVaultServer, FaultInjector } from './server';
import { Store, type Attributes } from './store';

export { createEventRecorder, keyVaultEvent, vaultTopic } from './events';
export type { EventGridEvent, EventSink, KeyVaultEventData } from './events';
export { Authorization } from './rbac';
export { CUSTOMER_VAULT } from './seeds';

export const DEFAULT_SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
export const DEFAULT_RESOURCE_GROUP = 'keyturn-local';

export interface VaultSpec {
  vaultName: string;
  /** Default 8443; 0 picks a free port. */
  port?: number;
  /** Persist state to `{dataDir}/vault.json`; in memory when absent. */
  dataDir?: string;
  /** As in `infra/`: purge refused while protected (soft-deleted objects stay recoverable). Default false. */
  purgeProtection?: boolean;
}

export interface KeyVaultEmulatorsOptions {
  vaults: VaultSpec[];
  host?: '127.0.0.1';
  /** Where the local CA and server certificate live (default `.keyturn/keyvault`). */
  tlsDir?: string;
  subscriptionId?: string;
  resourceGroup?: string;
  events?: EventSink;
  /** Defaults to KEYVAULT_FAULTS / KEYVAULT_FAULTS_SEED from the environment. */
  faults?: { rate: number; seed?: number };
  /**
   * Who may do what: a shared `Authorization` (seeded with the default assignments
   * when it is fresh), or `'any-token'`: every bearer token may do everything (the
   * single in-process vaults of older tests and benchmarks). Default: a new in-memory
   * Authorization, seeded.
   */
  authorization?: Authorization | 'any-token';
  log?: (line: string) => void;
  /** A clock listener (a functions host) failed three moves in a row and was dropped: it no longer follows the clock. */
  onListenerDropped?: (url: string, reason: string) => void;
}

export interface KeyVaultEmulatorOptions extends Omit<KeyVaultEmulatorsOptions, 'vaults' | 'authorization'>, Partial<Omit<VaultSpec, 'vaultName'>> {
  vaultName?: string;
  /** Default for one vault started on its own: `'any-token'`. */
  authorization?: Authorization | 'any-token';
}

export interface KeyVaultEmulator {
  url: string;
  port: number;
  caFile: string;
  ca: string;
  topic: string;
  /** The vault's ARM resource id (the scope of role assignments on it). */
  scope: string;
  vaultName: string;
  purgeProtection: boolean;
  clock: { now(): Date; advance(seconds: number): Promise<void> };
  close(): Promise<void>;
}

export interface KeyVaultEmulators {
  vaults: KeyVaultEmulator[];
  vault(name: string): KeyVaultEmulator;
  /** Undefined in `'any-token'` mode. */
  authorization?: Authorization;
  clock: { now(): Date; advance(seconds: number): Promise<void> };
  close(): Promise<void>;
}

/** How often due events are checked as real time passes. */
const TICK_MS = 1000;

function faultsFromEnv(env: NodeJS.ProcessEnv): { rate: number; seed?: number } | undefined {
  const raw = env.KEYVAULT_FAULTS;
  if (!raw) return undefined;
  const rate = Number(raw);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`KEYVAULT_FAULTS must be a fraction within 0..1, got '${raw}'`);
  const seed = env.KEYVAULT_FAULTS_SEED ? Number(env.KEYVAULT_FAULTS_SEED) : undefined;
  return { rate, ...(seed !== undefined && Number.isFinite(seed) ? { seed } : {}) };
}

/** One vault: its state, its events and its server. */
interface VaultUnit {
  spec: VaultSpec;
  topic: string;
  store: Store;
  ctx: VaultContext;
  server: Server;
  url: string;
  execute(item: DueItem): void;
}

export async function startKeyVaultEmulator(options: KeyVaultEmulatorOptions = {}): Promise<KeyVaultEmulator> {
  const { vaultName, port, dataDir, purgeProtection, authorization, ...common } = options;
  const group = await startKeyVaultEmulators({
    ...common,
    authorization: authorization ?? 'any-token',
    vaults: [{ vaultName: vaultName ?? 'keyturn-local', ...(port !== undefined ? { port } : {}), ...(dataDir ? { dataDir } : {}), ...(purgeProtection ? { purgeProtection } : {}) }],
  });
  return { ...(group.vaults[0] as KeyVaultEmulator), close: () => group.close() };
}

export async function startKeyVaultEmulators(options: KeyVaultEmulatorsOptions): Promise<KeyVaultEmulators> {
  const log = options.log ?? (() => undefined);
  if (options.vaults.length === 0) throw new Error('startKeyVaultEmulators needs at least one vault');
  const names = options.vaults.map((v) => v.vaultName.toLowerCase());
  if (new Set(names).size !== names.length) throw new Error(`Vault names must be unique: ${names.join(', ')}`);
  const subscriptionId = options.subscriptionId ?? DEFAULT_SUBSCRIPTION;
  const resourceGroup = options.resourceGroup ?? DEFAULT_RESOURCE_GROUP;
  const tls = await ensureLocalTls(options.tlsDir ?? join('.keyturn', 'keyvault'));
  const authorization = options.authorization === 'any-token' ? undefined : (options.authorization ?? new Authorization(subscriptionId));
  const seed = authorization?.loadedFresh ?? false;

  const units: VaultUnit[] = [];
  // The one clock: the offset is kept in every vault's state (the largest wins on load).
  const stores = options.vaults.map((spec) => new Store(spec.dataDir));
  let offsetMs = Math.max(0, ...stores.map((s) => s.state.clockOffsetMs));
  const clock = new VaultClock(
    () => offsetMs,
    (ms) => {
      offsetMs = ms;
      for (const s of stores) s.state.clockOffsetMs = ms;
    },
  );
  for (const s of stores) s.state.clockOffsetMs = offsetMs;
  const saveAll = (): void => {
    for (const s of stores) s.save();
  };
  const listeners = clockListeners({ ca: tls.ca, log, ...(options.onListenerDropped ? { onDropped: options.onListenerDropped } : {}) });
  const mutex = new Mutex();

  const publish = (topic: string, events: EventGridEvent[]): void => {
    if (!options.events) return;
    try {
      const r = options.events.publish(topic, events);
      if (r && typeof (r as Promise<void>).catch === 'function') {
        (r as Promise<void>).catch((e: unknown) => log(`keyvault: event sink failed: ${String(e)}`));
      }
    } catch (e) {
      log(`keyvault: event sink failed: ${String(e)}`);
    }
  };

  const runDue = dueRunner(
    () => units.map((u) => ({ vaultName: u.spec.vaultName, state: () => u.store.state, execute: u.execute })),
    clock,
    log,
  );

  const timeInfo = (): { time: string; offsetSeconds: number } => ({ time: clock.now().toISOString(), offsetSeconds: clock.offsetSeconds() });

  const advance = (seconds: number): Promise<{ time: string; offsetSeconds: number }> =>
    mutex.run(async () => {
      if (!(Number.isFinite(seconds) && seconds >= 0)) throw new Error(`advance needs a non-negative number of seconds, got ${seconds}`);
      const from = clock.nowMs();
      const ms = Math.round(seconds * 1000);
      runDue(from + ms, from);
      clock.moveForward(ms);
      runDue(clock.nowMs());
      saveAll();
      await options.events?.settle?.().catch((e: unknown) => log(`keyvault: events not settled before the listeners: ${String(e)}`));
      await listeners.notify(clock.now());
      return timeInfo();
    });

  const afterChange = (): void => {
    runDue(clock.nowMs());
    saveAll();
  };

  const management = {
    time: timeInfo,
    advance,
    addListener: (url: string) => listeners.add(url),
    removeListener: (url: string) => listeners.remove(url),
    listeners: () => listeners.list(),
  };

  const faults = options.faults ?? faultsFromEnv(process.env);
  const host = options.host ?? '127.0.0.1';
  const closeServers = async (): Promise<void> => {
    await Promise.all(
      units.map(
        (u) =>
          new Promise<void>((resolve) => {
            u.server.close(() => resolve());
            u.server.closeAllConnections();
          }),
      ),
    );
  };

  try {
    for (const [i, spec] of options.vaults.entries()) {
      const store = stores[i] as Store;
      const topic = vaultTopic(subscriptionId, resourceGroup, spec.vaultName);
      const unit = { spec, topic, store, url: '' } as VaultUnit;
      const emit = (type: VaultEventKind, kind: ObjectKind, name: string, version: string, a: Attributes): void => {
        publish(topic, [keyVaultEvent(topic, spec.vaultName, unit.url, type, { kind, name, version, nbf: a.nbf, exp: a.exp }, clock.now())]);
      };
      const ctx: VaultContext = {
        store,
        clock,
        backupKey: backupKeyFor(subscriptionId),
        purgeProtection: spec.purgeProtection ?? false,
        vaultName: spec.vaultName,
        newVersion: (kind, name, version, attributes) => emit('NewVersionCreated', kind, name, version, attributes),
      };
      unit.ctx = ctx;
      unit.execute = dueExecutor(ctx, emit);
      if (authorization && seed) seedAssignments(authorization, { vaultName: spec.vaultName, scope: topic });
      unit.server = createVaultServer(tls, {
        ctx,
        afterChange,
        log,
        ...(faults && faults.rate > 0 ? { faults: new FaultInjector(faults.rate, faults.seed) } : {}),
        access: { vaultName: spec.vaultName, scope: topic, ...(authorization ? { authorization } : {}) },
        management,
      });
      units.push(unit);
      await new Promise<void>((resolve, reject) => {
        unit.server.once('error', reject);
        unit.server.listen(spec.port ?? 8443, host, () => {
          unit.server.off('error', reject);
          resolve();
        });
      });
      unit.url = `https://${host}:${(unit.server.address() as AddressInfo).port}`;
    }
  } catch (e) {
    await closeServers();
    throw e;
  }

  // Events also fire as real time passes, not only when the clock is moved.
  const ticker = setInterval(() => {
    try {
      if (runDue(clock.nowMs()) > 0) saveAll();
    } catch (e) {
      log(`keyvault: tick failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }, TICK_MS);
  ticker.unref();
  // Whatever fell due while the emulator was down.
  afterChange();
  for (const u of units) {
    log(
      `keyvault: emulator for vault '${u.spec.vaultName}' at ${u.url} (CA ${tls.caFile})${u.store.persistent ? ` with data in ${u.spec.dataDir}` : ' in memory'}${faults?.rate ? `, faults ${faults.rate}` : ''}${authorization ? '' : ', any token accepted'}`,
    );
  }

  const publicClock = {
    now: () => clock.now(),
    advance: async (seconds: number) => {
      await advance(seconds);
    },
  };
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      clearInterval(ticker);
      await mutex.run(async () => undefined);
      await closeServers();
      saveAll();
    })());
  const vaults: KeyVaultEmulator[] = units.map((u) => ({
    url: u.url,
    port: Number(new URL(u.url).port),
    caFile: tls.caFile,
    ca: tls.ca,
    topic: u.topic,
    scope: u.topic,
    vaultName: u.spec.vaultName,
    purgeProtection: u.spec.purgeProtection ?? false,
    clock: publicClock,
    close,
  }));
  return {
    vaults,
    vault: (name) => {
      const v = vaults.find((x) => x.vaultName.toLowerCase() === name.toLowerCase());
      if (!v) throw new Error(`No emulated vault named '${name}'`);
      return v;
    },
    ...(authorization ? { authorization } : {}),
    clock: publicClock,
    close,
  };
}
