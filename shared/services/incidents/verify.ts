/**
 * Verifying incident records: one incident's chain against its checkpoints (finishing
 * first what a crash left unrecorded, and writing a checkpoint a crash missed — a
 * checkpoint lags, never leads, so this is never a false alarm), everything (incidents
 * in Cosmos DB, and every subject with checkpoint secrets — live or soft-deleted — so an
 * incident whose documents are gone is found), the ledger of closed incidents checked
 * against each incident's head (both ways), and the daily watch that opens a
 * `log-tampering` incident once per finding.
 */
import { type Verification, verifyChain } from '../../domain/incidentChain';
import { type ChainHead, checkpointRecovery, ledgerMismatch, recordedHead } from '../../domain/incidentLedger';
import { notFound } from '../../errors';
import type { Logger } from '../../ports';
import { LEDGER, flushOutbox } from './records';
import type { IncidentService, IncidentServiceDeps } from './service';

export type Finding = Verification & { incidentId: string };

const ledgerRef = (incidentId: string) => `closed:${incidentId}`;

export async function verifyIncident(deps: IncidentServiceDeps, subject: string): Promise<Verification> {
  const stored = subject === LEDGER ? undefined : await deps.incidents.read(subject);
  let incident = stored?.doc;
  if (stored && incident!.outbox.length > 0) incident = await flushOutbox(deps, stored);
  const [entries, checkpoints] = await Promise.all([deps.entries.all(subject), deps.checkpoints.all(subject)]);
  // No checkpoint to be found: its secret may be soft-deleted (a deleted secret lists no versions).
  const deleted = checkpoints.length === 0 ? await deps.checkpoints.deleted(subject) : undefined;
  if (deleted) return { ok: false, entries: entries.length, checkpoints: 0, reason: 'checkpoint-deleted', firstBrokenSeq: 1, recovery: checkpointRecovery(deleted) };
  if (!stored && subject !== LEDGER && entries.length === 0 && checkpoints.length === 0) {
    // Nothing left but, perhaps, the ledger's record of its closure.
    const recorded = await deps.entries.byRef(LEDGER, ledgerRef(subject));
    if (!recorded) throw notFound(`Incident '${subject}'`, { incidentId: subject });
  }
  const result = verifyChain(entries, checkpoints, { incidentId: subject, ...(subject === LEDGER ? {} : { incidentExists: stored !== undefined }) });
  if (!result.ok || !result.head) {
    if (result.ok && subject !== LEDGER) return (await ledgerFinding(deps, subject, null)) ?? result;
    return result;
  }
  // A closed incident's head is the ledger's, before any repair could checkpoint entries appended after the closure.
  const mismatch = subject === LEDGER ? undefined : await ledgerFinding(deps, subject, result.head);
  if (mismatch) return { ...mismatch, entries: result.entries, checkpoints: result.checkpoints };
  // Repair: the checkpoint a crash between an entry and its checkpoint did not write.
  const latest = [...checkpoints].sort((a, b) => b.seq - a.seq)[0];
  const state = subject === LEDGER ? latest?.state : incident?.state;
  const wrote = await deps.chain.checkpointIfDue(subject, state, latest);
  return wrote ? { ...result, checkpoints: result.checkpoints + 1 } : result;
}

/**
 * The ledger against the incident: a `ledger-mismatch` verification, or undefined. A
 * mismatch is looked at twice (the incident re-read, its outbox finished), so a close
 * running meanwhile is not reported.
 */
async function ledgerFinding(deps: IncidentServiceDeps, incidentId: string, head: ChainHead | null): Promise<Verification | undefined> {
  for (let look = 0; ; look++) {
    const stored = await deps.incidents.read(incidentId);
    const incident = stored && stored.doc.outbox.length > 0 ? await flushOutbox(deps, stored) : stored?.doc;
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
  /** The first failure's, for the one-line answer. */
  incidentId?: string;
  reason?: Verification['reason'];
  firstBrokenSeq?: number;
}

export async function verifyAll(deps: IncidentServiceDeps): Promise<VerifyAllReport> {
  const subjects = new Set([...(await deps.incidents.ids()), ...(await deps.checkpoints.subjects()), ...(await deps.checkpoints.deletedSubjects())]);
  subjects.delete(LEDGER);
  const failures: Finding[] = [];
  let entries = 0;
  let checkpoints = 0;
  for (const incidentId of [...subjects].sort()) {
    const r = await verifyIncident(deps, incidentId);
    entries += r.entries;
    checkpoints += r.checkpoints;
    if (!r.ok) failures.push({ incidentId, ...r });
  }
  const ledger = await verifyIncident(deps, LEDGER);
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
    ...(first ? { incidentId: first.incidentId, reason: first.reason, firstBrokenSeq: first.firstBrokenSeq } : {}),
  };
}

/** The daily watch: verify everything; each finding opens one `log-tampering` incident (recorded in its own chain). */
export async function watchRecords(deps: IncidentServiceDeps, service: IncidentService, log: Logger): Promise<VerifyAllReport & { opened: string[] }> {
  const report = await verifyAll(deps);
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
