/**
 * Breach incidents (pure): types, the scope an incident names, the per-type details,
 * the state machine and the metrics. The record itself (entries, hash chain,
 * checkpoints) is in `incidentChain.ts`; the automatic steps in `incidentPlaybook.ts`.
 *
 * State: `progress` walks open → running → contained → resolved → closed; the shown
 * `state` is `awaiting-action` while a blocking human task is open (and the incident is
 * not closed), else the progress. So a task never loses where the incident stood. An
 * advisory task (a root-cause analysis) stays listed as open without holding the state.
 */
import { z } from 'zod';
import { KeyturnError } from '../errors';
import { requesterSchema } from './signingKeys';
import { lazySchema } from './lazySchema';

/** Types a caller may open; Keyturn itself also opens `log-tampering` and `access-lost`. */
export const REQUESTABLE_TYPES = ['key-leaked', 'unauthorized-use', 'hsm-vulnerability', 'algorithm-weakness'] as const;
export const INCIDENT_TYPES = [...REQUESTABLE_TYPES, 'log-tampering', 'access-lost'] as const;
export type IncidentType = (typeof INCIDENT_TYPES)[number];

export const SEVERITIES = ['P1', 'P2', 'P3', 'P4'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const PROGRESS = ['open', 'running', 'contained', 'resolved', 'closed'] as const;
export type Progress = (typeof PROGRESS)[number];
export const INCIDENT_STATES = ['open', 'awaiting-approval', 'running', 'awaiting-action', 'contained', 'resolved', 'closed'] as const;
export type IncidentState = (typeof INCIDENT_STATES)[number];

/** Ids: lower-case letters, digits and dashes (they also name a Key Vault secret). */
export const incidentIdSchema = lazySchema(() => z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: 'expected an incident id' }));
export const taskIdSchema = lazySchema(() => z.string().regex(/^t[0-9]{1,4}$/, { error: 'expected a task id (t1, t2, …)' }));

const id = lazySchema(() => z.string().trim().min(1).max(200).regex(/^[^\p{C}]+$/u, { error: 'must be printable text' }));
const list = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(100).optional();

/** What an incident names as affected. Ids that exist nowhere are refused before anything is recorded. */
export const scopeSchema = lazySchema(() => z
  .strictObject({
    tenants: list(z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, { error: 'expected a tenant id' })),
    /** Tenant key versions by kid (the Key Vault key id URL). */
    tenantKeys: list(z.string().url().max(500)),
    signingKeys: list(id),
    /** `vault/name`: a managed credential. */
    credentials: list(z.string().regex(/^[0-9a-zA-Z-]{1,127}\/[0-9a-zA-Z-]{1,127}$/, { error: 'expected vault/name' })),
    keySets: list(id),
    keySetKeys: list(z.strictObject({ set: id, keyId: id })),
    /** Object ids or names, taken as given (Keyturn cannot read the directory). */
    principals: list(id),
    vaults: list(z.string().regex(/^[0-9a-zA-Z-]{1,127}$/, { error: 'expected a vault name' })),
    all: z.literal(true).optional(),
  })
  .refine((s) => Object.values(s).some((v) => v !== undefined), { error: 'name at least one affected resource (or all: true)' }));
export type IncidentScope = z.infer<typeof scopeSchema>;
export const SCOPE_KINDS = ['tenants', 'tenantKeys', 'signingKeys', 'credentials', 'keySets', 'keySetKeys', 'principals', 'vaults'] as const;
export type ScopeKind = (typeof SCOPE_KINDS)[number];

const policySchema = lazySchema(() => z
  .strictObject({ rsaMinBits: z.union([z.literal(2048), z.literal(3072), z.literal(4096)]).optional(), forbiddenAlgorithms: z.array(z.string().min(1).max(40)).max(20).optional() })
  .refine((p) => p.rsaMinBits !== undefined || p.forbiddenAlgorithms !== undefined, { error: 'name rsaMinBits or forbiddenAlgorithms' }));

/** Type-specific fields, validated per type. */
export const DETAILS_SCHEMAS: Record<IncidentType, z.ZodType> = lazySchema(() => ({
  'key-leaked': z.strictObject({ exposed: z.string().trim().min(1).max(500).optional() }),
  'unauthorized-use': z.strictObject({ observed: z.string().trim().min(1).max(500).optional() }),
  'hsm-vulnerability': z.strictObject({ advisory: z.string().trim().min(1).max(500), exposed: z.boolean() }),
  'algorithm-weakness': z.strictObject({ policy: policySchema }),
  'log-tampering': z.strictObject({ subject: z.string(), reason: z.string(), firstBrokenSeq: z.number().int().optional() }),
  'access-lost': z.strictObject({ tenantId: z.string().optional(), vault: z.string().optional() }),
}));

/** Who wrote an entry: a verified principal, a function key (unverified caller), or Keyturn itself. */
export type Actor = { kind: 'principal'; id: string; name?: string } | { kind: 'function-key' } | { kind: 'system' };
export const SYSTEM: Actor = { kind: 'system' };

/** `reportedBy` as typed by a caller: recorded as `claimedBy`, never trusted; `system` is Keyturn's alone. */
export const claimedBySchema = lazySchema(() => requesterSchema.refine((v) => v.toLowerCase() !== 'system', { error: "'system' is reserved for Keyturn's own steps" }));

export const openIncidentSchema = lazySchema(() => z.strictObject({
  type: z.enum(REQUESTABLE_TYPES),
  scope: scopeSchema,
  description: z.string().trim().min(1).max(2000),
  severity: z.enum(SEVERITIES).default('P2'),
  reportedBy: claimedBySchema.optional(),
  details: z.record(z.string(), z.unknown()).optional(),
}));
export type OpenIncidentRequest = z.infer<typeof openIncidentSchema>;

export const TASK_STATES = ['open', 'done'] as const;
export interface Task {
  taskId: string;
  title: string;
  assignee?: string;
  state: (typeof TASK_STATES)[number];
  openedAt: string;
  doneAt?: string;
  note?: string;
  finding?: string;
  /**
   * Blocking: containment waits for it (shown `awaiting-action` while open). Advisory
   * (false): listed as open, the incident moves on. Absent on tasks stored before the
   * flag existed: blocking, as they were then.
   */
  blocking: boolean;
}

/** Whether an open task holds the incident in `awaiting-action`. */
export const blocksIncident = (t: Pick<Task, 'state' | 'blocking'>): boolean => t.state === 'open' && t.blocking !== false;

/** A change of the incident whose entries (and notification) are not yet on the chain: the outbox. */
export interface PendingEntry {
  /** Unique within the incident: the entry carries it as `evidence.ref`, so a retry appends it once. */
  ref: string;
  event: string;
  actor: Actor;
  claimedBy: string | null;
  evidence: Record<string, unknown>;
  /** A notification to publish once the entry is on the chain. */
  notify?: { eventType: string; id: string };
  /** A state change: a checkpoint follows the entry. */
  stateChange?: boolean;
}

export interface Incident {
  /** Equals `incidentId` (one document per incident, in its own partition). */
  id: string;
  incidentId: string;
  type: IncidentType;
  severity: Severity;
  description: string;
  scope: IncidentScope;
  details: Record<string, unknown>;
  progress: Progress;
  state: IncidentState;
  tasks: Task[];
  openedAt: string;
  runningAt?: string;
  containedAt?: string;
  resolvedAt?: string;
  closedAt?: string;
  resolution?: string;
  openedBy: Actor;
  claimedBy: string | null;
  /** The affected tenants' admin contacts, for notifications. */
  adminContacts: string[];
  /** A fleet-wide playbook (issue 15): it runs once a second identity approved. */
  approval?: { requestedBy: string; requestedAt: string; approvedBy?: string; approvedAt?: string };
  /** Bumped on every change; outbox refs carry it. */
  revision: number;
  outbox: PendingEntry[];
  updatedAt: string;
}

export const shownState = (progress: Progress, tasks: Task[], approval?: Incident['approval']): IncidentState =>
  progress === 'open' && approval && !approval.approvedBy
    ? 'awaiting-approval'
    : progress !== 'closed' && tasks.some(blocksIncident)
      ? 'awaiting-action'
      : progress;

/** Allowed progress moves; `contained → running` lets a resumed playbook run more steps. */
const MOVES: Record<Progress, Progress[]> = {
  open: ['running', 'contained'],
  running: ['contained', 'resolved'],
  contained: ['running', 'resolved', 'closed'],
  resolved: ['closed'],
  closed: [],
};

export const transitionForbidden = (incident: Pick<Incident, 'incidentId' | 'state'>, to: string) =>
  new KeyturnError('INCIDENT_TRANSITION_FORBIDDEN', `Incident ${incident.incidentId} cannot go from ${incident.state} to ${to}`, {
    incidentId: incident.incidentId,
    state: incident.state,
    to,
  });

export const incidentClosed = (incidentId: string) => new KeyturnError('INCIDENT_CLOSED', `Incident ${incidentId} is closed: its record takes no more changes`, { incidentId });

const NOTIFY_ON: Partial<Record<IncidentState, string>> = { contained: 'Keyturn.IncidentContained', resolved: 'Keyturn.IncidentResolved', closed: 'Keyturn.IncidentClosed' };

/** The incident after `change`, with its outbox entries (a state-changed entry when the shown state moved). */
function changed(before: Incident, after: Incident, entries: Omit<PendingEntry, 'ref'>[], actor: Actor, claimedBy: string | null, at: string): Incident {
  const revision = before.revision + 1;
  const state = shownState(after.progress, after.tasks, after.approval);
  const pending: Omit<PendingEntry, 'ref'>[] = [...entries];
  if (state !== before.state) {
    const eventType = NOTIFY_ON[state];
    pending.push({
      event: 'state-changed',
      actor,
      claimedBy,
      evidence: { from: before.state, to: state },
      stateChange: true,
      ...(eventType ? { notify: { eventType, id: `${before.incidentId}:${eventType}` } } : {}),
    });
  }
  const outbox = [...before.outbox, ...pending.map((p, i) => ({ ...p, ref: `r${revision}.${i}` }))];
  return { ...after, state, revision, outbox, updatedAt: at };
}

/** Moves the progress forward (or contained → running); the same progress again is a no-op. */
export function advanceProgress(incident: Incident, to: Progress, actor: Actor, now: Date, extra: { resolution?: string; claimedBy?: string | null } = {}): Incident {
  if (incident.progress === to) return incident;
  if (incident.progress === 'closed') throw incidentClosed(incident.incidentId);
  if (!MOVES[incident.progress].includes(to)) throw transitionForbidden(incident, to);
  const at = now.toISOString();
  const stamp = { running: 'runningAt', contained: 'containedAt', resolved: 'resolvedAt', closed: 'closedAt' } as const;
  const after: Incident = { ...incident, progress: to };
  if (to !== 'open') after[stamp[to]] ??= at;
  // A resolve reached without a separate containment still counts as contained then.
  if ((to === 'resolved' || to === 'closed') && !after.containedAt) after.containedAt = at;
  if (extra.resolution) after.resolution = extra.resolution;
  return changed(incident, after, [], actor, extra.claimedBy ?? null, at);
}

/** Close: from `resolved`, or from `contained` with every task done; otherwise 409 INCIDENT_NOT_CLOSABLE. */
export function closeIncident(incident: Incident, resolution: string, actor: Actor, claimedBy: string | null, now: Date): Incident {
  if (incident.progress === 'closed') throw incidentClosed(incident.incidentId);
  const openTasks = incident.tasks.filter((t) => t.state === 'open').map((t) => t.taskId);
  const closable = incident.progress === 'resolved' || (incident.progress === 'contained' && openTasks.length === 0);
  if (!closable) {
    throw new KeyturnError('INCIDENT_NOT_CLOSABLE', `Incident ${incident.incidentId} can be closed once resolved, or contained with every task done (it is ${incident.state})`, {
      incidentId: incident.incidentId,
      state: incident.state,
      openTasks,
    });
  }
  const closed = advanceProgress(incident, 'closed', actor, now, { resolution, claimedBy });
  // The resolution goes on the chain with the state change.
  return { ...closed, outbox: closed.outbox.map((p) => (p.stateChange && p.evidence.to === 'closed' ? { ...p, evidence: { ...p.evidence, resolution } } : p)) };
}

/** A task, blocking unless `blocking: false` (advisory: listed, but the incident moves on). */
export function addTask(incident: Incident, input: { title: string; assignee?: string; blocking?: boolean }, actor: Actor, claimedBy: string | null, now: Date): { incident: Incident; task: Task } {
  if (incident.progress === 'closed') throw incidentClosed(incident.incidentId);
  const at = now.toISOString();
  const task: Task = { taskId: `t${incident.tasks.length + 1}`, title: input.title, state: 'open', openedAt: at, ...(input.assignee ? { assignee: input.assignee } : {}), blocking: input.blocking ?? true };
  const after = { ...incident, tasks: [...incident.tasks, task] };
  const eventType = 'Keyturn.IncidentTaskOpened';
  const entry = { event: 'task-opened', actor, claimedBy, evidence: { taskId: task.taskId, title: task.title, assignee: task.assignee ?? null, blocking: task.blocking }, notify: { eventType, id: `${incident.incidentId}:${eventType}:${task.taskId}` } };
  return { incident: changed(incident, after, [entry], actor, claimedBy, at), task };
}

export function updateTask(
  incident: Incident,
  taskId: string,
  input: { state: Task['state']; note: string; finding?: string },
  actor: Actor,
  claimedBy: string | null,
  now: Date,
): Incident {
  if (incident.progress === 'closed') throw incidentClosed(incident.incidentId);
  const task = incident.tasks.find((t) => t.taskId === taskId);
  if (!task) throw new KeyturnError('NOT_FOUND', `Task ${taskId} of incident ${incident.incidentId} was not found`, { incidentId: incident.incidentId, taskId });
  const at = now.toISOString();
  const next: Task = { ...task, state: input.state, note: input.note, ...(input.finding ? { finding: input.finding } : {}) };
  if (input.state === 'done') next.doneAt = task.doneAt ?? at;
  else delete next.doneAt;
  const after = { ...incident, tasks: incident.tasks.map((t) => (t.taskId === taskId ? next : t)) };
  const entry = { event: 'task-updated', actor, claimedBy, evidence: { taskId, from: task.state, to: input.state, note: input.note, finding: input.finding ?? null } };
  return changed(incident, after, [entry], actor, claimedBy, at);
}

/**
 * A human note: an outbox entry under the incident's ETag like every other change, so a
 * note racing a close either lands before the closing entry (and is in the head the
 * ledger records) or is refused (409 INCIDENT_CLOSED) — never after it.
 */
export function addNote(incident: Incident, input: { event: string; evidence: Record<string, unknown> }, actor: Actor, claimedBy: string | null, now: Date): { incident: Incident; ref: string } {
  if (incident.progress === 'closed') throw incidentClosed(incident.incidentId);
  const next = changed(incident, incident, [{ event: input.event, actor, claimedBy, evidence: input.evidence }], actor, claimedBy, now.toISOString());
  return { incident: next, ref: next.outbox[next.outbox.length - 1]!.ref };
}

/** A fleet-wide playbook waits for a second identity: the request is recorded (issue 15). */
export function awaitApproval(incident: Incident, requestedBy: string, plannedChanges: number): Incident {
  const at = incident.openedAt;
  const after: Incident = { ...incident, approval: { requestedBy, requestedAt: at } };
  const entry = { event: 'approval-requested', actor: SYSTEM, claimedBy: null, evidence: { requestedBy, plannedChanges } };
  return changed(incident, after, [entry], SYSTEM, null, at);
}

/** The second identity's approval (the caller checked it with `approvalRefusal`); a repeat is a no-op. */
export function approveIncident(incident: Incident, approvedBy: string, actor: Actor, claimedBy: string | null, now: Date): Incident {
  if (incident.progress === 'closed') throw incidentClosed(incident.incidentId);
  if (!incident.approval) throw transitionForbidden(incident, 'approved');
  if (incident.approval.approvedBy) return incident;
  const at = now.toISOString();
  const after: Incident = { ...incident, approval: { ...incident.approval, approvedBy, approvedAt: at } };
  return changed(incident, after, [{ event: 'approved', actor, claimedBy, evidence: { requestedBy: incident.approval.requestedBy, approvedBy } }], actor, claimedBy, at);
}

/** The outbox without the entries now on the chain. */
export const withoutPending = (incident: Incident, refs: string[]): Incident => ({ ...incident, outbox: incident.outbox.filter((p) => !refs.includes(p.ref)) });

export function newIncident(
  input: { incidentId: string; type: IncidentType; severity: Severity; description: string; scope: IncidentScope; details: Record<string, unknown>; adminContacts: string[] },
  actor: Actor,
  claimedBy: string | null,
  now: Date,
): Incident {
  const at = now.toISOString();
  const eventType = 'Keyturn.IncidentOpened';
  return {
    id: input.incidentId,
    ...input,
    progress: 'open',
    state: 'open',
    tasks: [],
    openedAt: at,
    openedBy: actor,
    claimedBy,
    revision: 0,
    outbox: [
      {
        ref: 'r0.0',
        event: 'incident-opened',
        actor,
        claimedBy,
        evidence: { type: input.type, severity: input.severity, description: input.description, scope: input.scope, details: input.details },
        notify: { eventType, id: `${input.incidentId}:${eventType}` },
        stateChange: true,
      },
    ],
    updatedAt: at,
  };
}

export interface IncidentMetrics {
  timeToContainMs?: number;
  timeToResolveMs?: number;
  /** Named resources per scope kind (`all: true` counts as `all`). */
  affected: Partial<Record<ScopeKind | 'all', number>>;
}

export function incidentMetrics(incident: Pick<Incident, 'openedAt' | 'containedAt' | 'resolvedAt' | 'scope'>): IncidentMetrics {
  const since = (at?: string) => (at ? Date.parse(at) - Date.parse(incident.openedAt) : undefined);
  const affected: IncidentMetrics['affected'] = {};
  for (const kind of SCOPE_KINDS) {
    const named = incident.scope[kind];
    if (named) affected[kind] = named.length;
  }
  if (incident.scope.all) affected.all = 1;
  const contain = since(incident.containedAt);
  const resolve = since(incident.resolvedAt);
  return { ...(contain !== undefined ? { timeToContainMs: contain } : {}), ...(resolve !== undefined ? { timeToResolveMs: resolve } : {}), affected };
}

/** What the API shows (the outbox is internal). */
export function incidentView(incident: Incident) {
  const { outbox, id, revision, ...view } = incident;
  void outbox; void id; void revision;
  return view;
}

/**
 * The entry's `actor` from the HTTP edge: App Service authentication's principal id (and
 * name) when the platform is trusted to set them (KEYTURN_TRUST_EASY_AUTH_HEADER), else
 * `function-key` (the caller held a key; who it is, nobody vouched for). Never `system`.
 */
export function actorOf(headers: { principalId?: string | null; principalName?: string | null }, trustEasyAuthHeader: boolean): Actor {
  if (!trustEasyAuthHeader) return { kind: 'function-key' };
  const id = requesterSchema.safeParse(headers.principalId ?? undefined);
  if (!id.success) return { kind: 'function-key' };
  const name = requesterSchema.safeParse(headers.principalName ?? undefined);
  return { kind: 'principal', id: id.data, ...(name.success ? { name: name.data } : {}) };
}

export const noteSchema = lazySchema(() => z.strictObject({
  event: z.string().trim().min(1).max(200).regex(/^[^\p{C}]+$/u, { error: 'must be printable text' }),
  // `ref` is Keyturn's: the chain finds an outbox entry (a task, a state change, a step) by it, so a note must not carry one.
  evidence: z.record(z.string(), z.unknown()).refine((e) => !Object.hasOwn(e, 'ref'), { error: "'ref' is reserved for Keyturn's own entries", path: ['ref'] }).default({}),
  reportedBy: claimedBySchema.optional(),
}));
export const taskSchema = lazySchema(() => z.strictObject({
  title: z.string().trim().min(1).max(500),
  assignee: requesterSchema.optional(),
  /** Default true; false: an advisory task (listed while open, the incident is not held in awaiting-action). */
  blocking: z.boolean().optional(),
  reportedBy: claimedBySchema.optional(),
}));
export const taskUpdateSchema = lazySchema(() => z.strictObject({
  state: z.enum(TASK_STATES),
  note: z.string().trim().min(1).max(2000),
  finding: z.string().trim().min(1).max(2000).optional(),
  reportedBy: claimedBySchema.optional(),
}));
export const closeSchema = lazySchema(() => z.strictObject({ resolution: z.string().trim().min(1).max(2000), reportedBy: claimedBySchema.optional() }));
export const listQuerySchema = lazySchema(() => z.strictObject({
  state: z.enum(INCIDENT_STATES).optional(),
  type: z.enum(INCIDENT_TYPES).optional(),
  top: z.coerce.number().int().min(1).max(200).default(50),
  continuationToken: z.string().min(1).max(4000).optional(),
}));
