/**
 * `dist/app/main.js` (package.json `main`): loads the bundle, `app.js` beside it, with the
 * V8 code cache `npm run build` made for it (`app.js.cache`). Compiling the 0.4 MB bundle
 * and the functions that run at load is about half of module load's CPU time; with the
 * cache V8 deserialises that code instead (Node 20 has no `module.enableCompileCache`).
 *
 * The bundle runs as a CommonJS module of its own: `__filename`/`__dirname` are app.js's,
 * its `require` resolves from dist/app (the SDK files in `sdk/`) through
 * `Module.prototype.require` (where the worker provides `@azure/functions-core`), and it
 * sits in `require.cache` under app.js. It falls back to a plain `require` of app.js when
 * there is no cache or it is not for this exact app.js (the build stamps app.js's last line
 * with a SHA-1 of its content, and the same id heads the cache: comparing the two costs
 * nothing, where hashing the 0.4 MB source at each start cost ≈ 2 ms), and when source maps are on (`--enable-source-maps` maps only what Node's own
 * loader compiled). When V8 rejects the cache (another Node version or V8 flags) it compiles
 * the source as usual: slower, same behaviour.
 */
import Module = require('node:module');
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** The build id's line, the last of a stamped file: the marker, 40 hex digits, a newline. */
export const BUILD_ID_MARKER = '//# keyturn-build=';
const ID_LENGTH = 40;
/** The cache file: the build id (ASCII), then V8's cached data. */
const HEADER = ID_LENGTH;

interface ModuleInternals {
  _cache: Record<string, NodeJS.Module>;
  _nodeModulePaths(dir: string): string[];
  wrap(source: string): string;
}
const internals = Module as unknown as ModuleInternals & (new (id: string, parent?: NodeJS.Module) => NodeJS.Module);

/** The id the build stamped on `source` (its last line), or undefined when it carries none. */
function buildIdOf(source: string): string | undefined {
  const line = source.slice(-(BUILD_ID_MARKER.length + ID_LENGTH + 1));
  return line.startsWith(BUILD_ID_MARKER) && line.endsWith('\n') ? line.slice(BUILD_ID_MARKER.length, -1) : undefined;
}

function cachedDataFor(cacheFile: string, source: string): Buffer | undefined {
  const id = buildIdOf(source);
  if (!id) return undefined;
  let raw: Buffer;
  try {
    raw = readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  return raw.length > HEADER && raw.toString('latin1', 0, HEADER) === id ? raw.subarray(HEADER) : undefined;
}

/** Runs `file` as a CommonJS module, compiled from `cachedData` when V8 accepts it (else compiled as usual). */
function runScript(file: string, source: string, cachedData: Buffer | undefined, parent: NodeJS.Module): { exports: unknown; script: Script } {
  const script = new Script(internals.wrap(source), { filename: file, ...(cachedData ? { cachedData } : {}) });
  const mod = new internals(file, parent);
  mod.filename = file;
  mod.paths = internals._nodeModulePaths(dirname(file));
  internals._cache[file] = mod;
  try {
    const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: NodeJS.Module, filename: string, dir: string) => void;
    wrapper.call(mod.exports, mod.exports, Module.createRequire(file), mod, file, dirname(file));
  } catch (e) {
    delete internals._cache[file];
    throw e;
  }
  mod.loaded = true;
  return { exports: mod.exports, script };
}

/**
 * Loads the bundle `file` (dist/app/app.js; zod-classic.js) for `parent` (its loader's
 * module: main.js, zod.js) and returns its exports.
 */
export function loadApp(file: string, parent: NodeJS.Module): unknown {
  // Build time only (local/build/bundle.ts): run the file once and keep what V8 compiled for it.
  if (process.env.KEYTURN_WRITE_CODE_CACHE === '1') {
    const source = readFileSync(file, 'utf8');
    const id = buildIdOf(source);
    if (!id) throw new Error(`${file} carries no build id (local/build/bundle.ts stamps it)`);
    const loaded = runScript(file, source, undefined, parent);
    writeFileSync(`${file}.cache`, Buffer.concat([Buffer.from(id, 'latin1'), loaded.script.createCachedData()]));
    return loaded.exports;
  }
  if (!process.sourceMapsEnabled) {
    const source = readFileSync(file, 'utf8');
    const cachedData = cachedDataFor(`${file}.cache`, source);
    if (cachedData) return runScript(file, source, cachedData, parent).exports;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time
  return require(file);
}
