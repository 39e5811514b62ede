/**
 * `npm start`: the whole app on the local stack. Starts Azurite, the Cosmos server,
 * the local Event Grid and the Key Vault emulator, then the functions host (a child
 * process running the app's real registrations), and prints every URL.
 * Ctrl-C stops everything cleanly.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stopChild } from './azurite';
import { assertPortFree, portSetting } from './ports';
import { describeStack, portsFromEnv, startStack } from './stack';

const projectRoot = resolve(__dirname, '..', '..');

/** Without a local.settings.json, the sample's values are the defaults (they fit this stack). */
function defaultSettings(): Record<string, string> {
  if (existsSync(join(projectRoot, 'local.settings.json'))) return {};
  const sample = JSON.parse(readFileSync(join(projectRoot, 'local.settings.sample.json'), 'utf8')) as {
    Values: Record<string, string>;
  };
  return sample.Values;
}

async function main(): Promise<void> {
  const hostPort = portSetting(process.env, 'PORT', 7071);
  // The issuer, the JWKS URL and the vault's event subscription name this port up front.
  if (hostPort === 0) throw new Error('npm start needs a fixed PORT (the default is 7071); PORT=0 works with the host alone.');
  await assertPortFree(hostPort, 'PORT');
  const hostUrl = `http://127.0.0.1:${hostPort}`;
  const dataDir = join(projectRoot, '.keyturn');
  console.log('Starting the Keyturn local stack…');
  const stack = await startStack({
    ports: portsFromEnv(process.env),
    dataDir,
    tlsDir: join(dataDir, 'keyvault'),
    hostUrl,
    log: (line) => console.error(line),
  });

  // Settings precedence: the shell's environment, then local.settings.json (loaded by
  // the host), then the sample; the stack's endpoints always match what is running.
  const env: NodeJS.ProcessEnv = { ...defaultSettings(), ...process.env, ...stack.settings, PORT: String(hostPort) };
  const host = spawn(process.execPath, [join(projectRoot, 'dist', 'local', 'host', 'main.js'), projectRoot], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    // Its own process group: Ctrl-C reaches only this process, which stops the host once, gracefully.
    detached: true,
  });
  let ready = false;
  host.stdout.setEncoding('utf8');
  host.stdout.on('data', (chunk: string) => {
    process.stdout.write(chunk);
    if (!ready && chunk.includes('Host listening on')) {
      ready = true;
      console.log('\nKeyturn is running on the local stack:');
      console.log(`  Functions host        ${hostUrl}  (health: ${hostUrl}/api/health, functions: ${hostUrl}/admin/functions)`);
      for (const line of describeStack(stack)) console.log(`  ${line}`);
      console.log('Press Ctrl-C to stop.\n');
    }
  });

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping Keyturn…');
    try {
      await stopChild(host);
      await stack.close();
    } catch (e) {
      console.error(`Stopping failed: ${(e as Error).message}`);
    } finally {
      process.exit(code);
    }
  };
  host.once('exit', (code) => {
    if (!stopping) {
      console.error(`The functions host exited (code ${code ?? 'signal'}).`);
      void stop(code || 1);
    }
  });
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  // Last resort (e.g. an uncaught error): never leave the host running on its own.
  process.on('exit', () => {
    if (host.exitCode === null) host.kill('SIGKILL');
  });
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
