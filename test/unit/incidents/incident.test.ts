/** The incident state machine, tasks, close rules, request schemas and metrics (pure). */
import {
  DETAILS_SCHEMAS,
  SYSTEM,
  addTask,
  advanceProgress,
  closeIncident,
  incidentMetrics,
  newIncident,
  openIncidentSchema,
  shownState,
  type Task,
  updateTask,
} from '../../../shared/domain/incident';
import { planFor } from '../../../shared/domain/incidentPlaybook';
import { isKeyturnError } from '../../../shared/errors';

const T0 = new Date('2030-01-01T00:00:00Z');
const later = (s: number) => new Date(T0.getTime() + s * 1000);
const KEY = { kind: 'function-key' } as const;
const fresh = () =>
  newIncident({ incidentId: 'i1', type: 'key-leaked', severity: 'P2', description: 'd', scope: { tenants: ['a', 'b'], vaults: ['local'] }, details: {}, adminContacts: [] }, KEY, 'alice', T0);

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return isKeyturnError(e) ? e.code : String(e);
  }
  return 'no error';
};

describe('states', () => {
  test('a new incident is open, with its opening entry in the outbox', () => {
    const i = fresh();
    expect(i.state).toBe('open');
    expect(i.outbox).toEqual([expect.objectContaining({ ref: 'r0.0', event: 'incident-opened', stateChange: true, notify: { eventType: 'Keyturn.IncidentOpened', id: 'i1:Keyturn.IncidentOpened' } })]);
  });

  test('open → running → contained → resolved → closed, each a state-changed entry; contained and resolved notify', () => {
    let i = advanceProgress(fresh(), 'running', SYSTEM, later(1));
    i = advanceProgress(i, 'contained', SYSTEM, later(2));
    i = advanceProgress(i, 'resolved', SYSTEM, later(3));
    i = closeIncident(i, 'rekeyed', KEY, null, later(4));
    expect(i.state).toBe('closed');
    const changes = i.outbox.filter((p) => p.event === 'state-changed');
    expect(changes.map((p) => p.evidence.to)).toEqual(['running', 'contained', 'resolved', 'closed']);
    expect(changes.map((p) => p.notify?.eventType)).toEqual([undefined, 'Keyturn.IncidentContained', 'Keyturn.IncidentResolved', 'Keyturn.IncidentClosed']);
    expect(new Set(i.outbox.map((p) => p.ref)).size).toBe(i.outbox.length);
    expect(changes[3]!.evidence.resolution).toBe('rekeyed');
  });

  test('forbidden moves are 409s with stable codes; the same progress again is a no-op', () => {
    const resolved = advanceProgress(advanceProgress(fresh(), 'running', SYSTEM, T0), 'resolved', SYSTEM, T0);
    expect(codeOf(() => advanceProgress(resolved, 'running', SYSTEM, T0))).toBe('INCIDENT_TRANSITION_FORBIDDEN');
    expect(advanceProgress(resolved, 'resolved', SYSTEM, T0)).toBe(resolved);
    const closed = closeIncident(resolved, 'x', KEY, null, T0);
    expect(codeOf(() => advanceProgress(closed, 'running', SYSTEM, T0))).toBe('INCIDENT_CLOSED');
    expect(codeOf(() => addTask(closed, { title: 't' }, KEY, null, T0))).toBe('INCIDENT_CLOSED');
  });

  test('an open task shows awaiting-action and keeps the progress; done returns to it', () => {
    const contained = advanceProgress(fresh(), 'contained', SYSTEM, T0);
    const { incident: waiting, task } = addTask(contained, { title: 'find the root cause', assignee: 'bob' }, KEY, 'alice', later(1));
    expect(task.taskId).toBe('t1');
    expect(waiting).toMatchObject({ state: 'awaiting-action', progress: 'contained' });
    expect(waiting.outbox.map((p) => p.event)).toEqual(['incident-opened', 'state-changed', 'task-opened', 'state-changed']);
    expect(waiting.outbox.find((p) => p.event === 'task-opened')!.notify).toEqual({ eventType: 'Keyturn.IncidentTaskOpened', id: 'i1:Keyturn.IncidentTaskOpened:t1' });
    expect(codeOf(() => closeIncident(waiting, 'x', KEY, null, T0))).toBe('INCIDENT_NOT_CLOSABLE');
    const done = updateTask(waiting, 't1', { state: 'done', note: 'n', finding: 'a leaked CI log' }, KEY, null, later(2));
    expect(done.state).toBe('contained');
    expect(done.tasks[0]).toMatchObject({ state: 'done', finding: 'a leaked CI log' });
    expect(closeIncident(done, 'x', KEY, null, T0).state).toBe('closed');
    expect(codeOf(() => updateTask(done, 't9', { state: 'done', note: 'n' }, KEY, null, T0))).toBe('NOT_FOUND');
  });

  test('an advisory task is listed open but does not hold the state; a blocking one still does', () => {
    const contained = advanceProgress(fresh(), 'contained', SYSTEM, T0);
    const { incident: advisory, task } = addTask(contained, { title: 'root-cause analysis', blocking: false }, KEY, null, later(1));
    expect(task).toMatchObject({ state: 'open', blocking: false });
    expect(advisory).toMatchObject({ state: 'contained', progress: 'contained' });
    expect(advisory.outbox.map((p) => p.event)).toEqual(['incident-opened', 'state-changed', 'task-opened']);
    expect(advisory.outbox.at(-1)!.evidence).toMatchObject({ taskId: 't1', blocking: false });
    // Close still wants every task done (from contained).
    expect(codeOf(() => closeIncident(advisory, 'x', KEY, null, T0))).toBe('INCIDENT_NOT_CLOSABLE');
    const { incident: both } = addTask(advisory, { title: 'customer rekey' }, KEY, null, later(2));
    expect(both.state).toBe('awaiting-action');
    expect(updateTask(both, 't2', { state: 'done', note: 'n' }, KEY, null, later(3)).state).toBe('contained');
    // A task stored before the flag existed blocks, as it did then.
    const legacy = JSON.parse('{"taskId":"t1","title":"old","state":"open","openedAt":"2030-01-01T00:00:00.000Z"}') as Task;
    expect(shownState('contained', [legacy])).toBe('awaiting-action');
  });

  test('close from open or running is refused', () => {
    expect(codeOf(() => closeIncident(fresh(), 'x', KEY, null, T0))).toBe('INCIDENT_NOT_CLOSABLE');
  });
});

describe('requests', () => {
  const base = { type: 'key-leaked', scope: { tenants: ['contoso'] }, description: 'found in a log' };
  test('severity defaults to P2; an empty scope, an unknown kind or reportedBy "system" are refused', () => {
    expect(openIncidentSchema.parse(base).severity).toBe('P2');
    expect(openIncidentSchema.safeParse({ ...base, scope: {} }).success).toBe(false);
    expect(openIncidentSchema.safeParse({ ...base, scope: { widgets: ['x'] } }).success).toBe(false);
    expect(openIncidentSchema.safeParse({ ...base, reportedBy: 'System' }).success).toBe(false);
    expect(openIncidentSchema.safeParse({ ...base, type: 'log-tampering' }).success).toBe(false);
    expect(openIncidentSchema.safeParse({ ...base, scope: { credentials: ['no-slash'] } }).success).toBe(false);
  });
  test('details are validated per type', () => {
    expect(DETAILS_SCHEMAS['hsm-vulnerability'].safeParse({ advisory: 'CVE-1', exposed: true }).success).toBe(true);
    expect(DETAILS_SCHEMAS['hsm-vulnerability'].safeParse({ advisory: 'CVE-1' }).success).toBe(false);
    expect(DETAILS_SCHEMAS['algorithm-weakness'].safeParse({ policy: { rsaMinBits: 3072 } }).success).toBe(true);
    expect(DETAILS_SCHEMAS['algorithm-weakness'].safeParse({ policy: {} }).success).toBe(false);
    expect(DETAILS_SCHEMAS['key-leaked'].safeParse({ other: 1 }).success).toBe(false);
  });
});

describe('metrics and plans', () => {
  test('time to contain and resolve, affected by kind', () => {
    let i = advanceProgress(fresh(), 'contained', SYSTEM, later(60));
    i = advanceProgress(i, 'resolved', SYSTEM, later(600));
    expect(incidentMetrics(i)).toEqual({ timeToContainMs: 60_000, timeToResolveMs: 600_000, affected: { tenants: 2, vaults: 1 } });
  });
  test('every plan starts with the scope snapshot and ends with contain', () => {
    expect(planFor(fresh())).toEqual(['snapshot-scope', 'contain']);
    expect(planFor(fresh(), { ...Object.fromEntries(['key-leaked', 'unauthorized-use', 'hsm-vulnerability', 'algorithm-weakness', 'log-tampering', 'access-lost'].map((t) => [t, []])), 'key-leaked': ['rekey'] } as never)).toEqual([
      'snapshot-scope',
      'rekey',
      'contain',
    ]);
  });
});
