/**
 * The key-set part of the playbooks' wiring (issue 13's life cycle, issue 15's steps):
 * the snapshot of the named sets (or of every set, listed a page at a time, for
 * `all: true`), the incident scope's `KeySetLookup`, and the key-set
 * actions, each idempotent on its own terms — an add is skipped once the primary is no
 * longer a leaked key, a re-encryption is found (not started twice) while it runs, a
 * retire of a retired key changes nothing, and the export's staleness follows the set's
 * keys by itself (`exportStale`: every key change bumps `keysVersion`).
 */
import type { KeySetSnapshot } from '../domain/playbooks';
import { KeyturnError } from '../errors';
import type { Logger } from '../ports';
import type { KeySetLookup } from '../services/incidents/ports';
import type { PlaybookActions } from '../services/playbooks/steps';
import type { KeySetsRoot } from './keySets';

/** Items re-encrypted per batch of a playbook's re-encryption (the queue trigger runs the batches). */
const BATCH_SIZE = 100;
/** Sets listed (and snapshotted) per page when `all: true` names every set. */
const LIST_PAGE = 50;

const exists = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
  try {
    return await read();
  } catch (e) {
    if (e instanceof KeyturnError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
};

export function keySetPlaybookParts(
  keySets: KeySetsRoot,
  log: () => Logger,
  vaultOf: (vaultUrl: string) => string,
  /** The KEK's RSA size (algorithm-weakness rotates the KEKs below the minimum); undefined when unreadable. */
  kekBits: (kek: { vaultUrl: string; name: string; version: string }) => Promise<number | undefined> = async () => undefined,
  pageSize = LIST_PAGE,
) {
  const view = (setId: string) => exists(() => keySets.service(log()).view(setId));
  const snapshotOf = async (setId: string): Promise<KeySetSnapshot | undefined> => {
    const v = await view(setId);
    if (!v) return undefined;
    const bits = await kekBits(v.kek).catch(() => undefined);
    return {
      set: v.setId,
      kekVault: vaultOf(v.kek.vaultUrl),
      kekOwned: v.kek.owned,
      ...(bits ? { kekRsaBits: bits } : {}),
      keys: v.keys.map((k) => ({ keyId: k.keyId, state: k.state })),
    };
  };
  const snapshotAll = async (ids: string[]): Promise<KeySetSnapshot[]> => (await Promise.all(ids.map(snapshotOf))).flatMap((s) => (s ? [s] : []));
  /** Every set's id, one page of the key-set store's listing at a time. */
  async function* everySet(): AsyncGenerator<string[]> {
    let continuation: string | undefined;
    do {
      const page = await keySets.listSetIds({ maxItems: pageSize, ...(continuation ? { continuation } : {}) });
      yield page.setIds;
      continuation = page.continuation;
    } while (continuation);
  }
  /** The named sets; every set when `ids` is undefined (`all: true`), snapshotted a page at a time. */
  const snapshot = async (ids?: string[]): Promise<KeySetSnapshot[]> => {
    if (ids) return snapshotAll(ids);
    const out: KeySetSnapshot[] = [];
    for await (const page of everySet()) out.push(...(await snapshotAll(page)));
    return out;
  };
  const setIds = async (): Promise<string[]> => {
    const out: string[] = [];
    for await (const page of everySet()) out.push(...page);
    return out;
  };
  const lookup: KeySetLookup = {
    sets: async (ids) => (ids ? (await snapshotAll(ids)).map((s) => s.set) : setIds()),
    keys: async (refs) => {
      const sets = await snapshot([...new Set(refs.map((r) => r.set))]);
      return refs.filter((r) => sets.some((s) => s.set === r.set && s.keys.some((k) => k.keyId === r.keyId)));
    },
  };
  const actions = (l: Logger): PlaybookActions['keySets'] => ({
    async addKey(set, _reason, replacing = []) {
      const before = await keySets.service(l).view(set);
      // Already replaced (a re-run after a crash): the primary is no leaked key any more.
      if (replacing.length > 0 && !replacing.includes(before.primaryKeyId)) return { keyId: before.primaryKeyId };
      return { keyId: (await keySets.service(l).addKey(set)).primaryKeyId };
    },
    async reencrypt(set) {
      const v = await keySets.service(l).view(set);
      const left = v.keys.filter((k) => k.keyId !== v.primaryKeyId).reduce((n, k) => n + k.items, 0);
      if (left === 0) return { jobId: 'none', completed: true, processed: 0, total: 0 };
      try {
        const job = await keySets.reencrypt(l, set, BATCH_SIZE);
        return { jobId: job.id, completed: job.state === 'completed', processed: job.processed, total: job.total };
      } catch (e) {
        // One re-encryption at a time: the running one is the one to wait for.
        const jobId = e instanceof KeyturnError && e.code === 'KEYSET_JOB_RUNNING' ? String(e.details?.jobId ?? '') : '';
        if (!jobId) throw e;
        const job = await keySets.jobs(l).read(jobId);
        return { jobId, completed: job?.state === 'completed', processed: job?.processed ?? 0, total: job?.total ?? left };
      }
    },
    async retireKey(set, keyId) {
      // Right after the add (nothing to re-encrypt), other hosts may still encrypt with it for the primary TTL: wait that out.
      await keySets.service(l).retireKey(set, keyId, { wait: true });
    },
    async flagExportStale(set) {
      const v = await keySets.service(l).view(set);
      if (!v.exportStale) throw new KeyturnError('PLAYBOOK_ACTION_UNAVAILABLE', `Key set '${set}': its export is not stale after the key change`, { set });
    },
    async rotateKek(set) {
      const out = await keySets.rewrap(l, set);
      return { kekVersion: out.kekVersion, rewrapped: out.rewrapped };
    },
  });
  return { snapshot, lookup, actions };
}
