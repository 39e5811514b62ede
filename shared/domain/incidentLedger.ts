/**
 * Cross-checks between the ledger of closed incidents and each incident's own chain, and
 * the recovery of a soft-deleted checkpoint secret (pure). The ledger (subject `ledger`)
 * records, at each closure, the closed incident's head `{seq, hash}` (an `incident-closed`
 * entry); a closed incident takes no more entries, so its chain's head must be that one.
 * Both directions are checked: a closed incident the ledger does not record, and a ledger
 * record whose incident is not closed, is gone, or has another head.
 */
import { KeyturnError, isKeyturnError } from '../errors';

export interface ChainHead {
  seq: number;
  hash: string;
}

export type LedgerMismatchKind = 'not-in-ledger' | 'head-differs' | 'not-closed' | 'not-found';

export interface LedgerCheck {
  /** What is wrong: closed but not recorded; recorded with another head; recorded but not closed; recorded but nowhere. */
  mismatch: LedgerMismatchKind;
  /** The head the ledger recorded at the closure (null: none recorded). */
  recorded: ChainHead | null;
  /** The incident's chain head now (null: no entries). */
  actual: ChainHead | null;
}

/** The head an `incident-closed` ledger entry recorded, or undefined when the entry is not one. */
export function recordedHead(entry: { event: string; evidence: Record<string, unknown> }): (ChainHead & { incidentId: string }) | undefined {
  const { incidentId, seq, hash } = entry.evidence;
  if (entry.event !== 'incident-closed' || typeof incidentId !== 'string' || typeof seq !== 'number' || typeof hash !== 'string') return undefined;
  return { incidentId, seq, hash };
}

/**
 * The ledger check of one incident: `recorded` is the ledger's record of its closure (if
 * any), `incident` what the incident shows now (undefined: its document and entries are
 * gone). Undefined when they agree. `firstBrokenSeq` is the incident's first seq the
 * ledger does not vouch for.
 */
export function ledgerMismatch(
  recorded: ChainHead | undefined,
  incident: { closed: boolean; head: ChainHead | null } | undefined,
): (LedgerCheck & { firstBrokenSeq: number }) | undefined {
  const rec = recorded ?? null;
  if (!incident) return rec ? { mismatch: 'not-found', recorded: rec, actual: null, firstBrokenSeq: 1 } : undefined;
  const { closed, head } = incident;
  if (!rec) return closed ? { mismatch: 'not-in-ledger', recorded: null, actual: head, firstBrokenSeq: head?.seq ?? 1 } : undefined;
  if (!closed) return { mismatch: 'not-closed', recorded: rec, actual: head, firstBrokenSeq: rec.seq };
  if (head && head.seq === rec.seq && head.hash === rec.hash) return undefined;
  // Entries after the closure (or a chain shorter than at the closure): the first seq past the shorter of the two.
  const firstBrokenSeq = !head ? 1 : head.seq === rec.seq ? rec.seq : Math.min(head.seq, rec.seq) + 1;
  return { mismatch: 'head-differs', recorded: rec, actual: head, firstBrokenSeq };
}

/** A soft-deleted checkpoint secret, as Key Vault reports it (no value). */
export interface DeletedCheckpoints {
  vaultUrl: string;
  secretName: string;
  recoveryId?: string;
  deletedOn?: string;
  scheduledPurgeDate?: string;
}

export interface CheckpointRecovery extends DeletedCheckpoints {
  /** What to do: recover the secret (purge protection keeps it until `scheduledPurgeDate`), then verify again. */
  how: string;
}

const vaultNameOf = (vaultUrl: string) => new URL(vaultUrl).hostname.split('.')[0];

export function checkpointRecovery(d: DeletedCheckpoints): CheckpointRecovery {
  const vaultName = vaultNameOf(d.vaultUrl);
  return {
    ...d,
    how:
      `The checkpoint secret ${d.secretName} is soft-deleted: recover it (az keyvault secret recover --vault-name ${vaultName} --name ${d.secretName}, ` +
      `or SecretClient.beginRecoverDeletedSecret; needs secrets/recover/action) before ${d.scheduledPurgeDate ?? 'its scheduled purge date'}, then verify again. ` +
      'Until then the incident cannot be checked against its checkpoints, and its next checkpoint write is refused.',
  };
}

/**
 * Key Vault refused a checkpoint (409): its secret is soft-deleted. The problem names the
 * secret and the command; `recovery` is what verify reports for `checkpoint-deleted`.
 */
export function checkpointDeleted(subject: string, d: DeletedCheckpoints): KeyturnError {
  return new KeyturnError(
    'CHECKPOINT_DELETED',
    `The checkpoint secret ${d.secretName} of ${subject} is soft-deleted: Key Vault refuses new checkpoints until it is recovered ` +
      `(az keyvault secret recover --vault-name ${vaultNameOf(d.vaultUrl)} --name ${d.secretName})`,
    { subject, secretName: d.secretName, recovery: checkpointRecovery(d) },
  );
}

/** The recovery a CHECKPOINT_DELETED error carries, or undefined for any other error. */
export const deletedCheckpointRecovery = (e: unknown): CheckpointRecovery | undefined =>
  isKeyturnError(e, 'CHECKPOINT_DELETED') ? (e.details.recovery as CheckpointRecovery) : undefined;
