/**
 * The schema Keyturn creates at start-up, against the real local Cosmos DB server and the
 * real @azure/cosmos client: a fresh database gets every container (with its partition key
 * and TTL), and a start against an existing schema costs one listing, not a read per
 * container (the first request of a cold instance waits for it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COSMOS_EMULATOR_KEY, type RunningCosmos, startCosmos } from '../../../local/cosmos';
import { ensureLocalTls } from '../../../local/tls';
import { CONTAINERS, CONTAINER_DEFAULT_TTL, type ContainerName, createCosmos } from '../../../shared/adapters/cosmos';

describe('When Keyturn ensures its Cosmos DB schema', () => {
  let server: RunningCosmos;
  let tlsDir: string;
  let ca: string;
  const handle = () => createCosmos({ endpoint: server.endpoint, key: COSMOS_EMULATOR_KEY, database: 'schema-test', ca });

  beforeAll(async () => {
    tlsDir = await mkdtemp(join(tmpdir(), 'keyturn-schema-'));
    const tls = await ensureLocalTls(tlsDir);
    ca = tls.ca;
    server = await startCosmos({ port: 0, tls });
  });
  afterAll(async () => {
    await server?.close();
    await rm(tlsDir, { recursive: true, force: true });
  });

  test('then a fresh database gets every container with its partition key and default TTL', async () => {
    const cosmos = handle();
    try {
      await cosmos.ensureSchema();
      const { resources } = await cosmos.client.database('schema-test').containers.readAll().fetchAll();
      const byId = new Map(resources.map((c) => [c.id, c]));
      expect([...byId.keys()].sort()).toEqual(Object.keys(CONTAINERS).sort());
      for (const [id, path] of Object.entries(CONTAINERS)) {
        expect(byId.get(id)?.partitionKey?.paths).toEqual([path]);
        const ttl = CONTAINER_DEFAULT_TTL[id as ContainerName];
        if (ttl !== undefined) expect(byId.get(id)?.defaultTtl).toBe(ttl);
      }
    } finally {
      cosmos.client.dispose();
    }
  });

  test('then a later start finds the schema with one request, and a missing container is created again', async () => {
    const requests: string[] = [];
    const stop = server.onRequest((r) => requests.push(`${r.method} ${new URL(r.url, server.endpoint).pathname}`));
    const cosmos = handle();
    try {
      await cosmos.ensureSchema();
      expect(requests.filter((r) => !/^GET \/$/.test(r))).toEqual(['GET /dbs/schema-test/colls']);
      // Someone deleted a container: the next process's start creates it, and only it.
      await cosmos.client.database('schema-test').container('deadLetters').delete();
      requests.length = 0;
      const next = handle();
      try {
        await next.ensureSchema();
        expect(requests.filter((r) => r.startsWith('POST'))).toEqual(['POST /dbs/schema-test/colls']);
        await expect(next.client.database('schema-test').container('deadLetters').read()).resolves.toMatchObject({ statusCode: 200 });
      } finally {
        next.client.dispose();
      }
    } finally {
      stop();
      cosmos.client.dispose();
    }
  });
});
