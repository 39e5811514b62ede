/**
 * The anchored allow-list for Key Vault URLs that arrive from outside (a request, a
 * registered customer vault, a key id in a stored document). Only a vault in public
 * Azure (`https://{name}.vault.azure.net`) or, in local mode only, the local emulator
 * (`https://127.0.0.1:{port}` / `https://localhost:{port}`) passes, optionally followed by
 * one object (`/keys|secrets/{name}[/{version}]`). Anything else (another host, a port on
 * Azure, user info, `http:`, a deeper path, a query or fragment) is refused, so a
 * request can never make Keyturn send its managed-identity token elsewhere.
 */
import { ValidationError } from '../errors';

export interface VaultObject {
  collection: 'keys' | 'secrets';
  name: string;
  version?: string;
}

export interface CheckedVaultUrl {
  /** The vault's origin in canonical form (lower case, no trailing slash): the cache key of its clients. */
  vaultUrl: string;
  object?: VaultObject;
}

/** Key Vault names: 3–24 characters, letters, digits and hyphens, starting with a letter, not ending with or doubling a hyphen. */
const VAULT_NAME = /^[a-z](?!.*--)[a-z0-9-]{1,22}[a-z0-9]$/;
/** Object names (1–127 letters, digits, hyphens) and versions (Key Vault's are 32 hex digits; the emulator's alike). */
const OBJECT_PATH = '(?:/(keys|secrets)/([0-9A-Za-z-]{1,127})(?:/([0-9A-Za-z]{1,64}))?)?/?';
const AZURE = new RegExp(`^https://([0-9A-Za-z-]{3,24})\\.vault\\.azure\\.net${OBJECT_PATH}$`, 'i');
const LOCAL = new RegExp(`^https://(127\\.0\\.0\\.1|localhost):([1-9][0-9]{0,4})${OBJECT_PATH}$`, 'i');

/** Why a URL was refused, or what it names. Pure: no I/O, no URL fetching. */
export function checkVaultUrl(raw: string, options: { local: boolean }): CheckedVaultUrl | { refused: string } {
  if (typeof raw !== 'string' || raw.length > 400) return { refused: 'not a Key Vault URL' };
  const azure = AZURE.exec(raw);
  if (azure) {
    const name = azure[1]!.toLowerCase();
    if (!VAULT_NAME.test(name)) return { refused: `'${name}' is not a valid Key Vault name` };
    return withObject(`https://${name}.vault.azure.net`, azure.slice(2));
  }
  const local = LOCAL.exec(raw);
  if (local) {
    if (!options.local) return { refused: 'the local Key Vault emulator is accepted only in local mode' };
    const port = Number(local[2]);
    if (port > 65535) return { refused: 'not a valid port' };
    return withObject(`https://${local[1]!.toLowerCase()}:${port}`, local.slice(3));
  }
  return { refused: 'only https://{vault}.vault.azure.net (no port, user info, query or path beyond one object) is accepted' };
}

function withObject(vaultUrl: string, [collection, name, version]: (string | undefined)[]): CheckedVaultUrl {
  if (!collection || !name) return { vaultUrl };
  return { vaultUrl, object: { collection: collection.toLowerCase() as VaultObject['collection'], name, ...(version ? { version } : {}) } };
}

/** The vault URL of `raw` or a 400 naming `field`. */
export function allowedVaultUrl(raw: string, options: { local: boolean; field?: string }): CheckedVaultUrl {
  const checked = checkVaultUrl(raw, options);
  const field = options.field ?? 'vaultUrl';
  if ('refused' in checked) throw new ValidationError(field, `${field}: ${checked.refused}`);
  return checked;
}
