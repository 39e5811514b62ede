/**
 * Re-encryption of a key set onto its primary, as batch jobs: each batch takes up to
 * `batchSize` items not on the primary (in item-id order after the cursor), opens and
 * seals each under the primary, ETag-guarded per item. A pass that started before
 * every host could have seen the primary (primarySince + the primary TTL) is followed
 * by a final pass, which catches items written meanwhile on an old key.
 */
import type { BatchJob } from '../../domain/batchJob';
import { type Item, type KeySet, primarySettledAt } from '../../domain/keySet';
import { ConcurrencyConflict, KeyturnError } from '../../errors';
import type { Clock, Logger, Versioned } from '../../ports';
import { type BatchJobs, type BatchKind, type BatchResult, newJobId } from '../jobs/batchJobs';
import type { KeySetService } from './keySetService';
import type { KeySetStore } from './ports';

export const REENCRYPT = 'keyset-reencrypt';
/** Items of a batch opened and sealed at once. */
const CONCURRENCY = 16;

/** `{pass}|{passStartedAtMs}|{afterItemId}` */
export const passCursor = (pass: number, startedAtMs: number, after = '') => `${pass}|${startedAtMs}|${after}`;

export function parsePassCursor(cursor: string): { pass: number; startedAtMs: number; after: string } {
  const [pass, started, ...after] = cursor.split('|');
  return { pass: Number(pass), startedAtMs: Number(started), after: after.join('|') };
}

/** Runs `task` over `items`, at most `limit` at once. */
export async function eachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

export interface KeySetJobDeps {
  store: KeySetStore;
  clock: Clock;
  service(log: Logger): KeySetService;
  primaryTtlMs: number;
}

export function reencryptKind(deps: KeySetJobDeps): BatchKind {
  return {
    kind: REENCRYPT,
    async run(job: BatchJob, log: Logger): Promise<BatchResult> {
      const setId = job.subject;
      const batchSize = Number(job.params.batchSize);
      const service = deps.service(log);
      const cursor = parsePassCursor(job.cursor);
      // The primary as stored now (not a host's copy): batches always seal onto the latest.
      const { set } = await service.current(setId, true);
      const primary = set.doc.primaryKeyId;
      const page = await deps.store.itemsNotOnKey(setId, primary, { top: batchSize, ...(cursor.after ? { after: cursor.after } : {}) });
      let processed = 0;
      await eachLimited(page, CONCURRENCY, async (item) => {
        if (await reencryptItem(service, deps.store, setId, item)) processed++;
      });
      if (page.length === batchSize) return { processed, next: passCursor(cursor.pass, cursor.startedAtMs, page.at(-1)!.doc.id) };
      // End of a pass: done once it began after every host saw the primary; else one more pass when they have.
      const seenByAllAt = primarySettledAt(set.doc, deps.primaryTtlMs);
      if (cursor.startedAtMs >= seenByAllAt) return { processed, next: null };
      const now = (await deps.clock.now()).getTime();
      const wait = Math.max(0, seenByAllAt - now);
      return { processed, next: passCursor(cursor.pass + 1, now + wait), delaySeconds: Math.ceil(wait / 1000) };
    },
  };
}

/** One item onto the primary; false when there was nothing to do (already there, deleted, abandoned). */
async function reencryptItem(service: KeySetService, store: KeySetStore, setId: string, first: Versioned<Item>): Promise<boolean> {
  let current: Versioned<Item> | undefined = first;
  for (let attempt = 0; attempt < 3 && current; attempt++) {
    const item = current.doc;
    if (item.state !== 'ok' || !item.ciphertext) return false;
    const value = await service.openItem(setId, item);
    try {
      const sealed = await service.sealFor(setId, item.id, value);
      if (sealed.keyId === item.keyId) return false;
      await store.writeItem({ ...item, ciphertext: sealed.ciphertext, keyId: sealed.keyId, generation: item.generation }, current.etag);
      return true;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
      current = await store.readItem(setId, item.id); // written meanwhile: look again
    } finally {
      value.fill(0);
    }
  }
  return false;
}

/** POST …/reencrypt: one running re-encryption per set; answers the job id. */
export async function startReencrypt(jobs: BatchJobs, deps: KeySetJobDeps, log: Logger, setId: string, batchSize: number): Promise<BatchJob> {
  const service = deps.service(log);
  const { set } = await service.current(setId, true);
  await refuseRunning(jobs, set.doc.activeJobId);
  const counts = await deps.store.countByKey(setId);
  const total = Object.entries(counts).reduce((sum, [keyId, n]) => (keyId === set.doc.primaryKeyId ? sum : sum + n), 0);
  const now = (await deps.clock.now()).getTime();
  return claimAndStart(jobs, deps, service, setId, { kind: REENCRYPT, subject: setId, params: { batchSize }, total, cursor: passCursor(0, now) });
}

export async function refuseRunning(jobs: BatchJobs, activeJobId: string | undefined): Promise<void> {
  if (!activeJobId) return;
  const active = await jobs.read(activeJobId);
  if (active && active.state !== 'completed') {
    throw new KeyturnError('KEYSET_JOB_RUNNING', `Job '${active.id}' (${active.kind}) has not completed on this key set${active.state === 'failed' ? '; resume it first' : ''}`, {
      jobId: active.id,
      kind: active.kind,
      state: active.state,
    });
  }
}

/** Records the job on the set (ETag: two starts make one job), then creates and enqueues it. */
export async function claimAndStart(
  jobs: BatchJobs,
  deps: KeySetJobDeps,
  service: KeySetService,
  setId: string,
  input: Parameters<BatchJobs['start']>[0],
  change: (set: KeySet) => KeySet = (set) => set,
): Promise<BatchJob> {
  const stored = await service.readSet(setId);
  await refuseRunning(jobs, stored.doc.activeJobId);
  const id = newJobId();
  await deps.store.replaceSet({ ...change(stored.doc), activeJobId: id, updatedAt: new Date((await deps.clock.now()).getTime()).toISOString() }, stored.etag);
  service.forgetCached(setId);
  return jobs.start({ ...input, id });
}
