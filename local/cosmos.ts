/**
 * Cosmos DB for the local stack: @vercel/cosmosdb-server over HTTPS with the
 * emulator's well-known key, so the same settings work against the real emulator.
 * The server keeps data in memory; with a data dir, the stack snapshots every
 * database through the real client after writes and loads it again at start.
 */
import { CosmosClient } from '@azure/cosmos';
import { createHttpsServer } from '@vercel/cosmosdb-server';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { LocalTls } from './tls';
import { assertPortFree } from './ports';

export const COSMOS_EMULATOR_KEY =
  'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

export interface RunningCosmos {
  endpoint: string;
  port: number;
  key: string;
  /** Calls `listener` for every request the server receives (benchmarks count them); returns its removal. */
  onRequest(listener: (request: CosmosRequest) => void): () => void;
  close(): Promise<void>;
}

/** One request to the local Cosmos DB server, as a request hook sees it. */
export interface CosmosRequest {
  method: string;
  url: string;
  /** True for a query (a POST with `x-ms-documentdb-isquery`). */
  query: boolean;
}

interface Snapshot {
  databases: { id: string; containers: { id: string; partitionKey: string[]; items: Record<string, unknown>[] }[] }[];
}

export async function startCosmos(options: {
  port: number;
  tls: LocalTls;
  dataDir?: string;
  log?: (line: string) => void;
}): Promise<RunningCosmos> {
  await assertPortFree(options.port, 'COSMOS_PORT');
  const server = createHttpsServer({ cert: options.tls.cert, key: options.tls.key });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `https://127.0.0.1:${port}`;
  const client = new CosmosClient({
    endpoint,
    key: COSMOS_EMULATOR_KEY,
    agent: new Agent({ ca: options.tls.ca }),
    connectionPolicy: { enableEndpointDiscovery: false },
  });

  let persist: (() => Promise<void>) | undefined;
  if (options.dataDir) {
    const file = join(options.dataDir, 'snapshot.json');
    await mkdir(options.dataDir, { recursive: true });
    await restore(client, file, options.log);
    let timer: NodeJS.Timeout | undefined;
    let writing = Promise.resolve();
    persist = () => (writing = writing.then(() => snapshot(client, file)).catch((e) => options.log?.(`cosmos: snapshot failed: ${(e as Error).message}`)));
    // Any write request marks the data dirty; a snapshot follows shortly after.
    server.on('request', (req) => {
      if (req.method === 'GET' || req.method === 'HEAD') return;
      if (req.headers['x-ms-documentdb-isquery'] === 'true') return; // queries are POSTs too
      clearTimeout(timer);
      timer = setTimeout(() => void persist?.(), 500);
      timer.unref(); // close() writes the last snapshot itself
    });
    const stopTimer = () => clearTimeout(timer);
    server.once('close', stopTimer);
  }

  return {
    endpoint,
    port,
    key: COSMOS_EMULATOR_KEY,
    onRequest(listener) {
      const hook = (req: IncomingMessage) => listener({ method: req.method ?? '', url: req.url ?? '', query: req.headers['x-ms-documentdb-isquery'] === 'true' });
      server.on('request', hook);
      return () => void server.off('request', hook);
    },
    async close() {
      await persist?.();
      client.dispose();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function snapshot(client: CosmosClient, file: string): Promise<void> {
  const data: Snapshot = { databases: [] };
  const { resources: dbs } = await client.databases.readAll().fetchAll();
  for (const db of dbs) {
    const database = client.database(db.id);
    const { resources: containers } = await database.containers.readAll().fetchAll();
    const entry: Snapshot['databases'][number] = { id: db.id, containers: [] };
    for (const c of containers) {
      const { resources: items } = await database.container(c.id).items.readAll().fetchAll();
      entry.containers.push({
        id: c.id,
        partitionKey: c.partitionKey?.paths ?? ['/id'],
        items: items.map(({ _rid, _self, _etag, _attachments, _ts, ...rest }) => rest),
      });
    }
    data.databases.push(entry);
  }
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(data));
  await rename(tmp, file);
}

async function restore(client: CosmosClient, file: string, log?: (line: string) => void): Promise<void> {
  let data: Snapshot;
  try {
    data = JSON.parse(await readFile(file, 'utf8')) as Snapshot;
  } catch {
    return; // first start, or nothing saved yet
  }
  let count = 0;
  for (const db of data.databases) {
    const { database } = await client.databases.createIfNotExists({ id: db.id });
    for (const c of db.containers) {
      const { container } = await database.containers.createIfNotExists({ id: c.id, partitionKey: { paths: c.partitionKey } });
      for (const item of c.items) {
        await container.items.upsert(item);
        count++;
      }
    }
  }
  log?.(`cosmos: restored ${count} documents from ${file}`);
}
