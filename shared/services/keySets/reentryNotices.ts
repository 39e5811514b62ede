/**
 * Abandon's second phase: one `Keyturn.CredentialReentryRequired` per owner (not per
 * item), listing the owner's item ids, in owner order then item-id order. An owner with
 * more than `REENTRY_ITEMS_PER_EVENT` items gets several events. Event ids are the
 * SHA-256 of (set uid, generation, job, owner, the ids listed), so a batch run again
 * (redelivery, resume) publishes the same ids for the same content; an item re-entered
 * in between makes a re-run's event list one id fewer under a new id, so a subscriber
 * that drops repeated ids may see an item twice but never misses one.
 */
import { createHash } from 'node:crypto';
import type { BatchJob } from '../../domain/batchJob';
import { type KeySet, REENTRY_EVENT } from '../../domain/keySet';
import type { Notifier } from '../../ports';
import type { BatchResult } from '../jobs/batchJobs';
import type { KeySetStore } from './ports';

/**
 * Item ids per event: ids are ≤ 128 ASCII characters, so 1,000 of them are ≤ 131 KB of
 * JSON (with an owner ≤ 256 characters and a reason ≤ 500), far below Event Grid's 1 MB
 * per event; a subscriber handles one event in one go.
 */
export const REENTRY_ITEMS_PER_EVENT = 1000;
/** Events published by one batch of the phase at most (each is one Event Grid request). */
const EVENTS_PER_BATCH = 50;

export interface ReentryNoticeDeps {
  store: Pick<KeySetStore, 'nextReentryOwner' | 'reentryItemsOfOwner'>;
  notifier: Notifier;
  /** Tests only: a smaller split. */
  itemsPerEvent?: number;
}

/**
 * The phase's cursor: `o:{base64url owner}:{after item id}` (item ids and base64url
 * hold no `:`, so it never reads as phase one's cursor, an item id). `o::` starts it.
 */
export const NOTICES_START = 'o::';
export const isNoticeCursor = (cursor: string) => cursor.startsWith('o:');
const noticeCursor = (owner: string, after: string) => `o:${Buffer.from(owner, 'utf8').toString('base64url')}:${after}`;
function parseNoticeCursor(cursor: string): { owner: string; after: string } {
  const [, owner = '', after = ''] = cursor.split(':');
  return { owner: Buffer.from(owner, 'base64url').toString('utf8'), after };
}

export const reentryEventId = (setUid: string, generation: number, jobId: string, owner: string, itemIds: string[]) =>
  createHash('sha256').update(`keyturn-reentry-v2\n${setUid}\n${generation}\n${jobId}\n${owner}\n${itemIds.join('\n')}`).digest('hex').slice(0, 32);

/** One batch of the phase: events until about `batchSize` ids are listed (at least one event); `next: null` when every owner was told. */
export async function publishReentryNotices(deps: ReentryNoticeDeps, set: KeySet, job: BatchJob, generation: number, batchSize: number, reason: string): Promise<BatchResult> {
  const cap = deps.itemsPerEvent ?? REENTRY_ITEMS_PER_EVENT;
  let { owner, after } = parseNoticeCursor(job.cursor);
  if (owner === '') {
    const first = await deps.store.nextReentryOwner(set.setId, generation, '');
    if (first === undefined) return { processed: 0, next: null };
    owner = first;
  }
  let listed = 0;
  for (let events = 0; events < EVENTS_PER_BATCH && listed < batchSize; ) {
    const chunk = await deps.store.reentryItemsOfOwner(set.setId, generation, owner, { top: cap, ...(after ? { after } : {}) });
    if (chunk.length > 0) {
      const itemIds = chunk.map((i) => i.doc.id);
      await deps.notifier.publish({
        id: reentryEventId(set.uid, generation, job.id, owner, itemIds),
        eventType: REENTRY_EVENT,
        subject: `/keysets/${set.setId}/owners/${encodeURIComponent(owner)}`,
        data: { setId: set.setId, owner, generation, jobId: job.id, reason, itemIds, itemCount: itemIds.length },
      });
      events++;
      listed += itemIds.length;
      after = itemIds.at(-1)!;
    }
    if (chunk.length < cap) {
      const next = await deps.store.nextReentryOwner(set.setId, generation, owner);
      if (next === undefined) return { processed: 0, next: null };
      owner = next;
      after = '';
    }
  }
  return { processed: 0, next: noticeCursor(owner, after) };
}
