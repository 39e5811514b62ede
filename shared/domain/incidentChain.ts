/**
 * The incident record's tamper-evident chain (pure). Entry `seq` N (from 1) carries
 * the hash of entry N-1 (`prevHash`, 64 zeros for the first), and its own `hash`: the
 * SHA-256 hex of the RFC 8785 canonical JSON of exactly the entry's fields except
 * `hash` (document ids and Cosmos DB's `_rid`, `_etag`, `_ts`, `_self`, `_attachments`
 * are never hashed). Entries are created, never replaced, so a seq is taken once.
 *
 * Checkpoints of the head `{seq, hash, prevCheckpoint}` are kept outside Cosmos DB (as
 * Key Vault secret versions); `verifyChain` compares the chain with them. A checkpoint
 * may lag the chain (written after its entry), never lead it.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Actor } from './incident';
import type { CheckpointRecovery, LedgerCheck } from './incidentLedger';

export const GENESIS_HASH = '0'.repeat(64);

/** The chained fields, in no particular order (canonical JSON sorts them). */
export interface EntryBody {
  incidentId: string;
  seq: number;
  at: string;
  event: string;
  actor: Actor;
  claimedBy: string | null;
  evidence: Record<string, unknown>;
  prevHash: string;
}

export interface Entry extends EntryBody {
  hash: string;
}

/** An entry as stored: the document id is `{incidentId}:{seq}`. */
export type EntryDoc = Entry & { id: string };

export const entryId = (incidentId: string, seq: number): string => `${incidentId}:${seq}`;

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Canonical JSON (RFC 8785) of a JSON value; undefined members are dropped as JSON does. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('not a JSON value');
  return text;
}

/** The hash of an entry: over exactly the chained fields (anything else on the document is ignored). */
export function entryHash(entry: EntryBody): string {
  const { incidentId, seq, at, event, actor, claimedBy, evidence, prevHash } = entry;
  return sha256(canonicalJson({ incidentId, seq, at, event, actor, claimedBy, evidence, prevHash }));
}

export function makeEntry(body: Omit<EntryBody, 'prevHash' | 'seq'>, head: { seq: number; hash: string }): EntryDoc {
  const chained: EntryBody = { ...body, seq: head.seq + 1, prevHash: head.hash };
  return { id: entryId(body.incidentId, chained.seq), ...chained, hash: entryHash(chained) };
}

/** A head as checkpointed: the incident's state then, and the digest of the checkpoint before. */
export interface Checkpoint {
  incidentId: string;
  seq: number;
  hash: string;
  state?: string;
  at: string;
  /** `checkpointDigest` of the previous checkpoint; null for the first. */
  prevCheckpoint: string | null;
}

export const checkpointDigest = (c: Checkpoint): string => sha256(canonicalJson(c));

export function nextCheckpoint(head: { incidentId: string; seq: number; hash: string; state?: string }, previous: Checkpoint | undefined, now: Date): Checkpoint {
  return { ...head, at: now.toISOString(), prevCheckpoint: previous ? checkpointDigest(previous) : null };
}

export const VERIFY_REASONS = ['modified', 'broken-link', 'missing', 'truncated', 'checkpoint-mismatch', 'incident-missing', 'checkpoint-deleted', 'ledger-mismatch'] as const;
export type VerifyReason = (typeof VERIFY_REASONS)[number];

export interface Verification {
  ok: boolean;
  entries: number;
  checkpoints: number;
  /** The first entry that is wrong or absent. */
  firstBrokenSeq?: number;
  reason?: VerifyReason;
  /** The head as verified (what a checkpoint may record). */
  head?: { seq: number; hash: string };
  /** `checkpoint-deleted`: the soft-deleted checkpoint secret and how to recover it. */
  recovery?: CheckpointRecovery;
  /** `ledger-mismatch`: what the ledger recorded at the closure and what the incident shows. */
  ledgerCheck?: LedgerCheck;
}

const broken = (entries: number, checkpoints: number, reason: VerifyReason, seq: number): Verification => ({ ok: false, entries, checkpoints, reason, firstBrokenSeq: seq });

/**
 * Verifies a chain against its checkpoints. `entries` in any order (sorted here by seq);
 * `incidentExists: false` means the incident's own document is gone. Checks, in order:
 * the incident is there; each entry sits at its seq (a gap is `missing`), its id and
 * incident are its own and its hash is right (`modified`), its prevHash is the hash
 * before it (`broken-link`: an insertion or a reordering); then the checkpoints: none
 * beyond the chain's head (`truncated`), each matching the entry at its seq and chained
 * to an earlier checkpoint (`checkpoint-mismatch`).
 */
export function verifyChain(
  entries: readonly (Entry & { id?: string })[],
  checkpoints: readonly Checkpoint[],
  options: { incidentId?: string; incidentExists?: boolean } = {},
): Verification {
  const n = entries.length;
  const c = checkpoints.length;
  if (options.incidentExists === false) return broken(n, c, 'incident-missing', 1);
  const sorted = [...entries].sort((a, b) => a.seq - b.seq);
  let prev = GENESIS_HASH;
  for (let i = 0; i < sorted.length; i++) {
    const entry = sorted[i]!;
    const expected = i + 1;
    if (!Number.isInteger(entry.seq) || entry.seq > expected) return broken(n, c, 'missing', expected);
    // Two documents at one seq: the chain forked (a forged insertion).
    if (entry.seq < expected) return broken(n, c, 'broken-link', entry.seq);
    const incidentId = options.incidentId ?? sorted[0]!.incidentId;
    const misplaced = entry.incidentId !== incidentId || (entry.id !== undefined && entry.id !== entryId(incidentId, entry.seq));
    if (misplaced || entryHash(entry) !== entry.hash) return broken(n, c, 'modified', entry.seq);
    if (entry.prevHash !== prev) return broken(n, c, 'broken-link', entry.seq);
    prev = entry.hash;
  }
  const bySeq = new Map(sorted.map((e) => [e.seq, e]));
  const ordered = [...checkpoints].sort((a, b) => a.seq - b.seq || a.at.localeCompare(b.at));
  const last = ordered[ordered.length - 1];
  if (last && last.seq > n) return broken(n, c, 'truncated', n + 1);
  const seen = new Set<string>();
  for (const checkpoint of ordered) {
    const entry = bySeq.get(checkpoint.seq);
    if (!entry || entry.hash !== checkpoint.hash || (options.incidentId && checkpoint.incidentId !== options.incidentId)) {
      return broken(n, c, 'checkpoint-mismatch', checkpoint.seq);
    }
    // Concurrent writers may both chain to one earlier checkpoint; a digest nobody wrote is a forgery.
    if (checkpoint.prevCheckpoint !== null && !seen.has(checkpoint.prevCheckpoint)) return broken(n, c, 'checkpoint-mismatch', checkpoint.seq);
    seen.add(checkpointDigest(checkpoint));
  }
  const head = sorted[n - 1];
  return { ok: true, entries: n, checkpoints: c, ...(head ? { head: { seq: head.seq, hash: head.hash } } : {}) };
}

/**
 * Whether the head needs a checkpoint now: a state change not yet checkpointed, or `every`
 * entries past the last checkpoint. Used after appends and by verify (the repair of a crash
 * between an entry and its checkpoint).
 */
export function checkpointDue(head: { seq: number; state?: string }, last: Pick<Checkpoint, 'seq' | 'state'> | undefined, every: number): boolean {
  if (head.seq === 0) return false;
  if (!last) return true;
  if (head.seq <= last.seq) return false;
  return head.seq - last.seq >= every || (head.state !== undefined && head.state !== last.state);
}
