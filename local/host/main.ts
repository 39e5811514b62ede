/**
 * CLI: `node dist/local/host/main.js [appDir]` (appDir defaults to the current directory).
 * Exits 1 with a one-line message when the app cannot load or the port is taken.
 */
import { startHost, type RunningHost } from './index';

let host: RunningHost | undefined;
let stopRequested: NodeJS.Signals | undefined;

function stop(signal: NodeJS.Signals): void {
  if (stopRequested) {
    // A second Ctrl+C means "now".
    process.exit(130);
  }
  stopRequested = signal;
  // Before start-up finished, main() stops the host as soon as it exists.
  if (host) void shutdown(host, signal);
}

async function shutdown(running: RunningHost, signal: NodeJS.Signals): Promise<void> {
  console.log(`Received ${signal}, stopping the host...`);
  try {
    await running.close();
    process.exit(0);
  } catch (err) {
    console.error(`Error while stopping: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}

// Installed first so a signal that arrives during start-up still runs appTerminate.
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

async function main(): Promise<void> {
  const appDir = process.argv[2] ?? process.cwd();
  try {
    host = await startHost({ appDir });
  } catch (err) {
    console.error(`Error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  if (stopRequested) await shutdown(host, stopRequested);
}

void main();
