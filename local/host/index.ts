/**
 * Local stand-in for `func start`: loads the app's real v4 registrations and serves them
 * with the Functions host's URLs, timers and Event Grid webhook. See local/host/README.md.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { resolve } from 'node:path';
import { loadApp } from './appLoader';
import { applySettings, isTruthySetting, readHostJson, readLocalSettings } from './appSettings';
import { AdjustableClock, ClockWatch, fetchClockOffset, registerClockListener, retry, systemClock, type HostClock } from './clock';
import { CoreRegistry, deactivateRegistry } from './coreModule';
import type { RpcTypedData } from './coreTypes';
import type { WebhookTarget } from './eventGridWebhook';
import { FunctionCatalog, type FunctionInfo, type HostFunction } from './functionCatalog';
import { HostLogger } from './hostLogger';
import { createHostServer, listen } from './httpServer';
import { Invoker } from './invoker';
import { stringifyJson } from './jsonText';
import { MAX_JSON_DEPTH, valueExceedsDepth } from '../../shared/domain/jsonDepth';
import { formatDotNetDate } from './schedule';
import { readQueueOptions, startQueueTriggers, type QueueTriggers } from './queues';
import { MANUAL_REASON, TimerScheduler } from './timers';

export type { HostClock } from './clock';
export type { FunctionInfo } from './functionCatalog';

export interface StartHostOptions {
  appDir: string;
  /** Default: env PORT, then local.settings.json Host.LocalHttpPort, then 7071; 0 = any free port. */
  port?: number;
  /** Clock for the timer scheduler (default: system clock, or the KEYTURN_CLOCK_URL clock). */
  clock?: HostClock;
  /** Environment the host reads and fills from local.settings.json (default process.env, which the app sees). */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface RunningHost {
  port: number;
  url: string;
  functions: FunctionInfo[];
  /** The scheduler's current time (ms). */
  now(): number;
  /** Moves the host clock to `timeMs` and runs the timers the jump passed (once each). */
  setTime(timeMs: number): Promise<string[]>;
  close(): Promise<void>;
}

function resolvePort(option: number | undefined, env: NodeJS.ProcessEnv, fromSettings: number | undefined): number {
  const raw = option ?? (env.PORT !== undefined && env.PORT.trim() !== '' ? Number(env.PORT) : fromSettings ?? 7071);
  if (!Number.isInteger(raw) || raw < 0 || raw > 65535) throw new Error(`Invalid PORT setting '${env.PORT}': expected 0-65535.`);
  return raw;
}

export async function startHost(options: StartHostOptions): Promise<RunningHost> {
  const appDir = resolve(options.appDir);
  const env = options.env ?? process.env;
  const write = options.log ?? ((line: string) => console.log(line));

  const settings = readLocalSettings(appDir);
  applySettings(settings.values, env);
  const hostJson = readHostJson(appDir, env);
  const port = resolvePort(options.port, env, settings.localHttpPort);
  const logger = new HostLogger(write, hostJson.minLogLevel);

  const clock = new AdjustableClock(options.clock ?? systemClock);
  const clockUrl = env.KEYTURN_CLOCK_URL?.trim() || undefined;
  const caFile = env.KEYTURN_KEYVAULT_CA_FILE?.trim() || undefined;
  let clockSynced = options.clock !== undefined || clockUrl === undefined;
  if (!clockSynced && clockUrl) {
    try {
      clock.setOffset(await retry(3, 200, () => fetchClockOffset(clockUrl, caFile)));
      clockSynced = true;
    } catch (err) {
      logger.warn(`Could not read the clock at ${clockUrl} (${(err as Error).message}); using the system clock until it answers.`);
    }
  }

  const registry = new CoreRegistry((level, category, message) => logger.coreLog(level, category, message));
  await loadApp(appDir, registry);
  logger.logHooks = registry.hooks.log;

  const catalog = new FunctionCatalog(registry.functions.values(), env, clock.now(), hostJson.routePrefix);
  const queueOptions = readQueueOptions(appDir, env);
  let queues: QueueTriggers | undefined;
  const invoker = new Invoker(registry, logger);
  const hostId = randomUUID().replace(/-/g, '').slice(0, 20);
  const started = Date.now();
  for (const fn of catalog.functions) {
    if (fn.error) logger.error(`The '${fn.name}' function is in error: ${fn.error}`);
  }
  if (catalog.functions.length === 0) logger.warn('No job functions found. The app registered no functions.');

  const invoke = (fn: HostFunction, triggerData: RpcTypedData, reason: string, triggerMetadata?: Record<string, RpcTypedData>) =>
    invoker.invoke({ fn: fn.registered, triggerData, reason, ...(triggerMetadata ? { triggerMetadata } : {}) });

  const scheduler = new TimerScheduler(
    clock,
    async (name, payload, reason) => {
      const fn = catalog.find(name);
      if (!fn) return false;
      const result = await invoke(fn, { json: JSON.stringify(payload) }, reason);
      return result.ok;
    },
    logger,
  );
  for (const fn of catalog.functions) {
    if (fn.timer?.parsed && !fn.error) {
      // Disabled timers are not scheduled but can still be run through the admin API, as in func.
      scheduler.add({
        name: fn.name,
        schedule: fn.timer.parsed,
        runOnStartup: fn.timer.runOnStartup,
        useMonitor: fn.timer.useMonitor,
        scheduled: !fn.disabled,
      });
    }
  }

  const eventGrid: WebhookTarget = {
    has: (name) => catalog.functions.some((f) => f.name === name && f.triggerType.toLowerCase() === 'eventgridtrigger' && !f.disabled && !f.error),
    async deliver(name, event) {
      const fn = catalog.functions.find((f) => f.name === name) as HostFunction;
      // Deeply nested events reach the app (which dead-letters them) instead of overflowing the stack here.
      const json = stringifyJson(event);
      // The worker library copies trigger metadata recursively (toCamelCaseValue), so a too-deep
      // event goes as the trigger input only; the app then acknowledges and dead-letters it.
      const tooDeep = valueExceedsDepth(event, MAX_JSON_DEPTH);
      if (tooDeep) logger.warn(`An event for '${name}' nests deeper than ${MAX_JSON_DEPTH} levels; passed without trigger metadata.`);
      const result = await invoke(fn, { json }, `EventGrid trigger fired at ${formatDotNetDate(Date.now())}`, {
        ...(tooDeep ? {} : { data: { json } }),
        sys: { json: JSON.stringify({ MethodName: name, UtcNow: new Date().toISOString(), RandGuid: randomUUID() }) },
      });
      return result.ok ? null : `Exception while executing function: Functions.${name}`;
    },
  };

  let port_ = 0;
  const baseUrl = (): string => `http://127.0.0.1:${port_}`;

  const clockJump = async (timeMs: number): Promise<string[]> => {
    clock.set(timeMs);
    logger.info(`Clock moved to ${new Date(timeMs).toISOString()}`);
    return scheduler.clockJumped();
  };

  const server: http.Server = createHostServer({
    catalog,
    routePrefix: hostJson.routePrefix,
    baseUrl,
    invokeHttp: (fn, data) => invoke(fn, data, MANUAL_REASON),
    eventGrid,
    runNonHttp(fn, input) {
      if (fn.timer) {
        void scheduler.runManual(fn.name);
      } else {
        void invoke(fn, { string: input ?? '' }, MANUAL_REASON);
      }
    },
    status: () => ({
      id: hostId,
      state: 'Running',
      version: 'keyturn-local-host (func 4.x compatible)',
      processUptime: Date.now() - started,
      timersEnabled: scheduler.running,
      clock: { now: new Date(clock.now()).toISOString(), source: clockUrl ?? (options.clock ? 'injected' : 'system') },
      functions: catalog.functions.length,
      errors: catalog.functions.filter((f) => f.error).map((f) => `The '${f.name}' function is in error: ${f.error}`),
    }),
    clockJump,
    logError: (message) => logger.error(message),
  });

  const appHookData = logger.appHookData;
  const appHookContext = {
    get hookData() {
      return appHookData;
    },
    get appHookData() {
      return appHookData;
    },
    functionAppDirectory: appDir,
  };

  let clockWatch: ClockWatch | undefined;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      clockWatch?.stop();
      scheduler.stop();
      await queues?.stop();
      const serverClosed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await invoker.drain(10_000);
      server.closeAllConnections();
      await serverClosed;
      for (const hook of registry.hooks.appTerminate) {
        try {
          await hook(appHookContext);
        } catch (err) {
          logger.error(`appTerminate hook failed: ${(err as Error).message}`);
        }
      }
      deactivateRegistry(registry);
    })();
    return closed;
  };

  try {
    for (const hook of registry.hooks.appStart) await hook(appHookContext);
    port_ = await listen(server, port);
  } catch (err) {
    server.close();
    deactivateRegistry(registry);
    throw err;
  }

  if (clockUrl) {
    const listenerUrl = `${baseUrl()}/admin/host/clock`;
    let registered = false;
    try {
      await retry(5, 200, () => registerClockListener(clockUrl, listenerUrl, caFile));
      registered = true;
      // Read again: a move while the app loaded (before we listened) would otherwise be missed for good.
      clock.setOffset(await fetchClockOffset(clockUrl, caFile));
      clockSynced = true;
    } catch (err) {
      logger.warn(
        `Could not register ${listenerUrl} as a clock listener at ${clockUrl}: ${(err as Error).message}. Timers will not follow clock moves until a clock check registers it.`,
      );
    }
    clockWatch = new ClockWatch(
      {
        clockUrl,
        listenerUrl,
        caFile,
        intervalMs: clockCheckMs(env, logger),
        offsetMs: () => clock.offsetMs,
        catchUp: async (offsetMs) => {
          clock.setOffset(offsetMs);
          clockSynced = true;
          logger.info(`Clock moved to ${new Date(clock.now()).toISOString()} (a move at ${clockUrl} this host was not told about)`);
          await scheduler.clockJumped();
        },
        warn: (m) => logger.warn(m),
        info: (m) => logger.info(m),
      },
      registered,
    );
    clockWatch.start();
  }

  logger.plain(`Host listening on ${baseUrl()}`);
  logger.plain('Functions:');
  for (const fn of catalog.functions) logger.plain(`    ${catalog.describe(baseUrl(), fn)}`);

  // Queue listeners start once the app is up.
  queues = startQueueTriggers(catalog.functions, env, queueOptions, (fn, data, reason, metadata) => invoke(fn, data, reason, metadata), logger);

  if (isTruthySetting(env.LOCALHOST_DISABLE_TIMERS)) {
    logger.info('Timers are disabled (LOCALHOST_DISABLE_TIMERS=true); admin runs still work.');
  } else {
    scheduler.start();
  }

  return {
    port: port_,
    url: baseUrl(),
    functions: catalog.info(baseUrl()),
    now: () => clock.now(),
    setTime: clockJump,
    close,
  };
}

/** How often the host checks it still follows the clock (KEYTURN_CLOCK_CHECK_SECONDS, default 30). */
function clockCheckMs(env: NodeJS.ProcessEnv, logger: HostLogger): number {
  const raw = env.KEYTURN_CLOCK_CHECK_SECONDS?.trim();
  const seconds = raw ? Number(raw) : 30;
  if (Number.isFinite(seconds) && seconds >= 0.1 && seconds <= 3600) return seconds * 1000;
  logger.warn(`KEYTURN_CLOCK_CHECK_SECONDS must be a number of seconds within 0.1..3600, got '${raw}'; using 30.`);
  return 30_000;
}
