/**
 * The app on its own in-memory local stack, for one benchmark: the stack runs in this
 * process (ephemeral ports, a temp CA) and the app in the local functions host as a
 * child process, as `npm start` runs it. Mirrors test/helpers/stack.ts without
 * importing from test/.
 */
import type { CosmosRequest } from '../local/cosmos';
import { CosmosClient } from '@azure/cosmos';
import { type ChildProcess, spawn } from 'node:child_process';
import { Agent as HttpsAgent } from 'node:https';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type RunningStack, startStack } from '../local/stack';
import { stopChild } from '../local/azurite';
import { freePort } from '../local/ports';
import { expandGlob } from '../local/host/glob';
import { credentialFor } from '../local/keyvault/principals';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
const HOST_SCRIPT = join(PROJECT_ROOT, 'dist', 'local', 'host', 'main.js');

/** Cleanups of whatever is running, so Ctrl-C in run.ts leaves nothing behind. */
export const running = new Set<() => Promise<void>>();

/** One Key Vault API request as the emulator logged it. */
export interface KvRequest {
  method: string;
  path: string;
}

/** One functions host process of a bench app. */
export interface BenchHost {
  url: string;
  /** CPU time (user + system) this host process has used so far; NaN off Linux. */
  cpuMs(): number;
  /** SIGKILL, as a crashed worker: no graceful stop. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same settings. */
  restart(): Promise<void>;
}

export interface BenchApp {
  /** The first host's URL; Key Vault's events are delivered to it. */
  url: string;
  ca: string;
  stack: RunningStack;
  hosts: BenchHost[];
  /**
   * Every Key Vault API request so far, in order. The emulator's clock endpoint
   * (/management/…), which the app polls locally, is left out: Azure has no such call.
   */
  kvRequests: KvRequest[];
  /** CPU time (user + system) the first functions host process has used so far; NaN off Linux. */
  hostCpuMs(): number;
  close(): Promise<void>;
}

export interface AppOptions {
  /** Functions hosts on the one stack (default 1). */
  hosts?: number;
  /** Fraction of Key Vault requests the emulator answers 429/503 (seeded), as KEYVAULT_FAULTS. */
  keyVaultFaults?: number;
  faultSeed?: number;
  /**
   * JavaScript source of one more function file, loaded by the same host after the app's
   * own entry points: a baseline measured with the same host overhead.
   */
  extraFunction?: string;
}

/**
 * An app folder (inside dist/, so modules resolve from the project) whose one entry point
 * loads the project's entry points, then `extraFunction`.
 */
function appWithExtra(source: string): { dir: string; remove(): void } {
  const dir = join(PROJECT_ROOT, 'dist', `bench-app-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const main = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { main: string }).main;
  const files = expandGlob(main, PROJECT_ROOT);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'keyturn-bench-app', private: true, main: 'entry.js' }));
  copyFileSync(join(PROJECT_ROOT, 'host.json'), join(dir, 'host.json'));
  writeFileSync(join(dir, 'entry.js'), `${files.map((f) => `require(${JSON.stringify(f)});`).join('\n')}\n${source}\n`);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const KV_LINE = /^keyvault: (GET|PUT|POST|PATCH|DELETE) (\S+) \d+/;

function sampleSettings(): Record<string, string> {
  const sample = JSON.parse(readFileSync(join(PROJECT_ROOT, 'local.settings.sample.json'), 'utf8')) as { Values: Record<string, string> };
  return sample.Values;
}

/** Sets environment variables for the duration of `fn` (the stack reads some at start). */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) if (v === undefined) delete process.env[k];
  else process.env[k] = v;
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

export async function startApp(options: AppOptions = {}): Promise<BenchApp> {
  const tlsDir = await mkdtemp(join(tmpdir(), 'keyturn-bench-tls-'));
  const ports = await Promise.all(Array.from({ length: options.hosts ?? 1 }, () => freePort()));
  const url = `http://127.0.0.1:${ports[0]}`;
  const kvRequests: KvRequest[] = [];
  const stackLog: string[] = [];
  const log = (line: string) => {
    const m = KV_LINE.exec(line);
    if (m) {
      if (!m[2]!.startsWith('/management')) kvRequests.push({ method: m[1]!, path: m[2]! });
    } else {
      stackLog.push(line);
      if (stackLog.length > 50) stackLog.shift();
    }
  };
  // The emulator logs each request only when KEYTURN_VERBOSE=1; those lines are how the
  // Key Vault requests are counted. Faults likewise come from its environment.
  let stack: RunningStack;
  try {
    stack = await withEnv(
      {
        KEYTURN_VERBOSE: '1',
        KEYVAULT_FAULTS: options.keyVaultFaults ? String(options.keyVaultFaults) : undefined,
        KEYVAULT_FAULTS_SEED: options.faultSeed !== undefined ? String(options.faultSeed) : undefined,
      },
      () =>
        startStack({
          ports: { blob: 0, queue: 0, table: 0, cosmos: 0, keyVault: 0, eventGrid: 0 },
          tlsDir,
          hostUrl: url,
          eventGridRetryDelaysMs: [200, 500, 1000, 2000, 4000],
          log,
        }),
    );
  } catch (e) {
    await rm(tlsDir, { recursive: true, force: true });
    throw e;
  }

  const hosts: (BenchHost & { stop(): Promise<void> })[] = [];
  const extra = options.extraFunction === undefined ? undefined : appWithExtra(options.extraFunction);
  const close = async () => {
    running.delete(close);
    await Promise.allSettled(hosts.map((h) => h.stop()));
    extra?.remove();
    await stack.close();
    await rm(tlsDir, { recursive: true, force: true });
  };
  running.add(close);
  try {
    for (const port of ports) hosts.push(await startHost(port, extra?.dir ?? PROJECT_ROOT, { ...sampleSettings(), ...stack.settings, KEYTURN_ISSUER: url, KEYTURN_JWKS_URI: `${url}/api/.well-known/jwks.json` }));
  } catch (e) {
    await close();
    throw new Error(`${(e as Error).message}:\n${stackLog.slice(-20).join('\n')}`);
  }
  return { url, ca: stack.tls.ca, stack, hosts, kvRequests, hostCpuMs: () => hosts[0]!.cpuMs(), close };
}

async function startHost(port: number, appDir: string, settings: Record<string, string>): Promise<BenchHost & { stop(): Promise<void> }> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...settings, PORT: String(port) };
  let host: ChildProcess;
  const hostLog: string[] = [];
  const launch = () =>
    new Promise<void>((ready, fail) => {
      host = spawn(process.execPath, [HOST_SCRIPT, appDir], { env, cwd: appDir, stdio: ['ignore', 'pipe', 'pipe'] });
      const timer = setTimeout(() => fail(new Error('the functions host did not start within 60 s')), 60_000);
      let partial = '';
      let up = false;
      const onData = (chunk: Buffer) => {
        // Keep only the tail: the host logs every invocation, and the pipe must be drained.
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        hostLog.push(...lines);
        if (hostLog.length > 200) hostLog.splice(0, hostLog.length - 100);
        if (!up && lines.some((l) => l.includes('Host listening on'))) {
          up = true;
          clearTimeout(timer);
          ready();
        }
      };
      host.stdout!.on('data', onData);
      host.stderr!.on('data', onData);
      host.once('exit', () => {
        clearTimeout(timer);
        if (!up) fail(new Error(`the functions host exited during start-up:\n${hostLog.slice(-30).join('\n')}`));
      });
    });
  await launch();
  const exited = () => host.exitCode !== null || host.signalCode !== null;
  return {
    url: `http://127.0.0.1:${port}`,
    cpuMs: () => cpuMsOf(host.pid),
    async kill() {
      if (exited()) return;
      const gone = new Promise<void>((r) => host.once('exit', () => r()));
      host.kill('SIGKILL');
      await gone;
    },
    restart: launch,
    stop: () => (exited() ? Promise.resolve() : stopChild(host)),
  };
}

/** utime + stime from /proc/{pid}/stat, in clock ticks of (on Linux, practically always) 10 ms. */
function cpuMsOf(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is [0], utime [11], stime [12].
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** Options for the real Key Vault SDK clients against the emulator: trust its CA, nothing else. */
export const keyVaultClientOptions = (ca: string) => ({ disableChallengeResourceVerification: true, tlsOptions: { ca } });

/** The stack's vaults enforce RBAC: the benchmarks act as `operator` (Key Vault Administrator on keyturn-local). */
export const staticCredential = credentialFor('operator');

/** A Key Vault `SecretNearExpiry` event (Event Grid schema, PascalCase data) for one secret version of the app's vault. */
export function secretNearExpiry(app: BenchApp, name: string, version: string, expiresOn: Date) {
  const { keyVault } = app.stack;
  return {
    id: `near-expiry-${name}-${version}`,
    topic: keyVault.topic,
    subject: name,
    eventType: 'Microsoft.KeyVault.SecretNearExpiry',
    eventTime: new Date().toISOString(),
    dataVersion: '1',
    metadataVersion: '1',
    data: {
      Id: `${keyVault.url}/secrets/${name}/${version}`,
      VaultName: keyVault.vaultName,
      ObjectType: 'Secret',
      ObjectName: name,
      Version: version,
      NBF: null,
      EXP: Math.floor(expiresOn.getTime() / 1000),
    },
  };
}

/** A Cosmos DB client on the app's stack (its endpoint, key and CA), for baselines and read-only checks. */
export function cosmosClient(app: BenchApp): CosmosClient {
  const settings = app.stack.settings;
  return new CosmosClient({
    endpoint: settings.KEYTURN_COSMOS_ENDPOINT!,
    key: settings.KEYTURN_COSMOS_KEY!,
    agent: new HttpsAgent({ ca: app.ca, keepAlive: true }),
    connectionPolicy: { enableEndpointDiscovery: false },
  });
}

/** Every request the stack's in-process Cosmos DB server receives from now on (the app's, and a baseline's), by the server's request hook. */
export function countCosmosRequests(app: BenchApp): { requests: CosmosRequest[]; restore(): void } {
  const requests: CosmosRequest[] = [];
  const restore = app.stack.cosmos.onRequest((r) => requests.push(r));
  return { requests, restore };
}
