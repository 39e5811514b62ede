/**
 * Cold start, beside a bare app in the same run: (1) loading the deployed entry points
 * (package.json `main`) in a fresh Node process vs a hello app that registers one HTTP
 * function, and (2) time to the first 200 of a cold functions host for one HTTP route vs
 * the bare app's (so lazy loading cannot just move the cost into the first request).
 * Several interleaved runs; median and spread, wall time and peak memory.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { expandGlob } from '../local/host/glob';
import { freePort } from '../local/ports';
import { stopChild } from '../local/azurite';
import { fmt, httpClient, scaled, sleep, table } from './lib';
import { PROJECT_ROOT, startApp } from './stack';

const RUNS = Number(process.env.KEYTURN_BENCH_RUNS ?? scaled(5, 1));
/** Inside the project, so the bare app resolves `@azure/functions` from the same node_modules. */
const BARE_DIR = join(PROJECT_ROOT, 'dist', 'bench-bare-app');

interface Sample {
  wallMs: number;
  peakMiB: number;
  /** User + system CPU time of the process (module load only): steadier than wall time on a busy machine. */
  cpuMs?: number;
}

/** A hello app: one anonymous HTTP function, as the quickstarts write it. */
function writeBareApp(): void {
  mkdirSync(BARE_DIR, { recursive: true });
  writeFileSync(join(BARE_DIR, 'package.json'), JSON.stringify({ name: 'bare', private: true, main: 'hello.js' }));
  writeFileSync(join(BARE_DIR, 'host.json'), JSON.stringify({ version: '2.0', extensions: { http: { routePrefix: 'api' } } }));
  writeFileSync(
    join(BARE_DIR, 'hello.js'),
    "const { app } = require('@azure/functions');\n" +
      "app.http('hello', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ jsonBody: { hello: 'world' } }) });\n",
  );
}

/** The files func would load for an app: its package.json `main` glob. */
function entryPoints(appDir: string): string[] {
  const main = (JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as { main: string }).main;
  return expandGlob(main, appDir);
}

/**
 * As the worker loads an app: `@azure/functions-core` is the local host's stand-in for the
 * worker's module, so registrations reach a registry. Without it the library runs in
 * "test mode" and prints a warning per registered function to stderr, a cost no deployed
 * app pays (and one that grows with the number of functions). Both apps get the same.
 */
const WORKER_CORE =
  `const core = require(${JSON.stringify(join(PROJECT_ROOT, 'dist', 'local', 'host', 'coreModule.js'))});` +
  'core.installCoreModule(); core.activateRegistry(new core.CoreRegistry(() => {}));';

/** Loads the entry points in a fresh process: wall time from spawn to exit, and its peak RSS. */
function loadOnce(files: string[], env: Record<string, string>): Promise<Sample> {
  const script =
    WORKER_CORE +
    `for (const f of ${JSON.stringify(files)}) require(f);` +
    `const ru = process.resourceUsage();` +
    `process.stdout.write(JSON.stringify({ maxRssKb: ru.maxRSS, cpuUs: ru.userCPUTime + ru.systemCPUTime }));`;
  return new Promise((resolveRun, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-e', script], { env, cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => {
      const wallMs = performance.now() - t0;
      if (code !== 0) return reject(new Error(`loading the entry points failed (${code}): ${err.slice(-500)}`));
      const { maxRssKb, cpuUs } = JSON.parse(out.slice(out.lastIndexOf('{'))) as { maxRssKb: number; cpuUs: number };
      resolveRun({ wallMs, peakMiB: maxRssKb / 1024, cpuMs: cpuUs / 1000 });
    });
  });
}

/** Spawns the local functions host for `appDir` and times the first 200 on `route`. */
async function firstResponse(appDir: string, route: string, env: Record<string, string>): Promise<Sample> {
  const port = await freePort();
  const http = httpClient({ maxSockets: 1, keepAlive: false });
  const t0 = performance.now();
  const host = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'local', 'host', 'main.js'), appDir], {
    env: { ...env, PORT: String(port) },
    cwd: appDir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  host.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  try {
    for (;;) {
      if (performance.now() - t0 > 60_000) throw new Error(`no 200 from ${route} within 60 s: ${stderr}`);
      if (host.exitCode !== null) throw new Error(`the host exited: ${stderr}`);
      const reply = await http.call('GET', `http://127.0.0.1:${port}${route}`).catch(() => undefined);
      if (reply?.status === 200) break;
      await sleep(5);
    }
    const wallMs = performance.now() - t0;
    return { wallMs, peakMiB: peakMiBOf(host.pid) };
  } finally {
    http.close();
    await stopChild(host);
  }
}

/** VmHWM (peak resident set) from /proc; NaN off Linux. */
function peakMiBOf(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const spread = (xs: number[]): string => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;

export interface ColdStartFigures {
  loadRatio: number;
  firstResponseRatio: number;
}

export async function run(): Promise<ColdStartFigures> {
  writeBareApp();
  // The app's settings point at a running stack, as in Azure: module load must not need it, but the first request may.
  const app = await startApp();
  try {
    const sample = JSON.parse(readFileSync(join(PROJECT_ROOT, 'local.settings.sample.json'), 'utf8')) as { Values: Record<string, string> };
    const env = { PATH: process.env.PATH ?? '', ...sample.Values, ...app.stack.settings };
    const appFiles = entryPoints(PROJECT_ROOT);
    const bareFiles = entryPoints(BARE_DIR);
    // For comparison: tsc's one file per function, unbundled.
    const unbundled = expandGlob('dist/functions/*.js', PROJECT_ROOT);
    const bundled = !appFiles.every((f) => unbundled.includes(f));
    const load = { app: [] as Sample[], bare: [] as Sample[], unbundled: [] as Sample[] };
    const first = { app: [] as Sample[], bare: [] as Sample[] };
    // Interleaved, so a change in the machine's load affects both sides alike.
    for (let i = 0; i < RUNS; i++) {
      load.bare.push(await loadOnce(bareFiles, env));
      load.app.push(await loadOnce(appFiles, env));
      if (bundled) load.unbundled.push(await loadOnce(unbundled, env));
    }
    for (let i = 0; i < RUNS; i++) {
      first.bare.push(await firstResponse(BARE_DIR, '/api/hello', env));
      first.app.push(await firstResponse(PROJECT_ROOT, '/api/.well-known/openid-configuration', env));
    }
    const row = (label: string, xs: Sample[]) => [
      label,
      fmt(median(xs.map((x) => x.wallMs))),
      spread(xs.map((x) => x.wallMs)),
      fmt(median(xs.map((x) => x.peakMiB))),
      xs[0]?.cpuMs === undefined ? '' : fmt(median(xs.map((x) => x.cpuMs!))),
    ];
    const loadRatio = median(load.app.map((x) => x.wallMs)) / median(load.bare.map((x) => x.wallMs));
    const firstResponseRatio = median(first.app.map((x) => x.wallMs)) / median(first.bare.map((x) => x.wallMs));
    const memRatio = median(load.app.map((x) => x.peakMiB)) / median(load.bare.map((x) => x.peakMiB));
    const cpuRatio = median(load.app.map((x) => x.cpuMs!)) / median(load.bare.map((x) => x.cpuMs!));
    console.log(`coldstart: ${RUNS} runs each, interleaved; the app's entry points (${appFiles.length} files from package.json "main") vs a bare hello app`);
    console.log(
      table(
        ['', 'median ms', 'min–max ms', 'peak MiB', 'CPU ms'],
        [
          row(`module load, bare hello app`, load.bare),
          ...(bundled ? [row('module load, Keyturn unbundled (tsc output)', load.unbundled)] : []),
          row(`module load, Keyturn${bundled ? ' bundle' : ''}`, load.app),
          row(`first 200, bare (/api/hello)`, first.bare),
          row(`first 200, Keyturn (openid-configuration)`, first.app),
        ],
      ),
    );
    console.log(
      `  ratios: module load Keyturn / bare = ${fmt(loadRatio)}x (required ≤ 1.5x), CPU time ${fmt(cpuRatio)}x, peak memory ${fmt(memRatio)}x; ` +
        `first response Keyturn / bare = ${fmt(firstResponseRatio)}x (goal ≤ 1.5x)`,
    );
    return { loadRatio, firstResponseRatio };
  } finally {
    await app.close();
    rmSync(BARE_DIR, { recursive: true, force: true });
  }
}
