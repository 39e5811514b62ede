/**
 * The app on its own in-memory local stack, for one benchmark: the stack runs in this
 * process (ephemeral ports, a temp CA) and the app in the local functions host as a
 * child process, as `npm start` runs it. Mirrors test/helpers/stack.ts without
 * importing from test/.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type RunningStack, startStack } from '../local/stack';
import { stopChild } from '../local/azurite';
import { freePort } from '../local/ports';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
const HOST_SCRIPT = join(PROJECT_ROOT, 'dist', 'local', 'host', 'main.js');

/** Cleanups of whatever is running, so Ctrl-C in run.ts leaves nothing behind. */
export const running = new Set<() => Promise<void>>();

/** One Key Vault API request as the emulator logged it. */
export interface KvRequest {
  method: string;
  path: string;
}

export interface BenchApp {
  url: string;
  ca: string;
  stack: RunningStack;
  /**
   * Every Key Vault API request so far, in order. The emulator's clock endpoint
   * (/management/…), which the app polls locally, is left out: Azure has no such call.
   */
  kvRequests: KvRequest[];
  /** CPU time (user + system) the functions host process has used so far; NaN off Linux. */
  hostCpuMs(): number;
  close(): Promise<void>;
}

const KV_LINE = /^keyvault: (GET|PUT|POST|PATCH|DELETE) (\S+) \d+/;

function sampleSettings(): Record<string, string> {
  const sample = JSON.parse(readFileSync(join(PROJECT_ROOT, 'local.settings.sample.json'), 'utf8')) as { Values: Record<string, string> };
  return sample.Values;
}

export async function startApp(): Promise<BenchApp> {
  const tlsDir = await mkdtemp(join(tmpdir(), 'keyturn-bench-tls-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
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
  // Key Vault requests are counted. Read when the stack starts, so restored right after.
  const verbose = process.env.KEYTURN_VERBOSE;
  process.env.KEYTURN_VERBOSE = '1';
  let stack: RunningStack;
  try {
    stack = await startStack({
      ports: { blob: 0, queue: 0, table: 0, cosmos: 0, keyVault: 0, eventGrid: 0 },
      tlsDir,
      hostUrl: url,
      eventGridRetryDelaysMs: [200, 500, 1000, 2000, 4000],
      log,
    });
  } catch (e) {
    await rm(tlsDir, { recursive: true, force: true });
    throw e;
  } finally {
    if (verbose === undefined) delete process.env.KEYTURN_VERBOSE;
    else process.env.KEYTURN_VERBOSE = verbose;
  }

  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...sampleSettings(),
    ...stack.settings,
    KEYTURN_ISSUER: url,
    KEYTURN_JWKS_URI: `${url}/api/.well-known/jwks.json`,
    PORT: String(port),
  };
  const host = spawn(process.execPath, [HOST_SCRIPT, PROJECT_ROOT], { env, cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const hostLog: string[] = [];
  const hostExit = new Promise<void>((r) => host.once('exit', () => r()));
  const close = async () => {
    running.delete(close);
    await stopChild(host);
    await stack.close();
    await rm(tlsDir, { recursive: true, force: true });
  };
  running.add(close);
  try {
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error('the functions host did not start within 60 s')), 60_000);
      let partial = '';
      const onData = (chunk: Buffer) => {
        // Keep only the tail: the host logs every invocation, and the pipe must be drained.
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        hostLog.push(...lines);
        if (hostLog.length > 200) hostLog.splice(0, hostLog.length - 100);
        if (lines.some((l) => l.includes('Host listening on'))) {
          clearTimeout(timer);
          ready();
        }
      };
      host.stdout.on('data', onData);
      host.stderr.on('data', onData);
      void hostExit.then(() => {
        clearTimeout(timer);
        fail(new Error('the functions host exited during start-up'));
      });
    });
  } catch (e) {
    await close();
    throw new Error(`${(e as Error).message}:\n${[...stackLog, ...hostLog].slice(-30).join('\n')}`);
  }
  return { url, ca: stack.tls.ca, stack, kvRequests, hostCpuMs: () => cpuMsOf(host.pid), close };
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

/** Any token does for the emulator; the SDK still runs its challenge-based auth. */
export const staticCredential = {
  getToken: async () => ({ token: 'keyturn-bench', expiresOnTimestamp: Date.now() + 3600_000 }),
};
