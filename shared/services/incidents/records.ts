/**
 * Changes to an incident document and their entries: the change and its pending
 * entries (the outbox) are written together under the ETag; the entries are then
 * appended once each (by their `ref`), the head checkpointed when due, the
 * notifications published (deterministic ids), the closed incident chained into the
 * ledger, and the outbox cleared. A crash anywhere leaves the outbox for the next
 * change, step or verify to finish: nothing recorded is lost, nothing appended twice.
 */
import { type Incident, withoutPending } from '../../domain/incident';
import { ConcurrencyConflict, describeError, notFound } from '../../errors';
import type { Logger, Notifier, Versioned } from '../../ports';
import type { IncidentLog } from './log';
import type { IncidentStore } from './ports';

/** The subject of the ledger of closed incidents (its own chain and checkpoints). */
export const LEDGER = 'ledger';

export interface RecordDeps {
  incidents: IncidentStore;
  chain: IncidentLog;
  notifier: Notifier;
  log: Logger;
}

const TRIES = 8;

/** Reads, applies `fn` (pure; may throw a 409) and writes under the ETag, re-deciding on a lost race; then flushes. */
export async function changeIncident(d: RecordDeps, incidentId: string, fn: (incident: Incident) => Incident): Promise<Incident> {
  for (let attempt = 0; attempt < TRIES; attempt++) {
    const stored = await d.incidents.read(incidentId);
    if (!stored) throw notFound(`Incident '${incidentId}'`, { incidentId });
    const next = fn(stored.doc);
    if (next === stored.doc) return flushOutbox(d, stored);
    try {
      return await flushOutbox(d, await d.incidents.replace(next, stored.etag));
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  throw new ConcurrencyConflict('changed', incidentId);
}

/** Appends the outbox's entries (each once), checkpoints, notifies, chains a close into the ledger, clears the outbox. */
export async function flushOutbox(d: RecordDeps, stored: Versioned<Incident>): Promise<Incident> {
  const incident = stored.doc;
  if (incident.outbox.length === 0) return incident;
  const { incidentId } = incident;
  for (const p of incident.outbox) {
    await d.chain.appendOnce(incidentId, p.ref, { event: p.event, actor: p.actor, claimedBy: p.claimedBy, evidence: p.evidence }, { checkpoint: false });
  }
  await d.chain.checkpointIfDue(incidentId, incident.state);
  const unpublished = new Set<string>();
  for (const p of incident.outbox) {
    if (p.notify && !(await publish(d, incident, p.notify))) unpublished.add(p.ref);
  }
  if (incident.state === 'closed') {
    const head = await d.chain.head(incidentId);
    await d.chain.appendOnce(LEDGER, `closed:${incidentId}`, { event: 'incident-closed', actor: { kind: 'system' }, claimedBy: null, evidence: { incidentId, seq: head.seq, hash: head.hash } }, { checkpoint: false });
    // Every closure is a state change of the ledger: always checkpointed.
    await d.chain.checkpointIfDue(LEDGER, `closed:${incidentId}`);
  }
  const refs = incident.outbox.map((p) => p.ref).filter((ref) => !unpublished.has(ref));
  let current: Versioned<Incident> | undefined = stored;
  for (let attempt = 0; attempt < TRIES && current; attempt++) {
    try {
      return (await d.incidents.replace(withoutPending(current.doc, refs), current.etag)).doc;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
      current = await d.incidents.read(incidentId);
    }
  }
  return withoutPending(current?.doc ?? incident, refs);
}

/** At least once, with a deterministic id (subscribers drop duplicates); a failed publish is retried with the outbox. */
async function publish(d: RecordDeps, incident: Incident, notify: { eventType: string; id: string }): Promise<boolean> {
  const taskId = /:(t\d+)$/.exec(notify.id)?.[1];
  try {
    await d.notifier.publish({
      id: notify.id,
      eventType: notify.eventType,
      subject: `incidents/${incident.incidentId}`,
      data: {
        incidentId: incident.incidentId,
        type: incident.type,
        severity: incident.severity,
        state: incident.state,
        scope: incident.scope,
        adminContacts: incident.adminContacts,
        ...(taskId ? { taskId } : {}),
      },
    });
    return true;
  } catch (e) {
    d.log.warn('Incident notification not published; it is retried with the next change or verify', { incidentId: incident.incidentId, eventType: notify.eventType, error: describeError(e) });
    return false;
  }
}
