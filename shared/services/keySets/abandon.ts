/**
 * Abandon: the way out when a set can no longer be opened (never automatic). The set's
 * generation is bumped first, with a fresh primary under a working KEK, so items written
 * from then on survive; then a batch job deletes every ciphertext of the older
 * generations and marks each item `needs-reentry` (phase one, in item-id order), and
 * then tells each owner once (`Keyturn.CredentialReentryRequired` per owner, listing
 * the item ids: `reentryNotices.ts`).
 */
import type { BatchJob } from '../../domain/batchJob';
import { type DataKey, type Item, type KeySet, dataKeyDocId, keyIdOf } from '../../domain/keySet';
import { newDataKey } from '../../domain/keySetCipher';
import { ConcurrencyConflict, ValidationError } from '../../errors';
import type { Logger, Notifier, VaultKeys, Versioned } from '../../ports';
import type { BatchJobs, BatchKind, BatchResult } from '../jobs/batchJobs';
import { WRAP_ALG } from './dataKeys';
import { workingKek } from './kek';
import { type KeySetJobDeps, claimAndStart, eachLimited } from './reencrypt';
import { NOTICES_START, isNoticeCursor, publishReentryNotices } from './reentryNotices';

export const ABANDON = 'keyset-abandon';

export interface AbandonDeps extends KeySetJobDeps {
  keys: VaultKeys;
  notifier: Notifier;
}

export function abandonKind(deps: AbandonDeps): BatchKind {
  return {
    kind: ABANDON,
    async run(job: BatchJob, log: Logger): Promise<BatchResult> {
      const setId = job.subject;
      const generation = Number(job.params.generation);
      const batchSize = Number(job.params.batchSize);
      const set = await deps.service(log).readSet(setId);
      if (isNoticeCursor(job.cursor)) return publishReentryNotices(deps, set.doc, job, generation, batchSize, String(job.params.reason ?? ''));
      const page = await deps.store.itemsBeforeGeneration(setId, generation, { top: batchSize, ...(job.cursor ? { after: job.cursor } : {}) });
      let processed = 0;
      await eachLimited(page, 16, async (stored) => {
        if (await abandonItem(deps, set.doc, stored, generation)) processed++;
      });
      // After the last page, the owners are told (every item is `needs-reentry` by then).
      return { processed, next: page.length === batchSize ? page.at(-1)!.doc.id : NOTICES_START };
    },
  };
}

/** Deletes the item's ciphertext and marks it `needs-reentry`; false when there was nothing to do. */
async function abandonItem(deps: AbandonDeps, set: KeySet, first: Versioned<Item>, generation: number): Promise<boolean> {
  let current: Versioned<Item> | undefined = first;
  for (let attempt = 0; attempt < 3 && current; attempt++) {
    const item = current.doc;
    if (item.generation >= generation) return false; // written again since the bump: it survives
    if (item.state === 'needs-reentry') return false; // an earlier abandon's: its owner is told again in phase two
    const { ciphertext: _c, keyId: _k, ...rest } = item;
    void _c;
    void _k;
    try {
      await deps.store.writeItem({ ...rest, state: 'needs-reentry', updatedAt: new Date((await deps.clock.now()).getTime()).toISOString() }, current.etag);
      return true;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
      current = await deps.store.readItem(set.setId, item.id);
    }
  }
  return false;
}

/** POST …/abandon {confirm: set, reason}: the bump and fresh keys now; the deletion as a batch job. */
export async function startAbandon(jobs: BatchJobs, deps: AbandonDeps, log: Logger, setId: string, input: { confirm: string; reason: string; batchSize: number }) {
  if (input.confirm !== setId) throw new ValidationError('confirm', 'confirm: must equal the key set id');
  const service = deps.service(log);
  const { doc: set } = await service.readSet(setId);
  const generation = set.generation + 1;
  // A working KEK for the fresh key: the current one, or (Keyturn-owned and gone) a replacement.
  const kek = await workingKek(deps, service, set);
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
      const replaced = kek.name === s.kek.name ? {} : { replacedKeks: [...(s.replacedKeks ?? []), { vaultUrl: s.kek.vaultUrl, name: s.kek.name, version: s.kek.version, replacedAt: now }].slice(-10) };
      return { ...(rest as KeySet), ...replaced, kek, generation, primaryKeyId: key.keyId, primarySince: now, nextKeyNumber: n + 1, keysVersion: s.keysVersion + 1, state: 'available' };
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
