/**
 * Runs the local functions host (`dist/local/host/main.js`, so build first) as a child
 * process. Jest's module sandbox cannot see the host's require proxy, hence a real process.
 *
 *   const host = await startHostProcess({ appDir: 'test/fixtures/app', env: { LOCALHOST_DISABLE_TIMERS: 'true' } });
 *   await fetch(`${host.url}/api/...`);
 *   await host.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { eventually } from './process';

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const HOST_MAIN = resolve(REPO_ROOT, 'dist', 'local', 'host', 'main.js');
export const FIXTURE_APP_DIR = resolve(REPO_ROOT, 'test', 'fixtures', 'app');

export interface HostProcessOptions {
  /** App directory (default: the host fixture app). Relative paths are from the repository root. */
  appDir?: string;
  /** Added to a copy of process.env (a value of undefined removes the variable). PORT defaults to 0. */
  env?: Record<string, string | undefined>;
  /** How long to wait for "Host listening on" (default 30 s). */
  readyTimeoutMs?: number;
}

export interface HostProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** stdout and stderr so far, interleaved by arrival. */
  output(): string;
  lines(): string[];
  /** Resolves with the first line (already printed or future) matching `pattern`. */
  waitForLine(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

function buildEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' };
  // A clock URL inherited from the developer's shell would make tests depend on a running emulator.
  delete env.KEYTURN_CLOCK_URL;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * local.settings.json is never committed (it holds real settings in real apps), so the
 * fixture's copy is made from local.settings.fixture.json; tmp + rename keeps parallel
 * test files from reading a half-written file.
 */
function ensureFixtureSettings(appDir: string): void {
  const source = join(appDir, 'local.settings.fixture.json');
  if (!existsSync(source)) return;
  const tmp = join(appDir, `local.settings.json.${process.pid}.tmp`);
  copyFileSync(source, tmp);
  renameSync(tmp, join(appDir, 'local.settings.json'));
}

function spawnHost(options: HostProcessOptions): { child: ChildProcess; output: () => string; onData: (cb: () => void) => void } {
  if (!existsSync(HOST_MAIN)) throw new Error(`${HOST_MAIN} does not exist: run \`npm run build\` first.`);
  const appDir = resolve(REPO_ROOT, options.appDir ?? FIXTURE_APP_DIR);
  ensureFixtureSettings(appDir);
  const child = spawn(process.execPath, [HOST_MAIN, appDir], { cwd: REPO_ROOT, env: buildEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    for (const l of listeners) l();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return { child, output: () => text, onData: (cb) => listeners.add(cb) };
}

function matches(line: string, pattern: RegExp | string): boolean {
  return typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line);
}

export async function startHostProcess(options: HostProcessOptions = {}): Promise<HostProcess> {
  const { child, output, onData } = spawnHost(options);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const lines = (): string[] => output().split(/\r?\n/);

  const waitForLine = (pattern: RegExp | string, timeoutMs = 30_000): Promise<string> =>
    new Promise((resolveLine, reject) => {
      let done = false;
      const check = (): void => {
        if (done) return;
        const found = lines().find((l) => matches(l, pattern));
        if (found !== undefined) {
          done = true;
          clearTimeout(timer);
          resolveLine(found);
        }
      };
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        reject(new Error(`Timed out waiting for ${String(pattern)} in host output:\n${output()}`));
      }, timeoutMs);
      onData(check);
      void exited.then(() => {
        check();
        if (!done) {
          done = true;
          clearTimeout(timer);
          reject(new Error(`Host exited before printing ${String(pattern)}:\n${output()}`));
        }
      });
      check();
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };

  let listening: string;
  try {
    listening = await waitForLine(/Host listening on http:\/\/127\.0\.0\.1:\d+/, options.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await stop('SIGKILL');
    throw err;
  }
  const url = /http:\/\/127\.0\.0\.1:\d+/.exec(listening)?.[0] as string;
  return { url, port: Number(new URL(url).port), child, output, lines, waitForLine, stop, exited };
}

/** Runs the host until it exits on its own (start-up failures); kills it after `timeoutMs`. */
export async function runHostUntilExit(
  options: HostProcessOptions & { timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string }> {
  const { child, output } = spawnHost(options);
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, output: output() };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
/** Polls until `probe` gives a value (see `eventually`). */
export function pollUntil<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  return eventually(probe, 'condition', timeoutMs, intervalMs);
}
