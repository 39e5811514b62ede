/**
 * The paged due query against the real Cosmos DB client and the local Cosmos DB server:
 * Cosmos DB orders (`ORDER BY c.dueAt`) and pages (continuation tokens) the due
 * rotations; nothing is sorted in memory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningCosmos, startCosmos } from '../../../local/cosmos';
import { ensureLocalTls } from '../../../local/tls';
import { createCosmos } from '../../../shared/adapters/cosmos';
import { cosmosRotationStore } from '../../../shared/adapters/renewal/cosmosRenewalStores';
import { type Rotation, claimStep, failStep, recordCleanup, startRotation } from '../../../shared/domain/rotation';

const NOW = new Date('2030-06-01T12:00:00Z');
const minutes = (m: number) => new Date(NOW.getTime() + m * 60_000);

let cosmos: RunningCosmos;
let dir: string;
let store: ReturnType<typeof cosmosRotationStore>;
let dispose: () => void;

const rotation = (vault: string, name: string, createdAt: Date): Rotation =>
  startRotation({ vault, name, fromVersion: 'abc123', provider: 'symmetric', validityDays: 30, graceDays: 7, trigger: 'sweep' }, createdAt);

/** Due at `at` (a backoff after one failed try), computed by the domain like every stored rotation. */
function backingOff(r: Rotation, failedAt: Date, jitter: number): Rotation {
  const claimed = claimStep(r, { owner: 'w', token: `t-${r.id}`, leaseMs: 60_000 }, failedAt);
  return failStep(claimed, `t-${r.id}`, { name: 'Error' }, failedAt, { maxAttempts: 5, jitter });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyturn-due-'));
  const tls = await ensureLocalTls(dir);
  cosmos = await startCosmos({ port: 0, tls });
  const handle = createCosmos({ endpoint: cosmos.endpoint, key: cosmos.key, database: 'due', ca: tls.ca });
  dispose = () => handle.client.dispose();
  store = cosmosRotationStore(handle.container('rotations'), () => handle.ensureSchema());

  // Due ones in several partitions, created out of due order, two with the same dueAt.
  const docs: Rotation[] = [];
  for (const [i, m] of [-5, -50, -1, -30, -30, -200, -7, -90, -2, -13, -60].entries()) docs.push(rotation('v', `s${i}`, minutes(m)));
  docs.push(rotation('v', 'future', minutes(30))); // not yet due
  docs.push(backingOff(rotation('w', 'retry', minutes(-3)), minutes(-3), 0)); // due 15 s after -3 min
  docs.push(backingOff(rotation('w', 'later', minutes(-0.1)), minutes(-0.1), 0.99)); // backoff ends after NOW
  const failed = { ...backingOff(rotation('w', 'gone', minutes(-400)), minutes(-400), 0), status: 'failed' as const };
  docs.push(recordCleanup(failed, true, minutes(-400), 0)); // ended and cleaned up: never due
  for (const d of docs) await store.create(d);
});

afterAll(async () => {
  dispose?.();
  await cosmos?.close();
  await rm(dir, { recursive: true, force: true });
});

// With pages of 5 the two rotations due at the same time fall on either side of a page boundary.
test.each([2, 3, 5])('due rotations come back in due order across several pages of %i', async (size) => {
  const pages: Rotation[][] = [];
  let continuation: string | undefined;
  do {
    const page = await store.duePage(NOW, { maxItems: size, ...(continuation ? { continuation } : {}) });
    pages.push(page.items);
    continuation = page.continuation;
  } while (continuation);
  expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(12 / size));
  for (const p of pages) expect(p.length).toBeLessThanOrEqual(size);
  const all = pages.flat();
  const dues = all.map((r) => r.dueAt!);
  expect(dues).toEqual([...dues].sort());
  expect(new Set(all.map((r) => r.id)).size).toBe(all.length); // no document twice across pages
  expect(all.map((r) => r.name).sort()).toEqual(['retry', 's0', 's1', 's10', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9'].sort());
  expect(all.map((r) => r.name).slice(0, 3)).toEqual(['s5', 's7', 's10']);
  for (const r of all) expect(r.dueAt! <= NOW.toISOString()).toBe(true);
});

test('due(now, limit) stops at the limit with the longest-waiting first', async () => {
  const first = await store.due(NOW, 5);
  expect(first.map((r) => r.name)).toEqual(['s5', 's7', 's10', 's1', expect.stringMatching(/^s[34]$/)]); // s3 and s4 tie
  expect((await store.due(NOW, 100)).length).toBe(12);
  expect(await store.due(minutes(-1000), 10)).toEqual([]);
});
