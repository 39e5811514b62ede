/**
 * Bundles the app for deployment: every function file (functions/*.ts) in one CommonJS
 * file, `dist/app/main.js`, with a source map, as Azure's guidance for Node function
 * apps advises (fewer files to resolve and read at each cold start). package.json
 * `main` points at it, so `func start`, Azure and the local host load the same bundle.
 * `@azure/functions-core` stays external: the worker provides it.
 */
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..', '..');

export async function bundle(): Promise<string> {
  const functions = readdirSync(join(ROOT, 'functions'))
    .filter((f) => f.endsWith('.ts'))
    .sort();
  const outfile = join(ROOT, 'dist', 'app', 'main.js');
  await build({
    stdin: {
      contents: functions.map((f) => `require('./functions/${f.replace(/\.ts$/, '')}');`).join('\n'),
      resolveDir: ROOT,
      sourcefile: 'app-entry.js',
      loader: 'js',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    sourcemap: true,
    external: ['@azure/functions-core'],
    logLevel: 'warning',
    legalComments: 'none',
  });
  return outfile;
}

if (require.main === module) {
  bundle().then(
    (out) => console.log(`bundled the app into ${out}`),
    (e: unknown) => {
      console.error(`bundle: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
