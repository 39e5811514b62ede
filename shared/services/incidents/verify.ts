/**
 * Verifying incident records: one incident's chain against its checkpoints (finishing
 * first what a crash left unrecorded, and writing a checkpoint a crash missed — a
 * checkpoint lags, never leads, so this is never a false alarm), everything (incidents
 * in Cosmos DB, and every subject with checkpoint secrets, so an incident whose
 * documents are gone is found), the ledger of closed incidents, and the daily watch
 * that opens a `log-tampering` incident once per finding.
 */
import { type Verification, verifyChain } from '../../domain/incidentChain';
import { notFound } from '../../errors';
import type { Logger } from '../../ports';
import { LEDGER, flushOutbox } from './records';
import type { IncidentService, IncidentServiceDeps } from './service';

export type Finding = Verification & { incidentId: string };

export async function verifyIncident(deps: IncidentServiceDeps, subject: string): Promise<Verification> {
  const stored = subject === LEDGER ? undefined : await deps.incidents.read(subject);
  let incident = stored?.doc;
  if (stored && incident!.outbox.length > 0) incident = await flushOutbox(deps, stored);
  const [entries, checkpoints] = await Promise.all([deps.entries.all(subject), deps.checkpoints.all(subject)]);
  if (!stored && subject !== LEDGER && entries.length === 0 && checkpoints.length === 0) throw notFound(`Incident '${subject}'`, { incidentId: subject });
  const result = verifyChain(entries, checkpoints, { incidentId: subject, ...(subject === LEDGER ? {} : { incidentExists: stored !== undefined }) });
  if (!result.ok || !result.head) return result;
  // Repair: the checkpoint a crash between an entry and its checkpoint did not write.
  const latest = [...checkpoints].sort((a, b) => b.seq - a.seq)[0];
  const state = subject === LEDGER ? latest?.state : incident?.state;
  const wrote = await deps.chain.checkpointIfDue(subject, state, latest);
  return wrote ? { ...result, checkpoints: result.checkpoints + 1 } : result;
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
  const subjects = new Set([...(await deps.incidents.ids()), ...(await deps.checkpoints.subjects())]);
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
