/**
 * Abandon's notices: one Keyturn.CredentialReentryRequired per owner listing its item ids,
 * split above the per-event cap, the same ids when a batch runs again, and no item missed
 * when one is re-entered between two runs. The store is an in-memory stand-in for the
 * two Cosmos DB queries (their SQL runs against the local Cosmos DB in the integration test).
 */
import type { BatchJob } from '../../../shared/domain/batchJob';
import type { Item, KeySet } from '../../../shared/domain/keySet';
import { NOTICES_START, type ReentryNoticeDeps, publishReentryNotices, reentryEventId } from '../../../shared/services/keySets/reentryNotices';

const set = { setId: 'conn', uid: 'uid-1' } as KeySet;
const item = (id: string, owner: string, state: Item['state'] = 'needs-reentry', generation = 0): Item => ({ id, setId: 'conn', owner, state, generation, updatedAt: '' });

function fakes(items: Item[], itemsPerEvent?: number) {
  const published: { id?: string; subject: string; data: Record<string, any> }[] = [];
  const due = (generation: number) => items.filter((i) => i.state === 'needs-reentry' && i.generation < generation);
  const deps: ReentryNoticeDeps = {
    store: {
      async nextReentryOwner(_s, generation, after) {
        return due(generation).map((i) => i.owner).filter((o) => o > after).sort()[0];
      },
      async reentryItemsOfOwner(_s, generation, owner, page) {
        return due(generation)
          .filter((i) => i.owner === owner && i.id > (page.after ?? ''))
          .sort((a, b) => (a.id < b.id ? -1 : 1))
          .slice(0, page.top)
          .map((doc) => ({ doc, etag: 'e' }));
      },
    },
    notifier: { publish: async (e) => void published.push(e) },
    ...(itemsPerEvent ? { itemsPerEvent } : {}),
  };
  return { deps, published };
}

const jobAt = (cursor: string) => ({ id: 'job-1', cursor }) as BatchJob;

/** Runs the phase batch by batch to its end; the cursors it went through. */
async function runAll(deps: ReentryNoticeDeps, batchSize: number, cursors: string[] = []) {
  let cursor: string | null = NOTICES_START;
  while (cursor !== null) {
    cursors.push(cursor);
    cursor = (await publishReentryNotices(deps, set, jobAt(cursor), 1, batchSize, 'drill')).next;
  }
  return cursors;
}

describe('re-entry notices', () => {
  test('one event per owner, listing its item ids; none for items written again or of the new generation', async () => {
    const items = [item('a1', 'alice'), item('b1', 'bob|x'), item('a2', 'alice'), item('b2', 'bob|x'), item('ok', 'carol', 'ok'), item('new', 'dave', 'needs-reentry', 1)];
    const { deps, published } = fakes(items);
    await runAll(deps, 100);
    expect(published.map((e) => [e.subject, e.data.itemIds])).toEqual([
      ['/keysets/conn/owners/alice', ['a1', 'a2']],
      ['/keysets/conn/owners/bob%7Cx', ['b1', 'b2']],
    ]);
    expect(published[0]!.data).toMatchObject({ setId: 'conn', owner: 'alice', generation: 1, jobId: 'job-1', reason: 'drill', itemCount: 2 });
    expect(published[0]!.id).toBe(reentryEventId('uid-1', 1, 'job-1', 'alice', ['a1', 'a2']));
    expect(new Set(published.map((e) => e.id)).size).toBe(2);
  });

  test('an owner with more items than one event carries gets several; batches stop near batchSize and resume from the cursor', async () => {
    const items = [...Array.from({ length: 7 }, (_, i) => item(`m${i}`, 'many')), item('s0', 'solo')];
    const { deps, published } = fakes(items, 3);
    const cursors = await runAll(deps, 4);
    expect(published.map((e) => e.data.itemIds)).toEqual([['m0', 'm1', 'm2'], ['m3', 'm4', 'm5'], ['m6'], ['s0']]);
    expect(cursors).toHaveLength(2); // two events (6 ids ≥ 4) end the first batch; the second resumes from its cursor
  });

  test('a batch run again (redelivery, resume) publishes the same ids; an item re-entered in between is never the cause of a miss', async () => {
    const items = Array.from({ length: 5 }, (_, i) => item(`x${i}`, 'owner'));
    const first = fakes(items, 2);
    const cursors = await runAll(first.deps, 2);
    const again = fakes(items, 2);
    for (const c of cursors) await publishReentryNotices(again.deps, set, jobAt(c), 1, 2, 'drill');
    expect(again.published.map((e) => e.id)).toEqual(first.published.map((e) => e.id));

    // The second batch's run is cut short by a crash; x2 is re-entered; the batch runs again.
    const seen = new Map(first.published.slice(0, 2).map((e) => [e.id!, e]));
    items[2] = { ...items[2]!, state: 'ok', generation: 1 };
    const rerun = fakes(items, 2);
    let cursor: string | null = cursors[1]!;
    while (cursor !== null) cursor = (await publishReentryNotices(rerun.deps, set, jobAt(cursor), 1, 2, 'drill')).next;
    for (const e of rerun.published) if (!seen.has(e.id!)) seen.set(e.id!, e); // a subscriber drops repeated ids
    const announced = new Set([...seen.values()].flatMap((e) => e.data.itemIds as string[]));
    expect(['x0', 'x1', 'x3', 'x4'].every((id) => announced.has(id))).toBe(true);
  });

  test('nothing to announce: the phase ends at once', async () => {
    const { deps, published } = fakes([item('k', 'o', 'ok')]);
    expect(await publishReentryNotices(deps, set, jobAt(NOTICES_START), 1, 10, '')).toEqual({ processed: 0, next: null });
    expect(published).toEqual([]);
  });
});
