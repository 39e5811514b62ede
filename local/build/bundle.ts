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
import { appendFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { BUILD_ID_MARKER } from './codeCacheLoader';
import { basename, join, resolve } from 'node:path';

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
/** A chunk's loader `x.js` runs `x.bundle.js`, the code itself. */
const bundleOf = (loader: string): string => loader.replace(/\.js$/, '.bundle.js');

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

/**
 * Classic zod (≈ 0.4 MB, the largest library in the bundle) is its own file, `zod.js`,
 * loaded where a schema is first built: every schema but the settings' is lazy
 * (`lazySchema`), and the settings use zod/mini (bundled into app.js, a few kB), so module
 * load neither parses nor initialises classic zod. The app's `import { z } from 'zod'`
 * becomes a getter that loads zod.js (through the code-cache loader) on first access.
 */
const ZOD_CHUNK = 'zod.js';
const zodOnFirstUse: Plugin = {
  name: 'keyturn-zod-on-first-use',
  setup(b) {
    b.onResolve({ filter: /^zod$/ }, (args) => (/node_modules[\\/]/.test(args.importer) ? undefined : { path: 'zod', namespace: 'keyturn-zod' }));
    b.onLoad({ filter: /.*/, namespace: 'keyturn-zod' }, () => ({
      contents:
        `let zod;\n` +
        `Object.defineProperty(exports, 'z', { enumerable: true, get: () => (zod ??= require('./${ZOD_CHUNK}')).z });\n`,
      loader: 'js',
    }));
    b.onResolve({ filter: new RegExp(`^\\./${ZOD_CHUNK.replace('.', '\\.')}$`) }, (args) => ({ path: args.path, external: true }));
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
/** Stamps `file`'s last line with a SHA-1 of its content: the code-cache loader's check that a cache is for it. */
function stampBuildId(file: string): void {
  appendFileSync(file, `\n${BUILD_ID_MARKER}${createHash('sha1').update(readFileSync(file)).digest('hex')}\n`);
}

/** A loader (package.json `main`, `zod.js`, `sdk/*.js`) that runs `bundle` beside it from its code cache. */
const loaderOf = (bundle: string): string =>
  `module.exports = require('./local/build/codeCacheLoader').loadApp(require('node:path').join(__dirname, ${JSON.stringify(bundle)}), module);`;

function writeCodeCache(loaders: string[]): void {
  const sample = JSON.parse(readFileSync(join(ROOT, 'local.settings.sample.json'), 'utf8')) as { Values: Record<string, string> };
  const settings = Object.fromEntries(Object.entries(sample.Values).filter(([name]) => !/_FILE$/.test(name)));
  const run = spawnSync(process.execPath, ['-e', `${loaders.map((l) => `require(${JSON.stringify(l)});`).join(' ')} process.exit(0);`], {
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
  // Only this build's files: a chunk renamed or removed must not linger beside the new ones.
  rmSync(OUT_DIR, { recursive: true, force: true });
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
    plugins: [sdkChunks(sdks), zodOnFirstUse, zodEnglishOnly],
  });
  // One self-contained file per SDK (shared @azure/core-* code is repeated in each: only
  // the SDKs a process uses are ever read), and classic zod, loaded at the first schema built
  // (above). Each is `<name>.bundle.js` with a code cache of its own, run by `<name>.js`.
  const chunks = [
    ...sdks.map((name) => ({ loader: join(OUT_DIR, chunkOf(name)), entry: `module.exports = require('${name}');`, plugins: [] as Plugin[] })),
    // ESM, so esbuild picks zod's ESM files (the English-only locale plugin matches those).
    { loader: join(OUT_DIR, ZOD_CHUNK), entry: `export { z } from 'zod';`, plugins: [zodEnglishOnly] },
  ];
  await Promise.all(
    chunks.map(({ loader, entry, plugins }) =>
      build({ ...common, stdin: { contents: entry, resolveDir: ROOT, sourcefile: 'chunk-entry.js', loader: 'js' }, outfile: bundleOf(loader), plugins }),
    ),
  );
  // The loaders: package.json `main` (app.js), zod.js and sdk/*.js; they need nothing but Node.
  const loaders = [{ loader: main, target: outfile }, ...chunks.map(({ loader }) => ({ loader, target: bundleOf(loader) }))];
  await Promise.all(
    loaders.map(({ loader, target }) =>
      build({ ...common, stdin: { contents: loaderOf(basename(target)), resolveDir: ROOT, sourcefile: 'loader-entry.js', loader: 'js' }, outfile: loader }),
    ),
  );
  for (const { target } of loaders) {
    stampBuildId(target);
    rmSync(`${target}.cache`, { force: true });
  }
  writeCodeCache(loaders.map(({ loader }) => loader));
  return main;
}

if (require.main === module) {
  bundle().then(
    (out) => console.log(`bundled the app into ${out} (loader), app.js with its code cache, classic zod (zod.js) and the Azure SDKs (sdk/), loaded on first use`),
    (e: unknown) => {
      console.error(`bundle: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
