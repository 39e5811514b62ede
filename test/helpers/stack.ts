/**
 * The whole local stack for an integration test file: the stack (Azurite, Cosmos
 * server, local Event Grid, Key Vault emulator) runs in one child process and the
 * app in the local functions host in another, exactly as `npm start` runs them, but
 * in memory, on ephemeral ports, with a CA in a temp dir. Each test file gets its own
 * stack because the emulator's clock is global to it.
 */
import { KeyClient } from '@azure/keyvault-keys';
import { SecretClient } from '@azure/keyvault-secrets';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { requestJson } from '../../local/httpJson';
import { freePort, reservePort } from '../../local/ports';
import { emulatorCredential } from '../../shared/adapters/keyVault/clients';
import { type RunningProcess, spawnNode } from './process';
import type { AuthorizationManagementClient } from '@azure/arm-authorization';
import { authorizationClient } from '../../local/arm/client';
import { credentialFor } from '../../local/keyvault/principals';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
const STACK_SCRIPT = join(PROJECT_ROOT, 'dist', 'local', 'stack.js');
const HOST_SCRIPT = join(PROJECT_ROOT, 'dist', 'local', 'host', 'main.js');

export { staticCredential } from './keyvault';

export { freePort };

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: <T = any>() => T;
}

/** A plain HTTP(S) call; https trusts only the given CA. */
export async function call(
  method: string,
  url: string,
  options: { body?: unknown; headers?: Record<string, string>; ca?: string } = {},
): Promise<HttpResult> {
  const res = await requestJson(url, { method, ...options, timeoutMs: 120_000 });
  return { status: res.status, headers: res.headers, text: res.text, json: () => JSON.parse(res.text) };
}

export interface TestHost {
  url: string;
  port: number;
  /** Every line the host printed (function logs included). */
  logs(): string[];
  restart(env?: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
}

export interface TestStack {
  /** The app settings pointing at this stack (what the host runs with). */
  env: Record<string, string>;
  caFile: string;
  ca: string;
  keyVault: {
    url: string;
    vaultName: string;
    topic: string;
    moveClock(seconds: number): Promise<void>;
    now(): Promise<Date>;
    secretClient(): SecretClient;
    keyClient(): KeyClient;
  };
  eventGrid: {
    url: string;
    deliveries(): Promise<any[]>;
    deadLetters(): Promise<any[]>;
  };
  /** Every emulated vault by name (`keyturn-local`, `contoso-byok`), with clients acting as any principal. */
  vaults: Record<string, TestVaultHandle>;
  arm: {
    url: string;
    subscriptionId: string;
    resourceGroup: string;
    /** The real AuthorizationManagementClient, authenticated as `principal` (directory name or object id). */
    client(principal: string): AuthorizationManagementClient;
  };
  host?: TestHost;
  /** Another host process on the same stack (same settings unless overridden). */
  startSecondHost(env?: Record<string, string>): Promise<TestHost>;
  /** Every line printed by the stack and all hosts so far. */
  allLogs(): string[];
  stop(): Promise<void>;
}

export interface TestVaultHandle {
  url: string;
  vaultName: string;
  topic: string;
  /** ARM resource id (scope of role assignments). */
  scope: string;
  keyClient(principal: string): KeyClient;
  secretClient(principal: string): SecretClient;
}

/** The sample settings: what a new user runs with, before the stack's endpoints are applied. */
function sampleSettings(): Record<string, string> {
  const sample = JSON.parse(readFileSync(join(PROJECT_ROOT, 'local.settings.sample.json'), 'utf8')) as {
    Values: Record<string, string>;
  };
  return sample.Values;
}

export async function startStack(
  options: { host?: boolean; env?: Record<string, string>; keyVaultFaults?: number; armPageSize?: number } = {},
): Promise<TestStack> {
  const tlsDir = await mkdtemp(join(tmpdir(), 'keyturn-tls-'));
  // Held until the host binds it: the stack starts first (up to a minute on a loaded machine) and other tests pick ports meanwhile.
  const reservation = await reservePort();
  const hostPort = reservation.port;
  const hostUrl = `http://127.0.0.1:${hostPort}`;
  const stackProcess = spawnNode(
    STACK_SCRIPT,
    ['--memory', '--ephemeral', '--json'],
    {
      ...process.env,
      KEYTURN_TLS_DIR: tlsDir,
      KEYTURN_HOST_URL: hostUrl,
      EVENTGRID_RETRY_DELAYS_MS: '200,500,1000,2000,4000',
      ...(options.keyVaultFaults ? { KEYVAULT_FAULTS: String(options.keyVaultFaults) } : {}),
      ...(options.armPageSize ? { ARM_PAGE_SIZE: String(options.armPageSize) } : {}),
    },
    PROJECT_ROOT,
  );
  const processes: RunningProcess[] = [stackProcess];
  const stopAll = async () => {
    await reservation.release().catch(() => undefined);
    for (const p of [...processes].reverse()) await p.stop();
    await rm(tlsDir, { recursive: true, force: true });
  };
  try {
    return await connect();
  } catch (e) {
    // A stack or host that failed to start must not outlive the test file.
    await stopAll();
    throw e;
  }

  async function connect(): Promise<TestStack> {
    const [, json] = await stackProcess.waitForLine(/^KEYTURN_STACK (.*)$/, 90_000);
    const info = JSON.parse(json!) as {
      settings: Record<string, string>;
      keyVault: { url: string; vaultName: string; topic: string };
      vaults: { url: string; vaultName: string; topic: string; scope: string }[];
      arm: { url: string; subscriptionId: string; resourceGroup: string };
      eventGrid: { url: string };
      caFile: string;
    };
    const ca = readFileSync(info.caFile, 'utf8');
    const env: Record<string, string> = {
      ...sampleSettings(),
      ...info.settings,
      KEYTURN_ISSUER: hostUrl,
      KEYTURN_JWKS_URI: `${hostUrl}/api/.well-known/jwks.json`,
      ...options.env,
    };

    const launchHost = async (port: number, extra: Record<string, string> = {}): Promise<TestHost> => {
      let proc: RunningProcess;
      const start = async (overrides: Record<string, string>) => {
        proc = spawnNode(HOST_SCRIPT, [PROJECT_ROOT], { PATH: process.env.PATH, ...env, ...overrides, PORT: String(port) }, PROJECT_ROOT);
        processes.push(proc);
        await proc.waitForLine(/Host listening on/, 60_000);
      };
      let current = extra;
      await start(current);
      return {
        url: `http://127.0.0.1:${port}`,
        port,
        logs: () => proc.lines(),
        async restart(overrides?: Record<string, string>) {
          await proc.stop();
          if (overrides) current = overrides;
          await start(current);
        },
        stop: () => proc.stop(),
      };
    };

    await reservation.release();
    const host = options.host === false ? undefined : await launchHost(hostPort);
    const credentialOptions = { disableChallengeResourceVerification: true, tlsOptions: { ca } };
    let secretClient: SecretClient | undefined;
    let keyClient: KeyClient | undefined;

    const vaults: Record<string, TestVaultHandle> = {};
    for (const v of info.vaults) {
      const keyClients = new Map<string, KeyClient>();
      const secretClients = new Map<string, SecretClient>();
      vaults[v.vaultName] = {
        ...v,
        keyClient: (p) => keyClients.get(p) ?? keyClients.set(p, new KeyClient(v.url, credentialFor(p), credentialOptions)).get(p)!,
        secretClient: (p) => secretClients.get(p) ?? secretClients.set(p, new SecretClient(v.url, credentialFor(p), credentialOptions)).get(p)!,
      };
    }

    return {
      env,
      caFile: info.caFile,
      vaults,
      arm: { ...info.arm, client: (p) => authorizationClient(info.arm.url, ca, p, info.arm.subscriptionId) },
      ca,
      keyVault: {
        url: info.keyVault.url,
        vaultName: info.keyVault.vaultName,
        topic: info.keyVault.topic,
        async moveClock(seconds) {
          const res = await call('PUT', `${info.keyVault.url}/management/vault/time/all?seconds=${seconds}`, { ca });
          if (res.status !== 200) throw new Error(`moving the clock failed: ${res.status} ${res.text}`);
        },
        async now() {
          const res = await call('GET', `${info.keyVault.url}/management/vault/time`, { ca });
          return new Date(res.json<{ time: string }>().time);
        },
        secretClient: () => (secretClient ??= new SecretClient(info.keyVault.url, emulatorCredential, credentialOptions)),
        keyClient: () => (keyClient ??= new KeyClient(info.keyVault.url, emulatorCredential, credentialOptions)),
      },
      eventGrid: {
        url: info.eventGrid.url,
        deliveries: async () => (await call('GET', `${info.eventGrid.url}/management/deliveries`, { ca })).json(),
        deadLetters: async () => (await call('GET', `${info.eventGrid.url}/management/deadletters`, { ca })).json(),
      },
      host,
      startSecondHost: async (extra) => {
        // freePort's port can be taken by another test before the host binds it: try another one.
        for (let attempt = 1; ; attempt++) {
          try {
            return await launchHost(await freePort(), extra);
          } catch (e) {
            if (attempt >= 3 || !/is unavailable \(already in use/.test(String(e))) throw e;
          }
        }
      },
      allLogs: () => processes.flatMap((p) => p.lines()),
      stop: stopAll,
    };
  }
}
