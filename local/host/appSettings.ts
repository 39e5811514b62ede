/**
 * The app's local configuration files, read the way Core Tools reads them:
 * `local.settings.json` Values go into the environment without overriding it,
 * `host.json` gives the HTTP route prefix, `package.json` `main` names the entry points.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalSettings {
  values: Record<string, string>;
  localHttpPort?: number;
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`Cannot read ${what} at ${path}: ${(err as Error).message}`);
  }
  try {
    // Core Tools tolerates a UTF-8 BOM in these files.
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new Error(`${what} at ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readLocalSettings(appDir: string): LocalSettings {
  const path = join(appDir, 'local.settings.json');
  if (!existsSync(path)) return { values: {} };
  const json = readJson(path, 'local.settings.json');
  if (!isRecord(json)) throw new Error(`local.settings.json at ${path} must contain a JSON object.`);
  if (json.IsEncrypted === true) {
    throw new Error('local.settings.json is encrypted (IsEncrypted: true); the local host cannot decrypt it. Run `func settings decrypt` or store plain values.');
  }
  // Setting names are data: no prototype, so `constructor` or `__proto__` are kept as names.
  const values: Record<string, string> = Object.create(null);
  if (isRecord(json.Values)) {
    for (const [key, value] of Object.entries(json.Values)) {
      if (value !== null && value !== undefined) values[key] = typeof value === 'string' ? value : String(value);
    }
  }
  const host = isRecord(json.Host) ? json.Host : {};
  const port = Number(host.LocalHttpPort);
  return Number.isInteger(port) && port >= 0 ? { values, localHttpPort: port } : { values };
}

/** Copies settings into `env` unless already set there (the environment wins, as with func). */
export function applySettings(values: Record<string, string>, env: NodeJS.ProcessEnv): void {
  for (const [key, value] of Object.entries(values)) {
    if (!Object.hasOwn(env, key) || env[key] === undefined) env[key] = value;
  }
}

export interface HostJson {
  routePrefix: string;
  minLogLevel: string;
}

export function readHostJson(appDir: string, env: NodeJS.ProcessEnv): HostJson {
  const path = join(appDir, 'host.json');
  const json = existsSync(path) ? readJson(path, 'host.json') : {};
  const root = isRecord(json) ? json : {};
  const extensions = isRecord(root.extensions) ? root.extensions : {};
  const http = isRecord(extensions.http) ? extensions.http : {};
  // host.json values can be overridden by app settings, as func does.
  const override = env.AzureFunctionsJobHost__extensions__http__routePrefix;
  const raw = override !== undefined ? override : typeof http.routePrefix === 'string' ? http.routePrefix : 'api';
  const logging = isRecord(root.logging) ? root.logging : {};
  const logLevel = isRecord(logging.logLevel) ? logging.logLevel : {};
  const level = logLevel.Function ?? logLevel.default;
  return {
    routePrefix: raw.trim().replace(/^\/+|\/+$/g, ''),
    minLogLevel: typeof level === 'string' ? level : 'Information',
  };
}

export function readMainGlob(appDir: string): string {
  const path = join(appDir, 'package.json');
  if (!existsSync(path)) throw new Error(`No package.json in ${appDir}; the local host needs its "main" field to find the functions.`);
  const json = readJson(path, 'package.json');
  const main = isRecord(json) ? json.main : undefined;
  return typeof main === 'string' && main.trim() !== '' ? main.trim() : 'index.js';
}

export function isTruthySetting(value: string | undefined): boolean {
  return value !== undefined && /^(true|1)$/i.test(value.trim());
}

/** `AzureWebJobs.<name>.Disabled` (or the `__` form usable in shells). */
export function isFunctionDisabled(name: string, env: NodeJS.ProcessEnv): boolean {
  const wanted = [`azurewebjobs.${name}.disabled`, `azurewebjobs__${name}__disabled`].map((k) => k.toLowerCase());
  for (const [key, value] of Object.entries(env)) {
    if (wanted.includes(key.toLowerCase()) && isTruthySetting(value)) return true;
  }
  return false;
}
