/** Azurite (Storage) as a child process: in memory for tests, on disk for `npm start`. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { assertPortFree } from './ports';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface RunningAzurite {
  blobPort: number;
  queuePort: number;
  tablePort: number;
  connectionString: string;
  close(): Promise<void>;
}

export async function startAzurite(options: {
  ports: { blob: number; queue: number; table: number };
  dataDir?: string;
  log?: (line: string) => void;
}): Promise<RunningAzurite> {
  await assertPortFree(options.ports.blob, 'AZURITE_BLOB_PORT');
  await assertPortFree(options.ports.queue, 'AZURITE_QUEUE_PORT');
  await assertPortFree(options.ports.table, 'AZURITE_TABLE_PORT');
  const args = [
    require.resolve('azurite/dist/src/azurite.js'),
    '--disableTelemetry',
    '--silent',
    '--skipApiVersionCheck',
    '--blobHost', '127.0.0.1', '--blobPort', String(options.ports.blob),
    '--queueHost', '127.0.0.1', '--queuePort', String(options.ports.queue),
    '--tableHost', '127.0.0.1', '--tablePort', String(options.ports.table),
  ];
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    args.push('--location', options.dataDir);
  } else {
    args.push('--inMemoryPersistence', '--extentMemoryLimit', '256');
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ports = await readPorts(child, options.log);
  const connectionString =
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
    `BlobEndpoint=http://127.0.0.1:${ports.blob}/${AZURITE_ACCOUNT};` +
    `QueueEndpoint=http://127.0.0.1:${ports.queue}/${AZURITE_ACCOUNT};` +
    `TableEndpoint=http://127.0.0.1:${ports.table}/${AZURITE_ACCOUNT};`;
  return {
    blobPort: ports.blob,
    queuePort: ports.queue,
    tablePort: ports.table,
    connectionString,
    close: () => stopChild(child),
  };
}

/** Azurite prints the real ports (needed when 0 asked for any free port). */
function readPorts(child: ChildProcess, log?: (line: string) => void): Promise<{ blob: number; queue: number; table: number }> {
  return new Promise((resolve, reject) => {
    const found: Record<string, number> = {};
    let output = '';
    const timer = setTimeout(() => fail(new Error(`Azurite did not start within 30 s:\n${output}`)), 30_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      child.kill();
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const m of output.matchAll(/Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/[^:]+:(\d+)/g)) {
        found[m[1]!.toLowerCase()] = Number(m[2]);
      }
      if (found.blob && found.queue && found.table) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve({ blob: found.blob, queue: found.queue, table: found.table });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => {
      output += c.toString();
      log?.(`azurite: ${c.toString().trim()}`);
    });
    child.once('exit', (code) => fail(new Error(`Azurite exited (code ${code}):\n${output}`)));
  });
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
