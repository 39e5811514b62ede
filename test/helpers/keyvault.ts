/**
 * Test helpers for the Key Vault emulator: start one in-process (ephemeral port,
 * temp TLS dir, in-memory state) and make the real SDK clients for it.
 */
import type { TokenCredential } from '@azure/identity';
import { CryptographyClient, KeyClient, type JsonWebKey } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { requestJson } from '../../local/httpJson';
import { emulatorCredential, firstRequestGate } from '../../shared/adapters/keyVault/clients';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createEventRecorder,
  startKeyVaultEmulator,
  type KeyVaultEmulator,
  type KeyVaultEmulatorOptions,
} from '../../local/keyvault';

/** Any token works against the emulator. */
/** Any token: the emulator accepts every bearer token (the app's own local credential). */
export const staticCredential: TokenCredential = emulatorCredential;

export interface KeyVaultClients {
  keys: KeyClient;
  secrets: SecretClient;
  /** A standalone CryptographyClient for a key id (pays its own challenge). */
  crypto(kid: string): CryptographyClient;
}

/**
 * Clients trusting the emulator's CA; the resource check cannot pass for 127.0.0.1. Each
 * client holds its requests behind its first one, as the app's do (concurrent seeding
 * would otherwise hit the SDK's challenge race: see `firstRequestGate`).
 */
export function keyVaultClients(emulator: { url: string; ca: string }, url = emulator.url): KeyVaultClients {
  // One tlsOptions object per emulator so clients share pooled connections.
  const tlsOptions = { ca: emulator.ca };
  const common = () => ({
    disableChallengeResourceVerification: true,
    tlsOptions,
    additionalPolicies: [{ policy: firstRequestGate() as never, position: 'perCall' as const }],
  });
  return {
    keys: new KeyClient(url, staticCredential, common()),
    secrets: new SecretClient(url, staticCredential, common()),
    crypto: (kid) => new CryptographyClient(kid, staticCredential, common()),
  };
}

export interface TestVault extends KeyVaultClients {
  emulator: KeyVaultEmulator;
  recorder: ReturnType<typeof createEventRecorder>;
  tlsDir: string;
  close(): Promise<void>;
}

/** One CA for all emulators of a test run: generating it is the slow part. */
let sharedTlsDir: string | undefined;
function tlsDir(): string {
  sharedTlsDir ??= mkdtempSync(join(tmpdir(), 'kv-tls-'));
  return sharedTlsDir;
}

export async function startTestVault(options: KeyVaultEmulatorOptions = {}): Promise<TestVault> {
  const recorder = createEventRecorder();
  const dir = options.tlsDir ?? tlsDir();
  const emulator = await startKeyVaultEmulator({ port: 0, tlsDir: dir, events: recorder, faults: { rate: 0 }, ...options });
  return {
    ...keyVaultClients(emulator),
    emulator,
    recorder,
    tlsDir: dir,
    close: () => emulator.close(),
  };
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A plain HTTPS call (no SDK), trusting the emulator's CA. */
export function rawRequest(
  emulator: { url: string; ca: string },
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers = { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers };
  return requestJson(`${emulator.url}${path}`, { method, body: opts.body, headers, ca: emulator.ca });
}

/** Moves the emulator's clock through its management API, like a test or demo would. */
export async function advanceClock(emulator: { url: string; ca: string }, seconds: number): Promise<{ time: string; offsetSeconds: number }> {
  const res = await rawRequest(emulator, 'PUT', `/management/vault/time/all?seconds=${seconds}`);
  if (res.status !== 200) throw new Error(`clock move failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export const DAY = 86400;

/** Unix seconds of the emulator's clock. */
export function emulatorSeconds(emulator: KeyVaultEmulator): number {
  return Math.floor(emulator.clock.now().getTime() / 1000);
}

/** A Node public KeyObject from the SDK's JsonWebKey (Uint8Array fields). */
export function nodePublicKey(jwk: JsonWebKey): KeyObject {
  const b = (u: Uint8Array | undefined): string => Buffer.from(u ?? new Uint8Array()).toString('base64url');
  if (jwk.kty === 'EC' || jwk.kty === 'EC-HSM') {
    const crv = jwk.crv === 'P-256K' ? 'secp256k1' : (jwk.crv as string);
    return createPublicKey({ key: { kty: 'EC', crv, x: b(jwk.x), y: b(jwk.y) }, format: 'jwk' });
  }
  return createPublicKey({ key: { kty: 'RSA', n: b(jwk.n), e: b(jwk.e) }, format: 'jwk' });
}
