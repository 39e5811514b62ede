/**
 * The incident service with in-memory ports (Cosmos DB and Key Vault are replaced by
 * maps here; the integration test runs the real ones): notifications with deterministic
 * ids and the affected tenants' admin contacts, close rules over HTTP-less calls, the
 * ledger of closed incidents, and a notification that failed being retried.
 */
import { ConcurrencyConflict } from '../../../shared/errors';
import type { Incident } from '../../../shared/domain/incident';
import type { Checkpoint, EntryDoc } from '../../../shared/domain/incidentChain';
import type { IncidentJob } from '../../../shared/domain/incidentPlaybook';
import { noFaults } from '../../../shared/ports';
import { IncidentLog } from '../../../shared/services/incidents/log';
import { IncidentService, type IncidentServiceDeps } from '../../../shared/services/incidents/service';
import { verifyAll, verifyIncident } from '../../../shared/services/incidents/verify';
import { StepRunner } from '../../../shared/services/jobs/runner';

const quiet = { info() {}, warn() {}, error() {} };

function versioned<T extends { id: string }>() {
  const docs = new Map<string, { doc: T; etag: string }>();
  let n = 0;
  return {
    docs,
    read: async (id: string) => docs.get(id),
    createOnly: async (doc: T) => (docs.has(doc.id) ? false : (docs.set(doc.id, { doc, etag: String(++n) }), true)),
    create: async (doc: T) => {
      if (docs.has(doc.id)) throw new ConcurrencyConflict('exists', doc.id);
      const v = { doc, etag: String(++n) };
      docs.set(doc.id, v);
      return v;
    },
    replace: async (doc: T, etag: string) => {
      if (docs.get(doc.id)?.etag !== etag) throw new ConcurrencyConflict('changed', doc.id);
      const v = { doc, etag: String(++n) };
      docs.set(doc.id, v);
      return v;
    },
  };
}

function setup(options: { failPublishes?: number } = {}) {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const clock = { now: async () => new Date((now += 1000)) };
  const incidents = versioned<Incident>();
  const jobs = versioned<IncidentJob>();
  const idem = versioned<{ id: string; fingerprint: string; expiresAt: string }>();
  const entryDocs = new Map<string, EntryDoc>();
  const cps = new Map<string, Checkpoint[]>();
  const published: { id?: string; eventType: string; data: Record<string, unknown> }[] = [];
  let failures = options.failPublishes ?? 0;
  const entries = {
    read: async (s: string, seq: number) => entryDocs.get(`${s}:${seq}`),
    createOnly: async (e: EntryDoc) => (entryDocs.has(e.id) ? false : (entryDocs.set(e.id, e), true)),
    all: async (s: string) => [...entryDocs.values()].filter((e) => e.incidentId === s),
    byRef: async (s: string, ref: string) => [...entryDocs.values()].find((e) => e.incidentId === s && e.evidence.ref === ref),
  };
  const checkpoints = {
    latest: async (s: string) => cps.get(s)?.at(-1),
    all: async (s: string) => cps.get(s) ?? [],
    append: async (c: Checkpoint) => void cps.set(c.incidentId, [...(cps.get(c.incidentId) ?? []), c]),
    subjects: async () => [...cps.keys()],
  };
  const deps: IncidentServiceDeps = {
    incidents: { ...incidents, list: async () => ({ items: [...incidents.docs.values()].map((v) => v.doc) }), ids: async () => [...incidents.docs.keys()] },
    entries,
    checkpoints,
    jobs: { ...jobs, due: async () => [] },
    lookups: {
      tenants: async (ids) => (ids ?? ['contoso']).filter((id) => id === 'contoso').map((tenantId) => ({ tenantId, topology: 'service-managed', state: 'active', adminContacts: ['admin@contoso.example'], versions: [] })),
      tenantsByKid: async () => [],
      signingKeys: async () => [],
      credential: async () => undefined,
      vaults: () => ['local'],
    },
    chain: new IncidentLog({ entries, checkpoints, clock, faults: noFaults, log: quiet, checkpointEvery: 10 }),
    notifier: {
      publish: async (e) => {
        if (failures-- > 0) throw new Error('Event Grid is down');
        published.push(e);
      },
    },
    clock,
    log: quiet,
    leaseMs: 60_000,
    maxAttempts: 3,
    runner: new StepRunner({ clock, faults: noFaults, log: quiet, owner: 'test' }),
    idempotency: { store: idem as never, clock, leaseMs: 60_000 },
  };
  let ids = 0;
  return { service: new IncidentService({ ...deps, newId: () => `i${++ids}` }), deps, published, incidents };
}

const caller = { actor: { kind: 'function-key' as const }, claimedBy: 'alice' };
const request = { type: 'key-leaked' as const, scope: { tenants: ['contoso'] }, description: 'leaked', severity: 'P2' as const };

test('notifications carry deterministic ids and the affected tenants’ admin contacts', async () => {
  const { service, published } = setup();
  await service.open(request, caller);
  await service.addTask('i1', { title: 'root cause' }, caller);
  await service.updateTask('i1', 't1', { state: 'done', note: 'found' }, caller);
  await service.close('i1', 'rekeyed', caller);
  expect(published.map((e) => [e.id, e.eventType])).toEqual([
    ['i1:Keyturn.IncidentOpened', 'Keyturn.IncidentOpened'],
    ['i1:Keyturn.IncidentContained', 'Keyturn.IncidentContained'],
    ['i1:Keyturn.IncidentTaskOpened:t1', 'Keyturn.IncidentTaskOpened'],
    // Back to contained after the task: the same id again (subscribers drop the duplicate).
    ['i1:Keyturn.IncidentContained', 'Keyturn.IncidentContained'],
    ['i1:Keyturn.IncidentClosed', 'Keyturn.IncidentClosed'],
  ]);
  expect(published[0]!.data).toMatchObject({ incidentId: 'i1', adminContacts: ['admin@contoso.example'], scope: { tenants: ['contoso'] } });
  expect(published[2]!.data).toMatchObject({ taskId: 't1' });
});

test('a closed incident is chained into the ledger, which verifies with its own checkpoints', async () => {
  const { service, deps } = setup();
  await service.open(request, caller);
  await service.close('i1', 'nothing leaked after all', caller);
  const ledger = await verifyIncident(deps, 'ledger');
  expect(ledger).toMatchObject({ ok: true, entries: 1, checkpoints: 1 });
  const [entry] = await deps.entries.all('ledger');
  const head = await deps.chain.head('i1');
  expect(entry!.evidence).toMatchObject({ incidentId: 'i1', seq: head.seq, hash: head.hash });
  expect(await verifyAll(deps)).toMatchObject({ ok: true, incidents: 1 });
});

test('a notification that failed stays in the outbox and is published by the next step or verify; its entry is not appended twice', async () => {
  const { service, deps, published, incidents } = setup({ failPublishes: 1 });
  await service.open(request, caller);
  // The run's first step finished what the open left: published once, after the retry.
  expect(published.filter((e) => e.eventType === 'Keyturn.IncidentOpened')).toHaveLength(1);
  expect(incidents.docs.get('i1')!.doc.outbox).toEqual([]);
  expect((await deps.entries.all('i1')).filter((e) => e.event === 'incident-opened')).toHaveLength(1);
  expect(await verifyIncident(deps, 'i1')).toMatchObject({ ok: true, entries: 4 });
});

test('a scope naming a tenant that exists nowhere records nothing', async () => {
  const { service, incidents } = setup();
  await expect(service.open({ ...request, scope: { tenants: ['contoso', 'ghost'] } }, caller)).rejects.toMatchObject({ code: 'SCOPE_NOT_FOUND', details: { missing: [{ kind: 'tenants', id: 'ghost' }] } });
  expect(incidents.docs.size).toBe(0);
});

test('the same system finding opens one incident', async () => {
  const { service } = setup();
  const input = { type: 'log-tampering' as const, severity: 'P1' as const, description: 'd', scope: {}, details: { subject: 'x', reason: 'modified', firstBrokenSeq: 3 } };
  const a = await service.openSystem(input, 'x\nmodified\n3');
  const b = await service.openSystem(input, 'x\nmodified\n3');
  expect(a.opened).toBe(true);
  expect(b).toMatchObject({ opened: false, incident: { incidentId: a.incident.incidentId } });
  expect(a.incident.openedBy).toEqual({ kind: 'system' });
});
