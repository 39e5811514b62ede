/**
 * The incident record's operations: open (scope checked first, then the incident, its
 * run and its opening entry), list, read with timeline/tasks/metrics, notes, tasks and
 * close. Every change goes through `changeIncident` (ETag + outbox), so its entries and
 * notifications follow exactly once.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type Actor,
  DETAILS_SCHEMAS,
  type Incident,
  type IncidentScope,
  type IncidentState,
  type IncidentType,
  type OpenIncidentRequest,
  type Severity,
  REQUESTABLE_TYPES,
  SYSTEM,
  addNote,
  addTask,
  approveIncident,
  awaitApproval,
  closeIncident,
  incidentClosed,
  incidentMetrics,
  incidentView,
  newIncident,
  updateTask,
} from '../../domain/incident';
import { AWAITING_APPROVAL, newIncidentJob, planFor, playbookPlan, reactivateIncidentJob } from '../../domain/incidentPlaybook';
import { approvalRefusal } from '../../domain/dualControl';
import { type PlannedStep, type PlaybookContext, type PlaybookType, changeCount, needsSecondApprover, planPlaybook } from '../../domain/playbooks';
import { ConcurrencyConflict, KeyturnError, ValidationError, describeError, notFound } from '../../errors';
import type { Clock, Logger } from '../../ports';
import { type Answer, type IdempotencyDeps, oncePerKey } from '../idempotency';
import { isInjectedCrash, type StepRunner } from '../jobs/runner';
import { type RunDeps, incidentRunKind } from './job';
import type { CheckpointStore, EntryStore } from './ports';
import { changeIncident, flushOutbox } from './records';
import { resolveScope } from './scope';
import { type PlaybookInventory, affectedSnapshot } from '../playbooks/snapshot';

/** What planning a playbook reads (issue 15); absent, an incident runs only the built-in steps. */
export interface PlaybookPlanning {
  inventory: PlaybookInventory;
  /** The protected principals and the key policy in force now. */
  context(): Promise<PlaybookContext>;
  /** A plan changing more keys than this needs a second approver (as does `all: true`). */
  approvalThreshold: number;
}

export interface IncidentServiceDeps extends RunDeps {
  entries: EntryStore;
  checkpoints: CheckpointStore;
  clock: Clock;
  runner: StepRunner;
  idempotency: Omit<IdempotencyDeps, 'log'>;
  log: Logger;
  newId?: () => string;
  playbooks?: PlaybookPlanning;
}

/** Who is asking, as the HTTP edge resolved it. */
export interface Caller {
  actor: Actor;
  claimedBy: string | null;
  /** The caller's verified identity for dual control (throws when none can be had); asked only when a run needs approval. */
  identity?: () => string;
}

export class IncidentService {
  constructor(private readonly deps: IncidentServiceDeps) {}

  /** POST /api/incidents: 202 `{incidentId, incident}`; with an Idempotency-Key, the same answer for the same request. */
  async open(request: OpenIncidentRequest, caller: Caller, idempotencyKey?: string): Promise<Answer & { replayed: boolean }> {
    const run = async (): Promise<Answer> => {
      const incident = await this.openIncident({ ...request, details: request.details ?? {} }, caller);
      return { status: 202, body: { incidentId: incident.incidentId, incident: incidentView(incident) } };
    };
    if (!idempotencyKey) return { ...(await run()), replayed: false };
    return oncePerKey({ ...this.deps.idempotency, log: this.deps.log }, 'incidents', idempotencyKey, { request, caller }, run);
  }

  /** Keyturn's own incidents (log-tampering, access-lost): one per `key` (a finding), whoever asks how often. */
  async openSystem(input: { type: IncidentType; severity: Severity; description: string; scope: IncidentScope; details: Record<string, unknown> }, key: string): Promise<{ incident: Incident; opened: boolean }> {
    const incidentId = `${input.type}-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
    const existing = await this.deps.incidents.read(incidentId);
    if (existing) return { incident: existing.doc, opened: false };
    return { incident: await this.openIncident(input, { actor: SYSTEM, claimedBy: null }, incidentId, true), opened: true };
  }

  /**
   * Another door into breach response (the emergency signing rollover, a BYOK tenant's
   * access lost): opens — or attaches to — Keyturn's incident for `key` and records what
   * the door did, once (a retried door appends nothing twice).
   */
  async recordDoor(
    input: { type: IncidentType; severity: Severity; description: string; scope: IncidentScope; details: Record<string, unknown> },
    key: string,
    entry: { event: string; evidence: Record<string, unknown> },
  ): Promise<{ incidentId: string; opened: boolean }> {
    let { incident, opened } = await this.openSystem(input, key);
    // A closed incident's record is final (the ledger holds its head): a door after the closure opens a follow-up.
    if (incident.progress === 'closed') ({ incident, opened } = await this.openSystem(input, `${key}\nafter-close:${incident.closedAt ?? ''}`));
    await this.deps.chain.appendOnce(incident.incidentId, `door:${key}:${entry.event}`, { event: entry.event, actor: SYSTEM, claimedBy: null, evidence: entry.evidence }, { state: incident.state });
    return { incidentId: incident.incidentId, opened };
  }

  private async openIncident(
    input: { type: IncidentType; severity: Severity; description: string; scope: IncidentScope; details: Record<string, unknown> },
    caller: Caller,
    incidentId = (this.deps.newId ?? randomUUID)(),
    system = false,
  ): Promise<Incident> {
    const details = DETAILS_SCHEMAS[input.type].safeParse(input.details);
    if (!details.success) {
      const issue = details.error.issues[0];
      const field = ['details', ...(issue?.path.map(String) ?? [])].join('.');
      throw new ValidationError(field, `${field}: ${issue?.message ?? 'invalid'} (for type ${input.type})`);
    }
    // Before anything is recorded: ids that exist nowhere are a 400 listing them.
    const { adminContacts } = system ? { adminContacts: [] } : await resolveScope(this.deps.lookups, input.scope);
    // The playbook is planned once, here: a plan it cannot run is a 400 before anything is recorded.
    const playbook = system ? undefined : await this.plan(input.type, details.data as Record<string, unknown>, input.scope);
    const approval = playbook && needsSecondApprover(playbook, input.scope.all === true, this.deps.playbooks!.approvalThreshold);
    const requestedBy = approval ? requesterOf(caller) : undefined;
    const now = await this.deps.clock.now();
    let incident = newIncident({ incidentId, ...input, details: details.data as Record<string, unknown>, adminContacts }, caller.actor, caller.claimedBy, now);
    if (requestedBy !== undefined) incident = awaitApproval(incident, requestedBy, changeCount(playbook!));
    const created = await this.deps.incidents.createOnly(incident);
    const stored = await this.deps.incidents.read(incidentId);
    if (!stored) throw notFound(`Incident '${incidentId}'`, { incidentId });
    if (!created) return stored.doc; // a duplicate system open: the first one stands
    const plan = playbook ? playbookPlan(playbook) : planFor(incident);
    await this.deps.jobs.createOnly(newIncidentJob(incidentId, plan, now, { ...(playbook ? { playbook } : {}), awaitingApproval: requestedBy !== undefined }));
    await flushOutbox(this.deps, stored);
    await this.kick(incidentId);
    return (await this.deps.incidents.read(incidentId))!.doc;
  }

  /** The playbook's steps for a requestable type, over the scope's snapshot now. */
  private async plan(type: IncidentType, details: Record<string, unknown>, scope: IncidentScope): Promise<PlannedStep[] | undefined> {
    const planning = this.deps.playbooks;
    if (!planning || !(REQUESTABLE_TYPES as readonly string[]).includes(type)) return undefined;
    const snapshot = await affectedSnapshot(planning.inventory, scope);
    return planPlaybook(type as PlaybookType, details, snapshot, await planning.context());
  }

  /** POST /api/incidents/{id}/approve: a second identity lets a fleet-wide run start. */
  async approve(incidentId: string, caller: Caller & { identity: () => string }) {
    const stored = await this.deps.incidents.read(incidentId);
    if (!stored) throw notFound(`Incident '${incidentId}'`, { incidentId });
    const approval = stored.doc.approval;
    if (!approval) throw new KeyturnError('INCIDENT_TRANSITION_FORBIDDEN', `Incident ${incidentId} needs no approval`, { incidentId, state: stored.doc.state, to: 'approved' });
    const approvedBy = caller.identity();
    const now = await this.deps.clock.now();
    if (!approval.approvedBy) {
      const refusal = approvalRefusal({ requestedBy: approval.requestedBy, requestedAt: approval.requestedAt }, { approvedBy }, now, { minWaitMs: 0 });
      if (refusal) throw refusal;
    }
    await changeIncident(this.deps, incidentId, (i) => approveIncident(i, approvedBy, caller.actor, caller.claimedBy, now));
    await this.reactivate(incidentId, [AWAITING_APPROVAL]);
    await this.kick(incidentId);
    return this.get(incidentId);
  }

  /** POST /api/incidents/{id}/resume: a run that ended `failed` continues at its failed step (nothing done is repeated). */
  async resume(incidentId: string) {
    const stored = await this.deps.incidents.read(incidentId);
    if (!stored) throw notFound(`Incident '${incidentId}'`, { incidentId });
    if (stored.doc.progress === 'closed') throw incidentClosed(incidentId);
    const job = await this.deps.jobs.read(incidentId);
    if (!job || job.doc.status === AWAITING_APPROVAL) {
      throw new KeyturnError('INCIDENT_NOT_RESUMABLE', `Incident ${incidentId}'s run ${job ? 'waits for a second approver' : 'does not exist'}`, { incidentId, status: job?.doc.status ?? null });
    }
    await this.reactivate(incidentId, ['failed']);
    await this.kick(incidentId);
    return this.get(incidentId);
  }

  private async reactivate(incidentId: string, from: string[]): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const job = await this.deps.jobs.read(incidentId);
      if (!job || !from.includes(job.doc.status)) return;
      try {
        await this.deps.jobs.replace(reactivateIncidentJob(job.doc, await this.deps.clock.now()), job.etag);
        await this.deps.chain.appendOnce(incidentId, `run:reactivated:${job.doc.status}:${job.doc.updatedAt}`, { event: 'run-continued', actor: SYSTEM, claimedBy: null, evidence: { from: job.doc.status, step: job.doc.step } });
        return;
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      }
    }
  }

  /** Runs the incident's steps now; what does not finish here the resume timer continues. */
  async kick(incidentId: string): Promise<void> {
    try {
      await this.deps.runner.advance(incidentRunKind(this.deps), incidentId);
    } catch (e) {
      if (isInjectedCrash(e)) throw e;
      this.deps.log.warn('Incident run did not finish now; the resume timer continues it', { incidentId, error: describeError(e) });
    }
  }

  async list(filter: { state?: IncidentState; type?: IncidentType }, page: { maxItems: number; continuation?: string }) {
    const continuation = page.continuation === undefined ? undefined : openToken(page.continuation);
    const result = await this.deps.incidents.list(filter, { maxItems: page.maxItems, ...(continuation ? { continuation } : {}) });
    return { incidents: result.items.map(incidentView), ...(result.continuation ? { continuationToken: sealToken(result.continuation) } : {}) };
  }

  /** The incident, its timeline (oldest first), tasks and metrics. */
  async get(incidentId: string) {
    const stored = await this.deps.incidents.read(incidentId);
    if (!stored) throw notFound(`Incident '${incidentId}'`, { incidentId });
    const timeline = (await this.deps.entries.all(incidentId)).sort((a, b) => a.seq - b.seq).map(({ id, ...entry }) => (void id, entry));
    const incident = stored.doc;
    return { incident: incidentView(incident), timeline, tasks: incident.tasks, metrics: incidentMetrics(incident) };
  }

  /**
   * POST …/entries: a human note, 201 with the entry as chained (the evidence is the
   * caller's; never put secret values in it). It goes through the incident's ETag and
   * outbox like every change, so it is never appended after a close; with an
   * `Idempotency-Key`, the same note again answers the same entry.
   */
  async note(incidentId: string, input: { event: string; evidence: Record<string, unknown> }, caller: Caller, idempotencyKey?: string): Promise<Answer & { replayed: boolean }> {
    const run = async (): Promise<Answer> => {
      const now = await this.deps.clock.now();
      let ref = '';
      // Many notes may race on one incident: more rounds than other changes.
      await changeIncident(this.deps, incidentId, (i) => {
        const added = addNote(i, input, caller.actor, caller.claimedBy, now);
        ref = added.ref;
        return added.incident;
      }, { tries: NOTE_TRIES });
      const entry = await this.deps.entries.byRef(incidentId, ref);
      if (!entry) throw new Error(`incident ${incidentId}: note ${ref} is not on the chain after its flush`);
      const { id, ...view } = entry;
      void id;
      return { status: 201, body: { entry: view } };
    };
    if (!idempotencyKey) return { ...(await run()), replayed: false };
    return oncePerKey({ ...this.deps.idempotency, log: this.deps.log }, 'incident-notes', idempotencyKey, { incidentId, input, caller }, run);
  }

  async addTask(incidentId: string, input: { title: string; assignee?: string }, caller: Caller) {
    const now = await this.deps.clock.now();
    let taskId = '';
    const incident = await changeIncident(this.deps, incidentId, (i) => {
      const added = addTask(i, input, caller.actor, caller.claimedBy, now);
      taskId = added.task.taskId;
      return added.incident;
    });
    return { task: incident.tasks.find((t) => t.taskId === taskId)!, incident: incidentView(incident) };
  }

  async updateTask(incidentId: string, taskId: string, input: { state: 'open' | 'done'; note: string; finding?: string }, caller: Caller) {
    const now = await this.deps.clock.now();
    const incident = await changeIncident(this.deps, incidentId, (i) => updateTask(i, taskId, input, caller.actor, caller.claimedBy, now));
    return { task: incident.tasks.find((t) => t.taskId === taskId)!, incident: incidentView(incident) };
  }

  async close(incidentId: string, resolution: string, caller: Caller) {
    const now = await this.deps.clock.now();
    const incident = await changeIncident(this.deps, incidentId, (i) => closeIncident(i, resolution, caller.actor, caller.claimedBy, now));
    return { incident: incidentView(incident) };
  }
}

const NOTE_TRIES = 64;

/** Who asks for a fleet-wide run: a verified identity (the edge's resolver), or the request is refused. */
function requesterOf(caller: Caller): string {
  if (!caller.identity) throw new KeyturnError('DUAL_CONTROL_UNAVAILABLE', 'A fleet-wide playbook needs a verified requester identity', {});
  return caller.identity();
}

/**
 * The listing's continuation token: Cosmos DB's own, with a check, so a token that was
 * changed is a 400 (the local server would quietly answer an empty page).
 */
const tokenCheck = (payload: string) => createHash('sha256').update(`keyturn-incidents:${payload}`).digest('base64url').slice(0, 16);
const sealToken = (continuation: string): string => {
  const payload = Buffer.from(continuation, 'utf8').toString('base64url');
  return `${payload}.${tokenCheck(payload)}`;
};
function openToken(token: string): string {
  const [payload, sum, ...rest] = token.split('.');
  if (!payload || !sum || rest.length > 0 || tokenCheck(payload) !== sum) {
    throw new ValidationError('query.continuationToken', 'query.continuationToken: not a token this listing issued');
  }
  return Buffer.from(payload, 'base64url').toString('utf8');
}
