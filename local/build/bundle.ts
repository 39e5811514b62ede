/**
 * Bundles the app for deployment: every function file (functions/*.ts) in one CommonJS
 * file, `dist/app/app.js`, with a source map, as Azure's guidance for Node function
 * apps advises (fewer files to resolve and read at each cold start). package.json
 * `main` is `dist/app/main.js`, a tiny loader (codeCacheLoader.ts) that runs app.js with
 * the V8 code cache made here (`app.js.cache`: the bundle compiled, and the functions
 * module load runs), so `func start`, Azure and the local host load the same bundle.
 * `@azure/functions-core` stays external: the worker provides it.
 *
 * Each Azure SDK goes into its own file, `dist/app/sdk/<name>.js`, which main.js
 * `require`s where the adapters do: inside the factory, on first use. So a cold start
 * neither runs nor even parses the SDKs (parsing 5 MB of them cost more than a bare app's
 * whole start); the first Cosmos DB call loads only the Cosmos DB SDK.
 */
import { type Plugin, build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..', '..');
const OUT_DIR = join(ROOT, 'dist', 'app');

/** The Azure SDKs among the dependencies: everything under @azure/ but the Functions library the app registers with. */
export function sdkPackages(): string[] {
  const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  return Object.keys(dependencies)
    .filter((name) => name.startsWith('@azure/') && name !== '@azure/functions')
    .sort();
}

/** `@azure/cosmos` → `sdk/cosmos.js` (relative to main.js). */
const chunkOf = (name: string): string => `sdk/${name.replace(/^@azure\//, '')}.js`;

/** Imports of an SDK become a `require` of its own file, left where the source has it. */
function sdkChunks(names: string[]): Plugin {
  const wanted = new Set(names);
  return {
    name: 'keyturn-sdk-chunks',
    setup(b) {
      b.onResolve({ filter: /^@azure\// }, (args) => (wanted.has(args.path) ? { path: `./${chunkOf(args.path)}`, external: true } : undefined));
    },
  };
}

/**
 * zod's `z.locales` re-exports every language's error messages (~400 kB, half of zod in
 * the bundle); Keyturn uses none but English, which zod loads on its own. In the bundle
 * the namespace holds `en` only.
 */
const zodEnglishOnly: Plugin = {
  name: 'keyturn-zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: join(args.resolveDir, '..', 'locales', 'index.js'), namespace: 'zod-locales' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from './en.js';`,
      resolveDir: join(args.path, '..'),
      loader: 'js',
    }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  legalComments: 'none',
  // Less to read and parse at each cold start; the source map maps back.
  minify: process.env.KEYTURN_BUNDLE_MINIFY !== "0",
  // Function and class names stay in the SDK files (their code may read them); app.js drops them, below.
  keepNames: true,
} as const;

/**
 * Loads the app once through the loader with the sample settings (no service is called at
 * load) and writes the code V8 compiled to `app.js.cache`. Settings naming files (CAs)
 * are left out: they need not exist at build time, and the cache only gets less complete.
 */
function writeCodeCache(main: string): void {
  const sample = JSON.parse(readFileSync(join(ROOT, 'local.settings.sample.json'), 'utf8')) as { Values: Record<string, string> };
  const settings = Object.fromEntries(Object.entries(sample.Values).filter(([name]) => !/_FILE$/.test(name)));
  const run = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(main)}); process.exit(0);`], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...settings, KEYTURN_WRITE_CODE_CACHE: '1' },
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`writing the code cache failed: ${run.stderr.slice(-1000)}`);
}

export async function bundle(): Promise<string> {
  const functions = readdirSync(join(ROOT, 'functions'))
    .filter((f) => f.endsWith('.ts'))
    .sort();
  const outfile = join(OUT_DIR, 'app.js');
  const main = join(OUT_DIR, 'main.js');
  const sdks = sdkPackages();
  rmSync(join(OUT_DIR, 'sdk'), { recursive: true, force: true });
  await build({
    ...common,
    // Imported, not required: esbuild then hoists the modules into one scope instead of wrapping
    // each in a lazy initialiser with a getter per export (less to run at load, a smaller cache).
    stdin: {
      contents: functions.map((f) => `import './functions/${f.replace(/\.ts$/, '')}';`).join('\n'),
      resolveDir: ROOT,
      sourcefile: 'app-entry.js',
      loader: 'js',
    },
    outfile,
    // keepNames wraps every function and class in a naming call that runs at load (≈ 10 % of
    // load's CPU, and a larger code cache). Keyturn's code names its errors explicitly
    // (`this.name = …`, what `errorFacts` and the logs read) and reads no `constructor.name`;
    // stack traces map back through the source map (`--enable-source-maps`).
    keepNames: false,
    external: ['@azure/functions-core'],
    plugins: [sdkChunks(sdks), zodEnglishOnly],
  });
  // One self-contained file per SDK (shared @azure/core-* code is repeated in each: only
  // the SDKs a process uses are ever read).
  await Promise.all(
    sdks.map((name) =>
      build({
        ...common,
        stdin: { contents: `module.exports = require('${name}');`, resolveDir: ROOT, sourcefile: `${name}-entry.js`, loader: 'js' },
        outfile: join(OUT_DIR, chunkOf(name)),
      }),
    ),
  );
  // The loader is package.json `main`; it needs nothing but Node.
  await build({
    ...common,
    stdin: {
      contents: `module.exports = require('./local/build/codeCacheLoader').loadApp(require('node:path').join(__dirname, 'app.js'), module);`,
      resolveDir: ROOT,
      sourcefile: 'main-entry.js',
      loader: 'js',
    },
    outfile: main,
  });
  rmSync(`${outfile}.cache`, { force: true });
  writeCodeCache(main);
  return main;
}

if (require.main === module) {
  bundle().then(
    (out) => console.log(`bundled the app into ${out} (loader), app.js with its code cache, and the Azure SDKs in sdk/, loaded on first use`),
    (e: unknown) => {
      console.error(`bundle: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
