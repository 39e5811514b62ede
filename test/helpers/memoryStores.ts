/**
 * In-memory stand-ins for the Cosmos DB stores in unit tests (the integration tests run
 * the real ones): ETag-guarded documents with the adapters' create / create-only /
 * replace semantics, the incident record's entries, and a coded outcome of a call.
 */
import type { EntryDoc } from '../../shared/domain/incidentChain';
import { ConcurrencyConflict, KeyturnError } from '../../shared/errors';

/** Documents by id with ETags: `create` throws on a taken id, `createOnly` answers false, `replace` checks the ETag. */
export function versioned<T extends { id: string }>() {
  const docs = new Map<string, { doc: T; etag: string }>();
  let n = 0;
  return {
    docs,
    read: async (id: string) => docs.get(id),
    createOnly: async (doc: T) => (docs.has(doc.id) ? false : (docs.set(doc.id, { doc, etag: String(++n) }), true)),
    create: async (doc: T) => {
      if (docs.has(doc.id)) throw new ConcurrencyConflict('exists', doc.id);
      const v = { doc, etag: String(++n) };
      docs.set(doc.id, v);
      return v;
    },
    replace: async (doc: T, etag: string) => {
      if (docs.get(doc.id)?.etag !== etag) throw new ConcurrencyConflict('changed', doc.id);
      const v = { doc, etag: String(++n) };
      docs.set(doc.id, v);
      return v;
    },
  };
}

/** The incident entries (create-only by id), over the given map. */
export function memoryEntries(entryDocs: Map<string, EntryDoc>) {
  return {
    read: async (s: string, seq: number) => entryDocs.get(`${s}:${seq}`),
    createOnly: async (e: EntryDoc) => (entryDocs.has(e.id) ? false : (entryDocs.set(e.id, e), true)),
    all: async (s: string) => [...entryDocs.values()].filter((e) => e.incidentId === s),
    byRef: async (s: string, ref: string) => [...entryDocs.values()].find((e) => e.incidentId === s && e.evidence.ref === ref),
  };
}

/** How a call ended: 'OK', 'CRASH' (an injected fault) or the KeyturnError's code; anything else is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Error && e.name === 'InjectedFault') return 'CRASH';
    if (e instanceof KeyturnError) return e.code;
    throw e;
  }
  return 'OK';
}
