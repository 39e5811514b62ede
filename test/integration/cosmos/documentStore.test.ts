/**
 * DocumentStore against the real local Cosmos DB server (@vercel/cosmosdb-server over
 * HTTPS, the real @azure/cosmos client): create-only writes for append patterns.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COSMOS_EMULATOR_KEY, type RunningCosmos, startCosmos } from '../../../local/cosmos';
import { ensureLocalTls } from '../../../local/tls';
import { type CosmosHandle, createCosmos, DocumentStore } from '../../../shared/adapters/cosmos';

interface Entry {
  id: string;
  source: string;
  note: string;
}

describe('DocumentStore on the local Cosmos DB server', () => {
  let server: RunningCosmos;
  let cosmos: CosmosHandle;
  let store: DocumentStore<Entry>;
  let tlsDir: string;

  beforeAll(async () => {
    tlsDir = await mkdtemp(join(tmpdir(), 'keyturn-docstore-'));
    const tls = await ensureLocalTls(tlsDir);
    server = await startCosmos({ port: 0, tls });
    cosmos = createCosmos({ endpoint: server.endpoint, key: COSMOS_EMULATOR_KEY, database: 'docstore-test', ca: tls.ca });
    await cosmos.ensureSchema();
    // deadLetters is partitioned by /source: any container with a string key will do.
    store = new DocumentStore<Entry>(cosmos.container('deadLetters'), (d) => d.source);
  });

  afterAll(async () => {
    cosmos?.client.dispose();
    await server?.close();
    await rm(tlsDir, { recursive: true, force: true });
  });

  test('createOnly creates a free id and returns the stored document with its ETag', async () => {
    const out = await store.createOnly({ id: 'a-1', source: 's', note: 'first' });
    expect(out.created).toBe(true);
    if (!out.created) throw new Error('unreachable');
    expect(out.value.doc).toEqual({ id: 'a-1', source: 's', note: 'first' });
    expect(out.value.etag).toEqual(expect.any(String));
    const read = await store.read('a-1', 's');
    expect(read).toEqual(out.value);
  });

  test('createOnly on a taken id reports created: false and leaves the first document as it was', async () => {
    const first = await store.createOnly({ id: 'a-2', source: 's', note: 'first' });
    expect(first.created).toBe(true);
    const second = await store.createOnly({ id: 'a-2', source: 's', note: 'second' });
    expect(second).toEqual({ created: false });
    expect((await store.read('a-2', 's'))?.doc.note).toBe('first');
  });

  test('the same id in another partition is a different document', async () => {
    await store.createOnly({ id: 'a-3', source: 's', note: 'one' });
    const other = await store.createOnly({ id: 'a-3', source: 't', note: 'two' });
    expect(other.created).toBe(true);
  });

  test('two concurrent createOnly of one id: exactly one is created', async () => {
    for (let round = 0; round < 5; round++) {
      const id = `race-${round}`;
      const outcomes = await Promise.all([
        store.createOnly({ id, source: 's', note: 'left' }),
        store.createOnly({ id, source: 's', note: 'right' }),
      ]);
      const winners = outcomes.filter((o) => o.created);
      expect(winners).toHaveLength(1);
      const winner = winners[0]!;
      if (!winner.created) throw new Error('unreachable');
      // The stored document is the winner's, with the ETag it was told.
      expect(await store.read(id, 's')).toEqual(winner.value);
    }
  });

  test('create still throws ConcurrencyConflict on a taken id (unchanged)', async () => {
    await store.createOnly({ id: 'a-4', source: 's', note: 'first' });
    await expect(store.create({ id: 'a-4', source: 's', note: 'again' })).rejects.toMatchObject({ name: 'ConcurrencyConflict' });
  });
});
