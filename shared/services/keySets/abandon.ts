/**
 * Abandon: the way out when a set can no longer be opened (never automatic). The set's
 * generation is bumped first, with a fresh primary under a working KEK, so items written
 * from then on survive; then a batch job deletes every ciphertext of the older
 * generations, marks each item `needs-reentry` and tells its owner
 * (`Keyturn.CredentialReentryRequired`, one per item with a deterministic id, so a batch
 * run again publishes the same events).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { BatchJob } from '../../domain/batchJob';
import { type DataKey, type Item, type KeySet, REENTRY_EVENT, dataKeyDocId, keyIdOf } from '../../domain/keySet';
import { newDataKey } from '../../domain/keySetCipher';
import { ConcurrencyConflict, ValidationError, isKeyturnError } from '../../errors';
import type { Logger, Notifier, VaultKeys, Versioned } from '../../ports';
import type { BatchJobs, BatchKind, BatchResult } from '../jobs/batchJobs';
import { WRAP_ALG } from './dataKeys';
import { type KeySetJobDeps, claimAndStart, eachLimited } from './reencrypt';

export const ABANDON = 'keyset-abandon';

export interface AbandonDeps extends KeySetJobDeps {
  keys: VaultKeys;
  notifier: Notifier;
}

export const reentryEventId = (setUid: string, generation: number, itemId: string) =>
  createHash('sha256').update(`keyturn-reentry:${setUid}:${generation}:${itemId}`).digest('hex').slice(0, 32);

export function abandonKind(deps: AbandonDeps): BatchKind {
  return {
    kind: ABANDON,
    async run(job: BatchJob, log: Logger): Promise<BatchResult> {
      const setId = job.subject;
      const generation = Number(job.params.generation);
      const batchSize = Number(job.params.batchSize);
      const set = await deps.service(log).readSet(setId);
      const page = await deps.store.itemsBeforeGeneration(setId, generation, { top: batchSize, ...(job.cursor ? { after: job.cursor } : {}) });
      let processed = 0;
      await eachLimited(page, 16, async (stored) => {
        if (await abandonItem(deps, set.doc, stored, generation, String(job.params.reason ?? ''))) processed++;
      });
      return { processed, next: page.length === batchSize ? page.at(-1)!.doc.id : null };
    },
  };
}

async function abandonItem(deps: AbandonDeps, set: KeySet, first: Versioned<Item>, generation: number, reason: string): Promise<boolean> {
  let current: Versioned<Item> | undefined = first;
  let changed = false;
  for (let attempt = 0; attempt < 3 && current; attempt++) {
    const item = current.doc;
    if (item.generation >= generation) return false; // written again since the bump: it survives
    if (item.state === 'needs-reentry') break;
    const { ciphertext: _c, keyId: _k, ...rest } = item;
    void _c;
    void _k;
    try {
      await deps.store.writeItem({ ...rest, state: 'needs-reentry', updatedAt: new Date((await deps.clock.now()).getTime()).toISOString() }, current.etag);
      changed = true;
      break;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
      current = await deps.store.readItem(set.setId, item.id);
    }
  }
  if (!current) return false;
  // Published every time the item is seen abandoned (its id is deterministic: subscribers drop repeats).
  await deps.notifier.publish({
    id: reentryEventId(set.uid, generation, current.doc.id),
    eventType: REENTRY_EVENT,
    subject: `/keysets/${set.setId}/items/${current.doc.id}`,
    data: { setId: set.setId, itemId: current.doc.id, owner: current.doc.owner, generation, reason },
  });
  return changed;
}

/** POST …/abandon {confirm: set, reason}: the bump and fresh keys now; the deletion as a batch job. */
export async function startAbandon(jobs: BatchJobs, deps: AbandonDeps, log: Logger, setId: string, input: { confirm: string; reason: string; batchSize: number }) {
  if (input.confirm !== setId) throw new ValidationError('confirm', 'confirm: must equal the key set id');
  const service = deps.service(log);
  const { doc: set } = await service.readSet(setId);
  const generation = set.generation + 1;
  // A working KEK for the fresh key: the current one, or (Keyturn-owned and gone) a replacement.
  let kek = set.kek;
  const exists = await deps.keys.get({ vaultUrl: kek.vaultUrl, name: kek.name, version: kek.version }).catch((e: unknown) => {
    if (isKeyturnError(e, 'ACCESS_DENIED')) return undefined;
    throw e;
  });
  if (!exists && kek.owned) kek = await service.createOwnedKek(setId, randomUUID());
  const n = set.nextKeyNumber;
  const plain = newDataKey();
  const wrapped = await deps.keys.wrap(kek, WRAP_ALG, plain);
  plain.fill(0);
  const now = (await deps.clock.now()).toISOString();
  const key: DataKey = {
    id: dataKeyDocId(keyIdOf(n)), setId, keyId: keyIdOf(n), state: 'active', wrapped: Buffer.from(wrapped).toString('base64url'),
    kek: { vaultUrl: kek.vaultUrl, name: kek.name, version: kek.version }, generation, reservedUses: 0, createdAt: now, updatedAt: now,
  };
  await deps.store.createKey(key);
  const total = await deps.store.countBeforeGeneration(setId, generation);
  const job = await claimAndStart(
    jobs,
    deps,
    service,
    setId,
    { kind: ABANDON, subject: setId, params: { generation, batchSize: input.batchSize, reason: input.reason.slice(0, 500) }, total, cursor: '' },
    (s) => {
      const { kekFailingSince: _f, ...rest } = s;
      void _f;
      return { ...(rest as KeySet), kek, generation, primaryKeyId: key.keyId, primarySince: now, nextKeyNumber: n + 1, keysVersion: s.keysVersion + 1, state: 'available' };
    },
  );
  // The old keys open nothing any more: retired.
  for (const { doc, etag } of await deps.store.listKeys(setId)) {
    if (doc.generation < generation && doc.state !== 'retired') await deps.store.replaceKey({ ...doc, state: 'retired', updatedAt: now }, etag).catch(() => undefined);
  }
  service.forgetCached(setId);
  log.warn('Key set abandoned: old-generation ciphertexts are being deleted', { setId, generation, jobId: job.id, items: total });
  return job;
}
