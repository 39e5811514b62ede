/**
 * Changes to an incident document and their entries: the change and its pending
 * entries (the outbox) are written together under the ETag; the entries are then
 * appended once each (by their `ref`), the head checkpointed when due, the
 * notifications published (deterministic ids), the closed incident chained into the
 * ledger, and the outbox cleared. A crash anywhere leaves the outbox for the next
 * change, step or verify to finish: nothing recorded is lost, nothing appended twice.
 *
 * A checkpoint Key Vault refuses because its secret is soft-deleted (CHECKPOINT_DELETED)
 * does not stop the rest: the entries are on the chain, the notifications and the ledger
 * follow, the outbox is cleared, and only then the error is thrown (409 naming the
 * secret). The checkpoint lags — as after a crash — and the first change or verify after
 * the secret is recovered writes it (`checkpointDue` compares the head with the last one).
 */
import { type Incident, withoutPending } from '../../domain/incident';
import { deletedCheckpointRecovery } from '../../domain/incidentLedger';
import { ConcurrencyConflict, KeyturnError, describeError, notFound } from '../../errors';
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
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Reads, applies `fn` (pure; may throw a 409) and writes under the ETag, re-deciding on a
 * lost race; then flushes. `tries`: more for writes many callers make at once (notes),
 * with a short random pause between rounds so racing writers spread out.
 */
export async function changeIncident(d: RecordDeps, incidentId: string, fn: (incident: Incident) => Incident, options: { tries?: number } = {}): Promise<Incident> {
  const tries = options.tries ?? TRIES;
  for (let attempt = 0; attempt < tries; attempt++) {
    if (attempt >= TRIES) await sleep(Math.floor(Math.random() * 25));
    const stored = await d.incidents.read(incidentId);
    if (!stored) throw notFound(`Incident '${incidentId}'`, { incidentId });
    const next = fn(stored.doc);
    if (next === stored.doc) return flushOutbox(d, stored);
    let written: Versioned<Incident>;
    try {
      written = await d.incidents.replace(next, stored.etag);
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
      continue;
    }
    // Only the write is retried: `fn` is never applied twice to a change that landed.
    return flushOutbox(d, written);
  }
  throw new ConcurrencyConflict('changed', incidentId);
}

/** Appends the outbox's entries (each once), checkpoints, notifies, chains a close into the ledger, clears the outbox; then throws a refused checkpoint. */
export async function flushOutbox(d: RecordDeps, stored: Versioned<Incident>): Promise<Incident> {
  const { incident, refused } = await flushRecord(d, stored);
  if (refused) throw Object.assign(new KeyturnError(refused.code, refused.message, { ...refused.details, recorded: true }), { cause: refused });
  return incident;
}

/** As `flushOutbox`, answering a refused checkpoint (CHECKPOINT_DELETED) instead of throwing it (verify). */
export async function flushRecord(d: RecordDeps, stored: Versioned<Incident>): Promise<{ incident: Incident; refused?: KeyturnError }> {
  const incident = stored.doc;
  if (incident.outbox.length === 0) return { incident };
  const { incidentId } = incident;
  for (const p of incident.outbox) {
    await d.chain.appendOnce(incidentId, p.ref, { event: p.event, actor: p.actor, claimedBy: p.claimedBy, evidence: p.evidence }, { checkpoint: false });
  }
  let refused = await checkpointRefusal(() => d.chain.checkpointIfDue(incidentId, incident.state));
  const unpublished = new Set<string>();
  for (const p of incident.outbox) {
    if (p.notify && !(await publish(d, incident, p.notify))) unpublished.add(p.ref);
  }
  if (incident.state === 'closed') {
    const head = await d.chain.head(incidentId);
    await d.chain.appendOnce(LEDGER, `closed:${incidentId}`, { event: 'incident-closed', actor: { kind: 'system' }, claimedBy: null, evidence: { incidentId, seq: head.seq, hash: head.hash } }, { checkpoint: false });
    // Every closure is a state change of the ledger: always checkpointed.
    refused = (await checkpointRefusal(() => d.chain.checkpointIfDue(LEDGER, `closed:${incidentId}`))) ?? refused;
  }
  const refs = incident.outbox.map((p) => p.ref).filter((ref) => !unpublished.has(ref));
  let current: Versioned<Incident> | undefined = stored;
  for (let attempt = 0; attempt < TRIES && current; attempt++) {
    try {
      return { incident: (await d.incidents.replace(withoutPending(current.doc, refs), current.etag)).doc, ...(refused ? { refused } : {}) };
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
      current = await d.incidents.read(incidentId);
    }
  }
  return { incident: withoutPending(current?.doc ?? incident, refs), ...(refused ? { refused } : {}) };
}

/** Runs a checkpoint write; a soft-deleted checkpoint secret is answered, anything else thrown. */
async function checkpointRefusal(write: () => Promise<unknown>): Promise<KeyturnError | undefined> {
  try {
    await write();
    return undefined;
  } catch (e) {
    if (deletedCheckpointRecovery(e) && e instanceof KeyturnError) return e;
    throw e;
  }
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
