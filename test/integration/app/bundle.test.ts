/**
 * The deployed bundle: package.json `main` is the esbuild bundle, and a host started from
 * the project (as `npm start` and `func start` do) serves every function registered in
 * functions/*.ts through it — one call of each trigger kind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type TestStack, PROJECT_ROOT, call, startStack } from '../../helpers/stack';

const registered = (): string[] => {
  const names: string[] = [];
  for (const file of readdirSync(join(PROJECT_ROOT, 'functions')).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(join(PROJECT_ROOT, 'functions', file), 'utf8');
    for (const m of source.matchAll(/app\.(?:http|timer|eventGrid|storageQueue)\(\s*'([^']+)'/g)) names.push(m[1]!);
  }
  return names.sort();
};

/** The sample settings without the CA files (they exist only once a stack has run). */
const sampleSettings = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries((JSON.parse(readFileSync(join(PROJECT_ROOT, 'local.settings.sample.json'), 'utf8')) as { Values: Record<string, string> }).Values).filter(([k]) => !k.endsWith('_FILE')),
  );

describe('When the app is started from its bundle', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test('then package.json main is the built bundle, not the per-file tsc output', () => {
    const main = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { main: string }).main;
    expect(main).toBe('dist/app/main.js');
    expect(existsSync(join(PROJECT_ROOT, main))).toBe(true);
    // main.js is the loader; the bundle beside it keeps its source map and has its V8 code cache.
    expect(readFileSync(join(PROJECT_ROOT, 'dist', 'app', 'app.js'), 'utf8')).toContain('sourceMappingURL=app.js.map');
    expect(existsSync(join(PROJECT_ROOT, 'dist', 'app', 'app.js.cache'))).toBe(true);
  });

  test('then main.js runs app.js from its code cache as a CommonJS module of its own', () => {
    const app = join(PROJECT_ROOT, 'dist', 'app', 'app.js');
    // A fresh process with the sample settings: module load calls no service.
    const script =
      `const vm = require('node:vm'); let used; const Script = vm.Script;` +
      `vm.Script = function (src, o) { const s = new Script(src, o); used = { cached: !!o.cachedData, rejected: s.cachedDataRejected }; return s; };` +
      `require(${JSON.stringify(join(PROJECT_ROOT, 'dist', 'app', 'main.js'))});` +
      `const m = require.cache[${JSON.stringify(app)}];` +
      `process.stdout.write(JSON.stringify({ used, cached: !!m, filename: m && m.filename, loaded: m && m.loaded }));`;
    const run = spawnSync(process.execPath, ['-e', script], { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH ?? '', ...sampleSettings() }, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ used: { cached: true, rejected: false }, cached: true, filename: app, loaded: true });
    // With source maps on, Node's own loader compiles app.js (it maps only what it compiled).
    const mapped = spawnSync(process.execPath, ['--enable-source-maps', '-e', script], { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH ?? '', ...sampleSettings() }, encoding: 'utf8' });
    expect(mapped.status).toBe(0);
    expect(JSON.parse(mapped.stdout)).toEqual({ cached: true, filename: app, loaded: true });
  });

  test('then module load is registration only: neither classic zod nor any Azure SDK is read', () => {
    const script =
      `require(${JSON.stringify(join(PROJECT_ROOT, 'dist', 'app', 'main.js'))});` +
      `process.stdout.write(JSON.stringify(Object.keys(require.cache).map((f) => require('node:path').relative(${JSON.stringify(PROJECT_ROOT)}, f))));`;
    const run = spawnSync(process.execPath, ['-e', script], { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH ?? '', ...sampleSettings() }, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect((JSON.parse(run.stdout) as string[]).filter((f) => !f.startsWith('node_modules'))).toEqual(['dist/app/main.js', 'dist/app/app.js']);
  });

  test('then a bad setting still stops module load, naming it (the settings schema is zod/mini, in app.js)', () => {
    const run = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(PROJECT_ROOT, 'dist', 'app', 'main.js'))})`], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', ...sampleSettings(), KEYTURN_JWKS_CACHE_MS: 'soon', KEYTURN_RESUME_BUDGET_SECONDS: '5' },
      encoding: 'utf8',
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('KEYTURN_JWKS_CACHE_MS (Invalid input: expected number, received NaN)');
    expect(run.stderr).toContain('KEYTURN_RESUME_BUDGET_SECONDS (Too small: expected number to be >=10)');
  });

  test('then classic zod and each SDK load on first use from code caches of their own', () => {
    const chunks = ['zod.js', ...readdirSync(join(PROJECT_ROOT, 'dist', 'app', 'sdk')).filter((f) => /^[a-z-]+\.js$/.test(f)).map((f) => `sdk/${f}`)];
    expect(chunks).toEqual(expect.arrayContaining(['zod.js', 'sdk/cosmos.js', 'sdk/keyvault-keys.js', 'sdk/keyvault-secrets.js', 'sdk/identity.js']));
    const script =
      `const vm = require('node:vm'); const used = []; const Script = vm.Script;` +
      `vm.Script = function (src, o) { const s = new Script(src, o); used.push({ file: require('node:path').basename(o?.filename ?? '?'), cached: !!o?.cachedData, rejected: s.cachedDataRejected }); return s; };` +
      `const loaded = ${JSON.stringify(chunks)}.map((c) => require(require('node:path').join(${JSON.stringify(join(PROJECT_ROOT, 'dist', 'app'))}, c)));` +
      `const { z } = loaded[0]; const parsed = z.strictObject({ a: z.string().min(1) }).safeParse({ a: '' });` +
      `process.stdout.write(JSON.stringify({ used, zodWorks: !parsed.success && parsed.error.issues[0].message, cosmos: typeof loaded[${chunks.indexOf('sdk/cosmos.js')}].CosmosClient }));`;
    const run = spawnSync(process.execPath, ['-e', script], { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout) as { used: { file: string; cached: boolean; rejected: boolean }[]; zodWorks: string; cosmos: string };
    expect(out.used).toEqual(chunks.map((c) => ({ file: c.replace(/^sdk\//, '').replace(/\.js$/, '.bundle.js'), cached: true, rejected: false })));
    expect(out.zodWorks).toBe('Too small: expected string to have >=1 characters');
    expect(out.cosmos).toBe('function');
  });

  test('then the host lists exactly the functions registered in functions/*.ts', async () => {
    const listed = (await call('GET', `${stack.host!.url}/admin/functions`)).json<{ name: string }[]>().map((f) => f.name);
    expect(listed.sort()).toEqual(registered());
  });

  test('then an HTTP route, a timer and the Event Grid webhook each answer through the bundle', async () => {
    const discovery = await call('GET', `${stack.host!.url}/api/.well-known/openid-configuration`);
    expect(discovery.status).toBe(200);
    expect(discovery.json()).toMatchObject({ issuer: expect.any(String), jwks_uri: expect.any(String) });

    const timer = await call('POST', `${stack.host!.url}/admin/functions/expirySweep`, { body: { input: '' } });
    expect(timer.status).toBe(202);

    const event = {
      id: 'bundle-1',
      topic: stack.keyVault.topic,
      subject: 'not-managed',
      eventType: 'Microsoft.KeyVault.SecretNearExpiry',
      eventTime: new Date().toISOString(),
      dataVersion: '1',
      metadataVersion: '1',
      data: { Id: `${stack.keyVault.url}/secrets/not-managed/0123`, VaultName: stack.keyVault.vaultName, ObjectType: 'Secret', ObjectName: 'not-managed', Version: '0123', NBF: null, EXP: 1767225600 },
    };
    const webhook = await call('POST', `${stack.host!.url}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`, {
      body: [event],
      headers: { 'aeg-event-type': 'Notification' },
    });
    expect(webhook.status).toBe(202);
  });
});
