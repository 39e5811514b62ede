/**
 * The incident chain on its own: hashes over exactly the chained fields (RFC 8785), and
 * verifyChain's answer for every kind of tampering, each with the seq it names.
 */
import { createHash } from 'node:crypto';
import {
  type Checkpoint,
  type EntryDoc,
  GENESIS_HASH,
  canonicalJson,
  checkpointDue,
  entryHash,
  makeEntry,
  nextCheckpoint,
  verifyChain,
} from '../../../shared/domain/incidentChain';
import { SYSTEM } from '../../../shared/domain/incident';

const ID = 'inc-1';
const T0 = Date.parse('2030-01-01T00:00:00Z');

function chain(n: number, incidentId = ID, salt = ''): EntryDoc[] {
  const out: EntryDoc[] = [];
  let head = { seq: 0, hash: GENESIS_HASH };
  for (let i = 0; i < n; i++) {
    const e = makeEntry({ incidentId, at: new Date(T0 + i * 1000).toISOString(), event: `e${i + 1}${salt}`, actor: SYSTEM, claimedBy: null, evidence: { i } }, head);
    out.push(e);
    head = e;
  }
  return out;
}

function checkpointsAt(entries: EntryDoc[], seqs: number[]): Checkpoint[] {
  const out: Checkpoint[] = [];
  for (const seq of seqs) {
    const e = entries[seq - 1]!;
    out.push(nextCheckpoint({ incidentId: ID, seq, hash: e.hash, state: 'open' }, out[out.length - 1], new Date(T0 + seq * 1000)));
  }
  return out;
}

/** What an attacker who knows the format does: recompute an entry's own hash after changing it. */
const rehash = (e: EntryDoc): EntryDoc => ({ ...e, id: `${e.incidentId}:${e.seq}`, hash: entryHash(e) });

describe('hashes', () => {
  test('the hash is the SHA-256 of the canonical JSON of exactly the chained fields', () => {
    const [first] = chain(1);
    const { hash, id, ...body } = first!;
    void id;
    expect(first!.prevHash).toBe(GENESIS_HASH);
    expect(hash).toBe(createHash('sha256').update(canonicalJson(body)).digest('hex'));
    // Member order and Cosmos DB's own properties do not change it.
    const shuffled = { _etag: '"x"', _ts: 1, _rid: 'r', hash, evidence: body.evidence, prevHash: body.prevHash, seq: 1, incidentId: ID, at: body.at, event: body.event, actor: body.actor, claimedBy: null };
    expect(entryHash(shuffled)).toBe(hash);
    expect(canonicalJson({ b: 1, a: [2, 'x'] })).toBe('{"a":[2,"x"],"b":1}');
  });

  test('each entry links to the one before', () => {
    const entries = chain(3);
    expect(entries[1]!.prevHash).toBe(entries[0]!.hash);
    expect(entries[2]!.id).toBe(`${ID}:3`);
  });
});

describe('verifyChain', () => {
  const entries = chain(6);
  const cps = checkpointsAt(entries, [1, 4, 6]);
  const verify = (e: EntryDoc[], c: Checkpoint[] = cps, exists = true) => verifyChain(e, c, { incidentId: ID, incidentExists: exists });

  test('an untouched chain is ok, in any order', () => {
    expect(verify([...entries].reverse())).toEqual({ ok: true, entries: 6, checkpoints: 3, head: { seq: 6, hash: entries[5]!.hash } });
  });

  test('a changed field is modified at its seq', () => {
    const tampered = entries.map((e) => (e.seq === 3 ? { ...e, evidence: { i: 99 } } : e));
    expect(verify(tampered)).toMatchObject({ ok: false, reason: 'modified', firstBrokenSeq: 3 });
  });

  test('an entry moved to another id is modified', () => {
    const tampered = entries.map((e) => (e.seq === 2 ? { ...e, id: `${ID}:9` } : e));
    expect(verify(tampered)).toMatchObject({ reason: 'modified', firstBrokenSeq: 2 });
  });

  test('a deleted middle entry is missing at its seq', () => {
    expect(verify(entries.filter((e) => e.seq !== 3))).toMatchObject({ ok: false, reason: 'missing', firstBrokenSeq: 3, entries: 5 });
  });

  test('a forged entry inserted with the chain after it shifted is a broken link where the old chain resumes', () => {
    const forged = makeEntry({ incidentId: ID, at: entries[2]!.at, event: 'forged', actor: SYSTEM, claimedBy: null, evidence: {} }, entries[1]!);
    const shifted = entries.slice(2).map((e) => rehash({ ...e, seq: e.seq + 1 }));
    expect(verify([...entries.slice(0, 2), forged, ...shifted], [])).toMatchObject({ ok: false, reason: 'broken-link', firstBrokenSeq: 4 });
  });

  test('two swapped entries are a broken link at the first', () => {
    const [a, b] = [entries[2]!, entries[3]!];
    const swapped = entries.map((e) => (e.seq === 3 ? rehash({ ...b, seq: 3 }) : e.seq === 4 ? rehash({ ...a, seq: 4 }) : e));
    expect(verify(swapped, [])).toMatchObject({ ok: false, reason: 'broken-link', firstBrokenSeq: 3 });
  });

  test('two documents at one seq are a broken link', () => {
    const dup = { ...entries[2]!, id: 'other' };
    expect(verify([...entries, dup], [])).toMatchObject({ reason: 'broken-link', firstBrokenSeq: 3 });
  });

  test('a dropped tail below the last checkpoint is truncated', () => {
    expect(verify(entries.slice(0, 4))).toMatchObject({ ok: false, reason: 'truncated', firstBrokenSeq: 5, entries: 4 });
  });

  test('a dropped tail past the last checkpoint is not detectable (the documented window)', () => {
    expect(verify(entries.slice(0, 4), cps.slice(0, 2)).ok).toBe(true);
  });

  test('a chain rewritten consistently with fresh hashes is a checkpoint mismatch', () => {
    expect(verify(chain(6, ID, '-rewritten'))).toMatchObject({ ok: false, reason: 'checkpoint-mismatch', firstBrokenSeq: 1 });
  });

  test('a forged checkpoint chained to nothing is a checkpoint mismatch', () => {
    const forged = { ...cps[2]!, prevCheckpoint: 'f'.repeat(64) };
    expect(verify(entries, [cps[0]!, cps[1]!, forged])).toMatchObject({ reason: 'checkpoint-mismatch', firstBrokenSeq: 6 });
  });

  test('checkpoints of concurrent writers chained to one earlier checkpoint are fine', () => {
    const first = cps[0]!;
    const a = nextCheckpoint({ incidentId: ID, seq: 4, hash: entries[3]!.hash }, first, new Date(T0));
    const b = nextCheckpoint({ incidentId: ID, seq: 5, hash: entries[4]!.hash }, first, new Date(T0));
    expect(verify(entries, [first, b, a]).ok).toBe(true);
  });

  test('a deleted incident is incident-missing, even with every entry gone', () => {
    expect(verify([], cps, false)).toMatchObject({ ok: false, reason: 'incident-missing', firstBrokenSeq: 1, entries: 0, checkpoints: 3 });
  });
});

describe('checkpointDue', () => {
  test('a first head, a state change, or every N entries; never at or below the last checkpoint', () => {
    expect(checkpointDue({ seq: 0 }, undefined, 10)).toBe(false);
    expect(checkpointDue({ seq: 1, state: 'open' }, undefined, 10)).toBe(true);
    expect(checkpointDue({ seq: 5, state: 'open' }, { seq: 1, state: 'open' }, 10)).toBe(false);
    expect(checkpointDue({ seq: 5, state: 'running' }, { seq: 1, state: 'open' }, 10)).toBe(true);
    expect(checkpointDue({ seq: 11, state: 'open' }, { seq: 1, state: 'open' }, 10)).toBe(true);
    expect(checkpointDue({ seq: 4, state: 'closed' }, { seq: 4, state: 'open' }, 10)).toBe(false);
  });
});
