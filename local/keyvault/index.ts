/**
 * Keyturn's Key Vault emulator: an HTTPS server the real @azure/keyvault-keys and
 * @azure/keyvault-secrets clients talk to, with a movable clock, that emits Key
 * Vault's Event Grid events. It follows the wire contract the SDK clients use
 * (challenge auth, ids from the Host header, paging, error shapes); see README.md.
 */
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ensureLocalTls } from '../tls';
import { VaultClock, Mutex } from './clock';
import { requestJson } from '../httpJson';
import { backupKeyFor, type VaultContext } from './common';
import { firedKey, keyVaultEvent, nextDue, vaultTopic, type DueItem, type EventGridEvent, type EventSink, type ObjectKind, type VaultEventKind } from './events';
import { rotateEntry } from './keys';
import { createVaultServer, FaultInjector } from './server';
import { Store, type Attributes } from './store';

export { createEventRecorder, keyVaultEvent, vaultTopic } from './events';
export type { EventGridEvent, EventSink, KeyVaultEventData } from './events';

export interface KeyVaultEmulatorOptions {
  /** Default 8443; 0 picks a free port. */
  port?: number;
  host?: '127.0.0.1';
  /** Where the local CA and server certificate live (default `.keyturn/keyvault`). */
  tlsDir?: string;
  /** Persist state to `{dataDir}/vault.json`; in memory when absent. */
  dataDir?: string;
  vaultName?: string;
  subscriptionId?: string;
  resourceGroup?: string;
  events?: EventSink;
  /** Defaults to KEYVAULT_FAULTS / KEYVAULT_FAULTS_SEED from the environment. */
  faults?: { rate: number; seed?: number };
  log?: (line: string) => void;
}

export interface KeyVaultEmulator {
  url: string;
  port: number;
  caFile: string;
  ca: string;
  topic: string;
  vaultName: string;
  clock: { now(): Date; advance(seconds: number): Promise<void> };
  close(): Promise<void>;
}

/** How often due events are checked as real time passes. */
const TICK_MS = 1000;
const LISTENER_TIMEOUT_MS = 60_000;
const MAX_LISTENER_FAILURES = 3;
/** Guards against a policy that would rotate without end during one walk. */
const MAX_ITEMS_PER_WALK = 10_000;

function faultsFromEnv(env: NodeJS.ProcessEnv): { rate: number; seed?: number } | undefined {
  const raw = env.KEYVAULT_FAULTS;
  if (!raw) return undefined;
  const rate = Number(raw);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`KEYVAULT_FAULTS must be a fraction within 0..1, got '${raw}'`);
  const seed = env.KEYVAULT_FAULTS_SEED ? Number(env.KEYVAULT_FAULTS_SEED) : undefined;
  return { rate, ...(seed !== undefined && Number.isFinite(seed) ? { seed } : {}) };
}

export async function startKeyVaultEmulator(options: KeyVaultEmulatorOptions = {}): Promise<KeyVaultEmulator> {
  const log = options.log ?? (() => undefined);
  const vaultName = options.vaultName ?? 'keyturn-local';
  const topic = vaultTopic(options.subscriptionId ?? '00000000-0000-0000-0000-000000000000', options.resourceGroup ?? 'keyturn-local', vaultName);
  const tls = await ensureLocalTls(options.tlsDir ?? join('.keyturn', 'keyvault'));
  const store = new Store(options.dataDir);
  const state = (): typeof store.state => store.state;
  const clock = new VaultClock(
    () => state().clockOffsetMs,
    (ms) => {
      state().clockOffsetMs = ms;
    },
  );
  let vaultUrl = '';
  /** Listener URL → consecutive failures; a listener that keeps failing (a host that is gone) is dropped. */
  const listeners = new Map<string, number>();
  const mutex = new Mutex();

  const publish = (events: EventGridEvent[]): void => {
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
  const emit = (type: VaultEventKind, kind: ObjectKind, name: string, version: string, a: Attributes): void => {
    publish([keyVaultEvent(topic, vaultName, vaultUrl, type, { kind, name, version, nbf: a.nbf, exp: a.exp }, clock.now())]);
  };

  const ctx: VaultContext = {
    store,
    clock,
    backupKey: backupKeyFor(options.subscriptionId ?? '00000000-0000-0000-0000-000000000000'),
    newVersion: (kind, name, version, attributes) => emit('NewVersionCreated', kind, name, version, attributes),
  };

  const execute = (item: DueItem): void => {
    const map = item.kind === 'Key' ? state().keys : state().secrets;
    const entry = map[item.key];
    if (!entry) return;
    if (item.type === 'Purge') {
      delete map[item.key];
      return;
    }
    state().fired[firedKey(item.kind, item.key, item.version, item.type)] = clock.nowMs();
    const v = entry.versions.find((x) => x.version === item.version);
    if (!v) return;
    if (item.type === 'Rotate') {
      rotateEntry(ctx, entry as Parameters<typeof rotateEntry>[1]);
      return;
    }
    // A version that is already past exp gets Expired, not a late NearExpiry.
    if (item.type === 'NearExpiry' && v.attributes.exp !== undefined && clock.nowMs() >= v.attributes.exp * 1000) return;
    emit(item.type, item.kind, entry.name, v.version, v.attributes);
  };

  /**
   * Carries out everything due up to `upTo`, each at its own time (never before
   * `from`, the emulator time the walk starts at), in time order. Synchronous.
   */
  const runDue = (upTo: number, from = clock.nowMs()): number => {
    let cursor = from;
    let n = 0;
    for (let item = nextDue(state(), upTo); item; item = nextDue(state(), upTo)) {
      if (++n > MAX_ITEMS_PER_WALK) {
        log('keyvault: too many due items in one clock walk; stopping early');
        break;
      }
      cursor = Math.max(cursor, item.at);
      const due = item;
      try {
        clock.at(cursor, () => execute(due));
      } catch (e) {
        log(`keyvault: due ${due.type} for ${due.kind} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return n;
  };

  const timeInfo = (): { time: string; offsetSeconds: number } => ({ time: clock.now().toISOString(), offsetSeconds: clock.offsetSeconds() });

  const notifyListeners = async (): Promise<void> => {
    const body = { time: clock.now().toISOString() };
    await Promise.all(
      [...listeners.keys()].map(async (url) => {
        let problem: string | undefined;
        try {
          const { status } = await requestJson(url, { method: 'POST', body, ca: tls.ca, timeoutMs: LISTENER_TIMEOUT_MS });
          if (status < 200 || status >= 300) problem = `answered ${status}`;
        } catch (e) {
          problem = `failed: ${e instanceof Error ? e.message : String(e)}`;
        }
        if (!problem) {
          listeners.set(url, 0);
          return;
        }
        const failures = (listeners.get(url) ?? 0) + 1;
        if (failures >= MAX_LISTENER_FAILURES) {
          listeners.delete(url);
          log(`keyvault: clock listener ${url} ${problem}; dropped after ${failures} failures in a row`);
        } else {
          listeners.set(url, failures);
          log(`keyvault: clock listener ${url} ${problem}`);
        }
      }),
    );
  };

  const advance = (seconds: number): Promise<{ time: string; offsetSeconds: number }> =>
    mutex.run(async () => {
      if (!(Number.isFinite(seconds) && seconds >= 0)) throw new Error(`advance needs a non-negative number of seconds, got ${seconds}`);
      const from = clock.nowMs();
      const ms = Math.round(seconds * 1000);
      runDue(from + ms, from);
      clock.moveForward(ms);
      runDue(clock.nowMs());
      store.save();
      await options.events?.settle?.().catch((e: unknown) => log(`keyvault: events not settled before the listeners: ${String(e)}`));
      await notifyListeners();
      return timeInfo();
    });

  const afterChange = (): void => {
    runDue(clock.nowMs());
    store.save();
  };

  const faults = options.faults ?? faultsFromEnv(process.env);
  const server = createVaultServer(tls, {
    ctx,
    afterChange,
    log,
    ...(faults && faults.rate > 0 ? { faults: new FaultInjector(faults.rate, faults.seed) } : {}),
    management: {
      time: timeInfo,
      advance,
      addListener: (url) => {
        listeners.set(url, 0);
        return [...listeners.keys()];
      },
      removeListener: (url) => {
        listeners.delete(url);
        return [...listeners.keys()];
      },
      listeners: () => [...listeners.keys()],
    },
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8443, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  vaultUrl = `https://${host}:${port}`;

  // Events also fire as real time passes, not only when the clock is moved.
  const ticker = setInterval(() => {
    try {
      if (runDue(clock.nowMs()) > 0) store.save();
    } catch (e) {
      log(`keyvault: tick failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }, TICK_MS);
  ticker.unref();
  // Whatever fell due while the emulator was down.
  afterChange();
  log(`keyvault: emulator for vault '${vaultName}' at ${vaultUrl} (CA ${tls.caFile})${store.persistent ? ` with data in ${options.dataDir}` : ' in memory'}${faults?.rate ? `, faults ${faults.rate}` : ''}`);

  return {
    url: vaultUrl,
    port,
    caFile: tls.caFile,
    ca: tls.ca,
    topic,
    vaultName,
    clock: {
      now: () => clock.now(),
      advance: async (seconds: number) => {
        await advance(seconds);
      },
    },
    close: async () => {
      clearInterval(ticker);
      await mutex.run(async () => undefined);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      store.save();
    },
  };
}
