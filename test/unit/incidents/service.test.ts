/**
 * The incident service with in-memory ports (Cosmos DB and Key Vault are replaced by
 * maps here; the integration test runs the real ones): notifications with deterministic
 * ids and the affected tenants' admin contacts, close rules over HTTP-less calls, the
 * ledger of closed incidents, and a notification that failed being retried.
 */
import type { Incident } from '../../../shared/domain/incident';
import type { Checkpoint, EntryDoc } from '../../../shared/domain/incidentChain';
import type { IncidentJob } from '../../../shared/domain/incidentPlaybook';
import { noFaults } from '../../../shared/ports';
import { IncidentLog } from '../../../shared/services/incidents/log';
import { IncidentService, type IncidentServiceDeps } from '../../../shared/services/incidents/service';
import { verifyAll, verifyIncident } from '../../../shared/services/incidents/verify';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { memoryEntries, versioned } from '../../helpers/memoryStores';

const quiet = { info() {}, warn() {}, error() {} };

function setup(options: { failPublishes?: number } = {}) {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const clock = { now: async () => new Date((now += 1000)) };
  const incidents = versioned<Incident>();
  const jobs = versioned<IncidentJob>();
  const idem = versioned<{ id: string; fingerprint: string; expiresAt: string }>();
  const entryDocs = new Map<string, EntryDoc>();
  const cps = new Map<string, Checkpoint[]>();
  /** Soft-deleted checkpoint secrets (Key Vault keeps them, lists no versions, refuses new ones). */
  const deletedCps = new Map<string, Checkpoint[]>();
  const published: { id?: string; eventType: string; data: Record<string, unknown> }[] = [];
  let failures = options.failPublishes ?? 0;
  const entries = memoryEntries(entryDocs);
  const checkpoints = {
    latest: async (s: string) => cps.get(s)?.at(-1),
    all: async (s: string) => cps.get(s) ?? [],
    append: async (c: Checkpoint) => {
      if (deletedCps.has(c.incidentId)) throw Object.assign(new Error('ObjectIsDeletedButRecoverable'), { statusCode: 409 });
      cps.set(c.incidentId, [...(cps.get(c.incidentId) ?? []), c]);
    },
    subjects: async () => [...cps.keys()],
    deleted: async (s: string) =>
      deletedCps.has(s) ? { vaultUrl: 'https://keyturn-local.vault.azure.net', secretName: `incident-${s}-head`, deletedOn: '2030-01-02T00:00:00.000Z', scheduledPurgeDate: '2030-04-02T00:00:00.000Z' } : undefined,
    deletedSubjects: async () => [...deletedCps.keys()],
  };
  const softDelete = (s: string) => {
    deletedCps.set(s, cps.get(s) ?? []);
    cps.delete(s);
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
  return { service: new IncidentService({ ...deps, newId: () => `i${++ids}` }), deps, published, incidents, entryDocs, softDelete };
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

describe('verify', () => {
  test('a soft-deleted checkpoint secret is reported (one incident and all, its documents gone too) with how to recover it', async () => {
    const { service, deps, softDelete, incidents, entryDocs } = setup();
    await service.open(request, caller);
    await service.open(request, caller);
    softDelete('i1');
    const one = await verifyIncident(deps, 'i1');
    expect(one).toMatchObject({ ok: false, reason: 'checkpoint-deleted', firstBrokenSeq: 1, entries: 4, checkpoints: 0, recovery: { secretName: 'incident-i1-head', scheduledPurgeDate: '2030-04-02T00:00:00.000Z' } });
    expect(one.recovery!.how).toMatch(/az keyvault secret recover --vault-name keyturn-local --name incident-i1-head/);
    // i2: its documents deleted as well, its secret soft-deleted: found by the deleted secret's tag alone.
    softDelete('i2');
    incidents.docs.delete('i2');
    for (const [id, e] of entryDocs) if (e.incidentId === 'i2') entryDocs.delete(id);
    const all = await verifyAll(deps);
    expect(all.failures.map((f) => [f.incidentId, f.reason])).toEqual([['i1', 'checkpoint-deleted'], ['i2', 'checkpoint-deleted']]);
    expect(all).toMatchObject({ ok: false, incidents: 2 });
  });

  test('the ledger is checked against each closed incident: a closure the ledger lacks, entries after the closure, a ledger record of an incident not closed or gone', async () => {
    const { service, deps, incidents, entryDocs } = setup();
    for (let i = 0; i < 4; i++) await service.open(request, caller);
    for (const id of ['i1', 'i2', 'i3']) await service.close(id, 'done', caller);
    expect(await verifyAll(deps)).toMatchObject({ ok: true, incidents: 4 });
    const head = async (id: string) => deps.chain.head(id);

    // i4 shown as closed in Cosmos DB (its own chain still verifies): the ledger never recorded a closure.
    const i4 = incidents.docs.get('i4')!;
    incidents.docs.set('i4', { ...i4, doc: { ...i4.doc, progress: 'closed', state: 'closed' } });
    expect(await verifyIncident(deps, 'i4')).toMatchObject({ ok: false, reason: 'ledger-mismatch', firstBrokenSeq: (await head('i4')).seq, ledgerCheck: { mismatch: 'not-in-ledger', recorded: null } });

    // i1: a well-formed entry appended after the closure (within the checkpoint window: the chain alone cannot tell).
    const closedHead = await head('i1');
    await deps.chain.append('i1', { event: 'nothing to see', actor: { kind: 'function-key' }, claimedBy: null, evidence: {} }, { checkpoint: false });
    const after = await verifyIncident(deps, 'i1');
    expect(after).toMatchObject({ ok: false, reason: 'ledger-mismatch', firstBrokenSeq: closedHead.seq + 1, ledgerCheck: { mismatch: 'head-differs', recorded: closedHead, actual: { seq: closedHead.seq + 1 } } });
    // No repair covered the appended entry with a checkpoint.
    expect((await deps.checkpoints.all('i1')).every((c) => c.seq <= closedHead.seq)).toBe(true);

    // i2 shown as open again: the ledger says it was closed.
    const i2 = incidents.docs.get('i2')!;
    incidents.docs.set('i2', { ...i2, doc: { ...i2.doc, progress: 'contained', state: 'contained' } });
    expect(await verifyIncident(deps, 'i2')).toMatchObject({ ok: false, reason: 'ledger-mismatch', ledgerCheck: { mismatch: 'not-closed' } });

    // i3 entirely gone from Cosmos DB and Key Vault alike: only the ledger remembers it.
    incidents.docs.delete('i3');
    for (const [id, e] of entryDocs) if (e.incidentId === 'i3') entryDocs.delete(id);
    (await deps.checkpoints.all('i3')).length = 0;
    const all = await verifyAll(deps);
    expect(Object.fromEntries(all.failures.map((f) => [f.incidentId, [f.reason, f.ledgerCheck?.mismatch]]))).toMatchObject({
      i1: ['ledger-mismatch', 'head-differs'],
      i2: ['ledger-mismatch', 'not-closed'],
      i4: ['ledger-mismatch', 'not-in-ledger'],
    });
    expect(all.failures.find((f) => f.incidentId === 'i3')).toMatchObject({ reason: expect.stringMatching(/incident-missing|ledger-mismatch/) });
    expect(all.ledger).toMatchObject({ ok: true, entries: 3 });
  });

  test('a door on a closed incident opens a follow-up: the closed record stays as the ledger holds it', async () => {
    const { service, deps } = setup();
    const input = { type: 'key-leaked' as const, severity: 'P1' as const, description: 'door', scope: {}, details: {} };
    const first = await service.recordDoor(input, 'sig:k1', { event: 'signing.emergency-rollover', evidence: { kid: 'k1' } });
    await service.close(first.incidentId, 'rolled', caller);
    const again = await service.recordDoor(input, 'sig:k1', { event: 'signing.emergency-rollover', evidence: { kid: 'k1' } });
    expect(again).toMatchObject({ opened: true });
    expect(again.incidentId).not.toBe(first.incidentId);
    expect(await verifyIncident(deps, first.incidentId)).toMatchObject({ ok: true });
  });
});
