/** Dead letters summarised per burst: one document per source and burst, every caller waits for its write. */
import { summarisingDeadLetters } from '../../../shared/services/events/deadLetterBatch';
import type { DeadLetterRecord, RefusedEvent } from '../../../shared/services/events/ports';
import { FakeClock } from '../renewal/fakes';

const letter = (i: number, source = 'topic-a', reason: RefusedEvent['reason'] = i % 2 ? 'malformed' : 'unsupported'): RefusedEvent => ({
  id: `${reason}:e-${i}`,
  source,
  reason,
  detail: `event ${i}`,
  bytes: 10,
  sha256: 'a'.repeat(64),
  event: { id: `e-${i}`, dataKeys: [], dataKeyCount: null },
});

function store(options: { failFirst?: boolean; writeMs?: number } = {}) {
  const written: DeadLetterRecord[] = [];
  let fail = options.failFirst ?? false;
  const clock = new FakeClock();
  let clockReads = 0;
  const counted = { now: async () => (clockReads++, clock.now()) };
  const dead = summarisingDeadLetters(async (record) => {
    await new Promise((r) => setTimeout(r, options.writeMs ?? 1));
    if (fail) {
      fail = false;
      throw new Error('Cosmos DB is down');
    }
    written.push(JSON.parse(JSON.stringify(record)));
  }, counted);
  return { dead, written, clockReads: () => clockReads };
}

test('5,000 letters at once are a handful of records counting all of them, each caller resolved after its write', async () => {
  const s = store();
  let resolvedBeforeWrite = 0;
  await Promise.all(
    Array.from({ length: 5000 }, (_, i) =>
      s.dead.record(letter(i)).then(() => {
        // Batches are cut in arrival order: letter i is stored once i + 1 letters are.
        if (s.written.reduce((n, r) => n + r.count, 0) < i + 1) resolvedBeforeWrite++;
      }),
    ),
  );
  expect(resolvedBeforeWrite).toBe(0);
  expect(s.written.length).toBeLessThanOrEqual(5);
  expect(s.written.reduce((n, r) => n + r.count, 0)).toBe(5000);
  expect(s.written.reduce((n, r) => n + (r.reasons.malformed ?? 0), 0)).toBe(2500);
  expect(s.clockReads()).toBe(s.written.length);
  const [first] = s.written;
  expect(first).toMatchObject({ source: 'topic-a', reason: 'unsupported', detail: 'event 0', event: { id: 'e-0' }, receivedAt: '2030-01-01T00:00:00.000Z' });
  expect(first!.id).toMatch(/^batch:[0-9a-f]{40}$/);
  expect(first!.more).toHaveLength(19);
  expect(first!.more[0]).toEqual({ id: 'malformed:e-1', reason: 'malformed', detail: 'event 1', bytes: 10, sha256: 'a'.repeat(64), event: { id: 'e-1', dataKeys: [], dataKeyCount: null } });
});

test('a lone letter keeps its own id and fields; sources are recorded apart', async () => {
  const s = store();
  await Promise.all([s.dead.record(letter(1, 'topic-a')), s.dead.record(letter(2, 'topic-b')), s.dead.record(letter(3, 'topic-b'))]);
  const a = s.written.find((r) => r.source === 'topic-a')!;
  expect(a).toMatchObject({ id: 'malformed:e-1', count: 1, reasons: { malformed: 1 }, more: [] });
  expect(s.written.find((r) => r.source === 'topic-b')).toMatchObject({ count: 2, reasons: { malformed: 1, unsupported: 1 } });
});

test('the same burst again gets the same id (a redelivery is recognised), in any order', async () => {
  const ids: string[] = [];
  for (const order of [[1, 2, 3], [3, 1, 2]]) {
    const s = store();
    await Promise.all(order.map((i) => s.dead.record(letter(i))));
    ids.push(s.written[0]!.id);
  }
  expect(ids[0]).toBe(ids[1]);
});

test('a failed write fails every caller of the batch (so Event Grid retries); the next batch is written', async () => {
  const s = store({ failFirst: true });
  const results = await Promise.allSettled([1, 2, 3].map((i) => s.dead.record(letter(i))));
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
  await s.dead.record(letter(4));
  expect(s.written).toMatchObject([{ id: 'unsupported:e-4', count: 1 }]);
});

test('a steady trickle still ends a batch after its maximum age', async () => {
  const s = store();
  const pending: Promise<void>[] = [];
  const started = Date.now();
  // At least a few letters even when a loaded machine stalls the loop past the 250 ms.
  while (Date.now() - started < 250 || pending.length < 3) {
    pending.push(s.dead.record(letter(pending.length)));
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(pending);
  expect(s.written.length).toBeGreaterThanOrEqual(2);
  expect(s.written.reduce((n, r) => n + r.count, 0)).toBe(pending.length);
});
