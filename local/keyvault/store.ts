/**
 * Vault state and its persistence. In memory by default; with a data dir the whole
 * state is one JSON file written atomically (tmp file + rename) after each change,
 * so a crash leaves either the old or the new file, never a torn one.
 * Key material and secret values are in that file (dev tool) but are never logged.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StoredJwk } from './jwk';

/** Times are Unix seconds, as on the wire. */
export interface Attributes {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

export interface KeyVersion {
  version: string;
  /** kty as requested (RSA, RSA-HSM, EC, …); the JWK holds the base type. */
  kty: string;
  jwk: StoredJwk;
  keyOps: string[];
  attributes: Attributes;
  tags?: Record<string, string>;
}

export interface LifetimeAction {
  trigger: { timeAfterCreate?: string; timeBeforeExpiry?: string };
  action: { type: 'Rotate' | 'Notify' };
}

export interface RotationPolicy {
  lifetimeActions: LifetimeAction[];
  expiryTime?: string;
  created: number;
  updated: number;
}

export interface Deletion {
  deletedDate: number;
  scheduledPurgeDate: number;
}

export interface KeyEntry {
  /** Name with the casing it was created with (names are case-insensitive). */
  name: string;
  /** Oldest first; the last one is the current version. */
  versions: KeyVersion[];
  policy?: RotationPolicy;
  deleted?: Deletion;
}

export interface SecretVersion {
  version: string;
  value: string;
  contentType?: string;
  attributes: Attributes;
  tags?: Record<string, string>;
}

export interface SecretEntry {
  name: string;
  versions: SecretVersion[];
  deleted?: Deletion;
}

export interface VaultState {
  /** Keyed by lower-cased name. */
  keys: Record<string, KeyEntry>;
  secrets: Record<string, SecretEntry>;
  /** How far the emulator's clock is ahead of real time. */
  clockOffsetMs: number;
  /** Once-per-version bookkeeping: "Key|name|version|Type" → emulator time it fired (ms). */
  fired: Record<string, number>;
}

/** Keyed by request data (object names): no prototype, so `constructor` or `toString` is just a miss. */
function dict<T>(from?: Record<string, T>): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, from ?? {});
}

export function emptyState(): VaultState {
  return { keys: dict(), secrets: dict(), clockOffsetMs: 0, fired: dict() };
}

export class Store {
  state: VaultState;
  private readonly file?: string;

  constructor(dataDir?: string) {
    this.state = emptyState();
    if (dataDir) {
      mkdirSync(dataDir, { recursive: true });
      this.file = join(dataDir, 'vault.json');
      this.state = load(this.file);
    }
  }

  get persistent(): boolean {
    return this.file !== undefined;
  }

  /** Synchronous so a write can never interleave with the next change. */
  save(): void {
    if (!this.file) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

function load(file: string): VaultState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw e;
  }
  const parsed = JSON.parse(text) as Partial<VaultState>;
  return {
    keys: dict(parsed.keys),
    secrets: dict(parsed.secrets),
    clockOffsetMs: parsed.clockOffsetMs ?? 0,
    fired: dict(parsed.fired),
  };
}
