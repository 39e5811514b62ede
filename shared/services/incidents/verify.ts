/**
 * Verifying incident records: one incident's chain against its checkpoints (finishing
 * first what a crash left unrecorded, and writing a checkpoint a crash missed — a
 * checkpoint lags, never leads, so this is never a false alarm), everything (incidents
 * in Cosmos DB, and every subject with checkpoint secrets — live or soft-deleted — so an
 * incident whose documents are gone is found), the ledger of closed incidents checked
 * against each incident's head (both ways), and the daily watch that opens a
 * `log-tampering` incident once per finding.
 *
 * Without `deletedSecrets/read` (Key Vault Reader) the soft-deleted checkpoint secrets
 * cannot be looked for: verify checks everything else and answers
 * `deletedCheckpoints: 'not-checked'` with the reason, instead of failing with a 403. A
 * deleted secret still shows itself when the repair's checkpoint write is refused.
 */
import { type Verification, verifyChain } from '../../domain/incidentChain';
import { type ChainHead, type CheckpointRecovery, type DeletedCheckpoints, checkpointRecovery, deletedCheckpointRecovery, ledgerMismatch, recordedHead } from '../../domain/incidentLedger';
import { isKeyturnError, notFound } from '../../errors';
import type { Logger, Versioned } from '../../ports';
import type { Incident } from '../../domain/incident';
import { LEDGER, flushRecord } from './records';
import type { IncidentService, IncidentServiceDeps } from './service';

export type Finding = Verification & { incidentId: string };

/** Soft-deleted checkpoint secrets could not be looked for (no `deletedSecrets/read`): the rest was verified. */
export interface NotChecked {
  deletedCheckpoints: 'not-checked';
  deletedCheckpointsReason: string;
}
export type VerifyAnswer = Verification & Partial<NotChecked>;

const NOT_CHECKED_REASON =
  "Key Vault refused reading deleted secrets (deletedSecrets/read): give Keyturn's identity Key Vault Reader on its vault (infra/modules/rbac.bicep); " +
  'a soft-deleted checkpoint secret (recover it with az keyvault secret recover) is not found until then';

/** Looks for soft-deleted checkpoints; without the right to, says so instead of failing. */
async function lookForDeleted<T>(look: () => Promise<T>): Promise<{ found?: T; notChecked?: NotChecked }> {
  try {
    return { found: await look() };
  } catch (e) {
    if (!isKeyturnError(e, 'ACCESS_DENIED')) throw e;
    return { notChecked: { deletedCheckpoints: 'not-checked', deletedCheckpointsReason: NOT_CHECKED_REASON } };
  }
}

/** The incident with its outbox finished (a checkpoint Key Vault refuses is left for the result to report). */
const finished = async (deps: IncidentServiceDeps, stored: Versioned<Incident> | undefined): Promise<Incident | undefined> =>
  stored && stored.doc.outbox.length > 0 ? (await flushRecord(deps, stored)).incident : stored?.doc;

/** `checkpoint-deleted`: from the deleted secret's facts, or from the recovery a refused checkpoint carried. */
const deletedFinding = (entries: number, d: DeletedCheckpoints | CheckpointRecovery): Verification => ({
  ok: false,
  entries,
  checkpoints: 0,
  reason: 'checkpoint-deleted',
  firstBrokenSeq: 1,
  recovery: 'how' in d ? d : checkpointRecovery(d),
});

const ledgerRef = (incidentId: string) => `closed:${incidentId}`;

export async function verifyIncident(deps: IncidentServiceDeps, subject: string): Promise<VerifyAnswer> {
  const stored = subject === LEDGER ? undefined : await deps.incidents.read(subject);
  const incident = await finished(deps, stored);
  const [entries, checkpoints] = await Promise.all([deps.entries.all(subject), deps.checkpoints.all(subject)]);
  // No checkpoint to be found: its secret may be soft-deleted (a deleted secret lists no versions).
  const { found: deleted, notChecked } = checkpoints.length === 0 ? await lookForDeleted(() => deps.checkpoints.deleted(subject)) : {};
  if (deleted) return deletedFinding(entries.length, deleted);
  const withNote = <T extends Verification>(v: T): T & Partial<NotChecked> => (notChecked ? { ...v, ...notChecked } : v);
  if (!stored && subject !== LEDGER && entries.length === 0 && checkpoints.length === 0) {
    // Nothing left but, perhaps, the ledger's record of its closure.
    const recorded = await deps.entries.byRef(LEDGER, ledgerRef(subject));
    if (!recorded) throw notFound(`Incident '${subject}'`, { incidentId: subject, ...(notChecked ?? {}) });
  }
  const result = verifyChain(entries, checkpoints, { incidentId: subject, ...(subject === LEDGER ? {} : { incidentExists: stored !== undefined }) });
  if (!result.ok || !result.head) {
    if (result.ok && subject !== LEDGER) return withNote((await ledgerFinding(deps, subject, null)) ?? result);
    return withNote(result);
  }
  // A closed incident's head is the ledger's, before any repair could checkpoint entries appended after the closure.
  const mismatch = subject === LEDGER ? undefined : await ledgerFinding(deps, subject, result.head);
  if (mismatch) return withNote({ ...mismatch, entries: result.entries, checkpoints: result.checkpoints });
  // Repair: the checkpoint a crash between an entry and its checkpoint did not write.
  const latest = [...checkpoints].sort((a, b) => b.seq - a.seq)[0];
  const state = subject === LEDGER ? latest?.state : incident?.state;
  let wrote: boolean;
  try {
    wrote = await deps.chain.checkpointIfDue(subject, state, latest ?? null);
  } catch (e) {
    // Key Vault refused the repair: the secret is soft-deleted after all (found without deletedSecrets/read).
    const recovery = deletedCheckpointRecovery(e);
    if (!recovery) throw e;
    return deletedFinding(result.entries, recovery);
  }
  // A checkpoint written means its secret is not deleted: nothing is left unchecked.
  if (wrote) return { ...result, checkpoints: result.checkpoints + 1 };
  return withNote(result);
}

/**
 * The ledger against the incident: a `ledger-mismatch` verification, or undefined. A
 * mismatch is looked at twice (the incident re-read, its outbox finished), so a close
 * running meanwhile is not reported.
 */
async function ledgerFinding(deps: IncidentServiceDeps, incidentId: string, head: ChainHead | null): Promise<Verification | undefined> {
  for (let look = 0; ; look++) {
    const incident = await finished(deps, await deps.incidents.read(incidentId));
    const entry = await deps.entries.byRef(LEDGER, ledgerRef(incidentId));
    const recorded = entry ? recordedHead(entry) : undefined;
    const found = ledgerMismatch(recorded, incident || head ? { closed: incident?.progress === 'closed', head } : undefined);
    if (!found || look > 0) {
      if (!found) return undefined;
      const { firstBrokenSeq, ...ledgerCheck } = found;
      return { ok: false, entries: 0, checkpoints: 0, reason: 'ledger-mismatch', firstBrokenSeq, ledgerCheck };
    }
    const now = await deps.chain.head(incidentId);
    head = now.seq > 0 ? now : null;
  }
}

export interface VerifyAllReport {
  ok: boolean;
  incidents: number;
  entries: number;
  checkpoints: number;
  ledger: Verification;
  failures: Finding[];
  /** Whether soft-deleted checkpoint secrets were looked for (not without `deletedSecrets/read`; the reason says so). */
  deletedCheckpoints: 'checked' | 'not-checked';
  deletedCheckpointsReason?: string;
  /** The first failure's, for the one-line answer. */
  incidentId?: string;
  reason?: Verification['reason'];
  firstBrokenSeq?: number;
}

export async function verifyAll(deps: IncidentServiceDeps): Promise<VerifyAllReport> {
  const deleted = await lookForDeleted(() => deps.checkpoints.deletedSubjects());
  const subjects = new Set([...(await deps.incidents.ids()), ...(await deps.checkpoints.subjects()), ...(deleted.found ?? [])]);
  subjects.delete(LEDGER);
  const failures: Finding[] = [];
  let entries = 0;
  let checkpoints = 0;
  for (const incidentId of [...subjects].sort()) {
    const { deletedCheckpoints: _n, deletedCheckpointsReason: _r, ...r } = await verifyIncident(deps, incidentId);
    void _n; void _r; // said once, for the whole report
    entries += r.entries;
    checkpoints += r.checkpoints;
    if (!r.ok) failures.push({ incidentId, ...r });
  }
  const { deletedCheckpoints: _n, deletedCheckpointsReason: _r, ...ledger } = await verifyIncident(deps, LEDGER);
  void _n; void _r;
  if (!ledger.ok) failures.push({ incidentId: LEDGER, ...ledger });
  // The other direction: the ledger records a closure of an incident found nowhere else.
  for (const entry of await deps.entries.all(LEDGER)) {
    const recorded = recordedHead(entry);
    if (!recorded || subjects.has(recorded.incidentId)) continue;
    subjects.add(recorded.incidentId);
    const r = await ledgerFinding(deps, recorded.incidentId, null);
    if (r) failures.push({ incidentId: recorded.incidentId, ...r });
  }
  const first = failures[0];
  return {
    ok: failures.length === 0,
    incidents: subjects.size,
    entries: entries + ledger.entries,
    checkpoints: checkpoints + ledger.checkpoints,
    ledger,
    failures,
    deletedCheckpoints: deleted.notChecked ? 'not-checked' : 'checked',
    ...(deleted.notChecked ? { deletedCheckpointsReason: deleted.notChecked.deletedCheckpointsReason } : {}),
    ...(first ? { incidentId: first.incidentId, reason: first.reason, firstBrokenSeq: first.firstBrokenSeq } : {}),
  };
}

/** The daily watch: verify everything; each finding opens one `log-tampering` incident (recorded in its own chain). */
export async function watchRecords(deps: IncidentServiceDeps, service: IncidentService, log: Logger): Promise<VerifyAllReport & { opened: string[] }> {
  const report = await verifyAll(deps);
  if (report.deletedCheckpoints === 'not-checked') log.warn('Incident watch: soft-deleted checkpoint secrets were not looked for', { reason: report.deletedCheckpointsReason });
  const opened: string[] = [];
  for (const f of report.failures) {
    const { incident, opened: isNew } = await service.openSystem(
      {
        type: 'log-tampering',
        severity: 'P1',
        description: `The record of ${f.incidentId === LEDGER ? 'the incident ledger' : `incident ${f.incidentId}`} failed verification: ${f.reason} at seq ${f.firstBrokenSeq}`,
        scope: {},
        details: { subject: f.incidentId, reason: f.reason!, ...(f.firstBrokenSeq !== undefined ? { firstBrokenSeq: f.firstBrokenSeq } : {}) },
      },
      `${f.incidentId}\n${f.reason}\n${f.firstBrokenSeq}`,
    );
    if (isNew) {
      opened.push(incident.incidentId);
      log.error('Incident record failed verification: log-tampering incident opened', { subject: f.incidentId, reason: f.reason, firstBrokenSeq: f.firstBrokenSeq, incidentId: incident.incidentId });
    }
  }
  return { ...report, opened };
}
