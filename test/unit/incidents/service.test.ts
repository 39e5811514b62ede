/**
 * The incident service with in-memory ports (Cosmos DB and Key Vault are replaced by
 * maps here; the integration test runs the real ones): notifications with deterministic
 * ids and the affected tenants' admin contacts, close rules over HTTP-less calls, the
 * ledger of closed incidents, and a notification that failed being retried.
 */
import { KeyturnError } from '../../../shared/errors';
import { checkpointDeleted } from '../../../shared/domain/incidentLedger';
import { flushOutbox } from '../../../shared/services/incidents/records';
import type { Incident } from '../../../shared/domain/incident';
import type { Checkpoint, EntryDoc } from '../../../shared/domain/incidentChain';
import type { IncidentJob } from '../../../shared/domain/incidentPlaybook';
import { noFaults } from '../../../shared/ports';
import { IncidentLog } from '../../../shared/services/incidents/log';
import { IncidentService, type IncidentServiceDeps } from '../../../shared/services/incidents/service';
import { verifyAll, verifyIncident } from '../../../shared/services/incidents/verify';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { versioned } from '../../helpers/memoryStores';

const quiet = { info() {}, warn() {}, error() {} };

/** A random pause of 0–3 ms: concurrent calls interleave at every store access, as over the network. */
const jitter = () => new Promise<void>((r) => setTimeout(r, Math.floor(Math.random() * 4)));

function setup(options: { failPublishes?: number; jitter?: boolean; noDeletedRead?: boolean } = {}) {
  const pause = options.jitter ? jitter : async () => {};
  let now = Date.parse('2030-01-01T00:00:00Z');
  const clock = { now: async () => new Date((now += 1000)) };
  const incidents = versioned<Incident>();
  if (options.jitter) {
    const { read, replace } = incidents;
    Object.assign(incidents, { read: async (id: string) => (await pause(), read(id)), replace: async (doc: Incident, etag: string) => (await pause(), replace(doc, etag)) });
  }
  const jobs = versioned<IncidentJob>();
  const idem = versioned<{ id: string; fingerprint: string; expiresAt: string }>();
  const entryDocs = new Map<string, EntryDoc>();
  const cps = new Map<string, Checkpoint[]>();
  /** Soft-deleted checkpoint secrets (Key Vault keeps them, lists no versions, refuses new ones). */
  const deletedCps = new Map<string, Checkpoint[]>();
  const published: { id?: string; eventType: string; data: Record<string, unknown> }[] = [];
  let failures = options.failPublishes ?? 0;
  const entries = {
    read: async (s: string, seq: number) => (await pause(), entryDocs.get(`${s}:${seq}`)),
    createOnly: async (e: EntryDoc) => (await pause(), entryDocs.has(e.id) ? false : (entryDocs.set(e.id, e), true)),
    all: async (s: string) => [...entryDocs.values()].filter((e) => e.incidentId === s),
    byRef: async (s: string, ref: string) => (await pause(), [...entryDocs.values()].find((e) => e.incidentId === s && e.evidence.ref === ref)),
  };
  // As Key Vault answers without deletedSecrets/read (the adapter maps its 403 so).
  const deniedDeletedRead = () => new KeyturnError('ACCESS_DENIED', 'Key Vault refused reading deleted secrets', { statusCode: 403 });
  const deletedInfo = (s: string) => ({ vaultUrl: 'https://keyturn-local.vault.azure.net', secretName: `incident-${s}-head`, deletedOn: '2030-01-02T00:00:00.000Z', scheduledPurgeDate: '2030-04-02T00:00:00.000Z' });
  const checkpoints = {
    latest: async (s: string) => cps.get(s)?.at(-1),
    all: async (s: string) => cps.get(s) ?? [],
    append: async (c: Checkpoint) => {
      // As the adapter maps Key Vault's 409 on a soft-deleted secret.
      if (deletedCps.has(c.incidentId)) throw checkpointDeleted(c.incidentId, deletedInfo(c.incidentId));
      cps.set(c.incidentId, [...(cps.get(c.incidentId) ?? []), c]);
    },
    subjects: async () => [...cps.keys()],
    deleted: async (s: string) => {
      if (options.noDeletedRead) throw deniedDeletedRead();
      return deletedCps.has(s) ? deletedInfo(s) : undefined;
    },
    deletedSubjects: async () => {
      if (options.noDeletedRead) throw deniedDeletedRead();
      return [...deletedCps.keys()];
    },
  };
  const softDelete = (s: string) => {
    deletedCps.set(s, cps.get(s) ?? []);
    cps.delete(s);
  };
  const recover = (s: string) => {
    cps.set(s, deletedCps.get(s) ?? []);
    deletedCps.delete(s);
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
  return { service: new IncidentService({ ...deps, newId: () => `i${++ids}` }), deps, published, incidents, entryDocs, softDelete, recover };
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

describe('notes go through the incident’s ETag like every change', () => {
  const closingSeq = async (deps: IncidentServiceDeps, id: string) => (await deps.entries.all(id)).find((e) => e.event === 'state-changed' && e.evidence.to === 'closed')!.seq;

  test('a note after the close is refused (409 INCIDENT_CLOSED); one before it is in the head the ledger recorded', async () => {
    const { service, deps } = setup();
    await service.open(request, caller);
    const noted = await service.note('i1', { event: 'call with the vendor', evidence: { ticket: 7 } }, caller);
    expect(noted).toMatchObject({ status: 201, body: { entry: { event: 'call with the vendor', evidence: { ticket: 7 } } } });
    await service.close('i1', 'done', caller);
    await expect(service.note('i1', { event: 'late', evidence: {} }, caller)).rejects.toMatchObject({ code: 'INCIDENT_CLOSED' });
    expect((noted.body.entry as { seq: number }).seq).toBeLessThan(await closingSeq(deps, 'i1'));
    expect(await verifyIncident(deps, 'i1')).toMatchObject({ ok: true });
  });

  test('a note and a close at the same time: the note lands before the closing entry or is refused, never after (40 rounds, interleaved at every store access)', async () => {
    const { service, deps } = setup({ jitter: true });
    const outcomes = { before: 0, refused: 0 };
    for (let round = 1; round <= 40; round++) {
      const id = `i${round}`;
      await service.open(request, caller);
      const [note, close] = await Promise.allSettled([service.note(id, { event: 'racing note', evidence: { round } }, caller), service.close(id, 'done', caller)]);
      expect(close.status).toBe('fulfilled');
      const closing = await closingSeq(deps, id);
      const notes = (await deps.entries.all(id)).filter((e) => e.event === 'racing note');
      if (note.status === 'fulfilled') {
        outcomes.before++;
        expect(notes.map((e) => e.seq)).toEqual([(note.value.body.entry as { seq: number }).seq]);
        expect(notes[0]!.seq).toBeLessThan(closing);
      } else {
        outcomes.refused++;
        expect(note.reason).toMatchObject({ code: 'INCIDENT_CLOSED' });
        expect(notes).toEqual([]);
      }
      // The ledger's head of the closure is the chain's head: never `head-differs`.
      expect({ round, ...(await verifyIncident(deps, id)) }).toMatchObject({ round, ok: true });
    }
    expect(outcomes.before + outcomes.refused).toBe(40);
    expect(await verifyAll(deps)).toMatchObject({ ok: true, incidents: 40 });
  });

  test('two flushers of one outbox append each entry once', async () => {
    const { service, deps, incidents } = setup({ jitter: true });
    await service.open(request, caller);
    const stored = incidents.docs.get('i1')!;
    const pending = { ...stored.doc, revision: 9, outbox: [1, 2, 3].map((i) => ({ ref: `r9.${i}`, event: `pending ${i}`, actor: caller.actor, claimedBy: null, evidence: {} })) };
    incidents.docs.set('i1', { doc: pending, etag: 'p' });
    await Promise.all(Array.from({ length: 4 }, () => flushOutbox(deps, { doc: pending, etag: 'p' })));
    const events = (await deps.entries.all('i1')).map((e) => e.event).filter((e) => e.startsWith('pending'));
    expect(events.sort()).toEqual(['pending 1', 'pending 2', 'pending 3']);
  });

  test('an Idempotency-Key answers the same entry for the same note, 422 for another', async () => {
    const { service, deps } = setup();
    await service.open(request, caller);
    const a = await service.note('i1', { event: 'n', evidence: { x: 1 } }, caller, 'key-1');
    const b = await service.note('i1', { event: 'n', evidence: { x: 1 } }, caller, 'key-1');
    expect(b).toMatchObject({ replayed: true, body: a.body });
    await expect(service.note('i1', { event: 'n', evidence: { x: 2 } }, caller, 'key-1')).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect((await deps.entries.all('i1')).filter((e) => e.event === 'n')).toHaveLength(1);
  });
});

describe('a soft-deleted checkpoint secret', () => {
  test('a change is recorded whole (entries, notification, outbox cleared) and answered 409 CHECKPOINT_DELETED; the checkpoint follows once recovered', async () => {
    const { service, deps, softDelete, recover, incidents, published } = setup();
    await service.open(request, caller);
    softDelete('i1');
    const refused = service.addTask('i1', { title: 'rotate the token' }, caller);
    await expect(refused).rejects.toMatchObject({ code: 'CHECKPOINT_DELETED', details: { recorded: true, secretName: 'incident-i1-head' } });
    const error = (await refused.catch((e: unknown) => e)) as KeyturnError;
    expect(error.message).toContain('az keyvault secret recover --vault-name keyturn-local --name incident-i1-head');
    // Not half-applied: the task and its entries are there once, the notification went out, nothing waits in the outbox.
    expect(incidents.docs.get('i1')!.doc).toMatchObject({ state: 'awaiting-action', outbox: [] });
    expect((await deps.entries.all('i1')).filter((e) => e.event === 'task-opened')).toHaveLength(1);
    expect(published.map((e) => e.eventType)).toContain('Keyturn.IncidentTaskOpened');
    expect(await verifyIncident(deps, 'i1')).toMatchObject({ ok: false, reason: 'checkpoint-deleted' });
    recover('i1');
    const checkpointsBefore = (await deps.checkpoints.all('i1')).length;
    expect(await verifyIncident(deps, 'i1')).toMatchObject({ ok: true, checkpoints: checkpointsBefore + 1 });
    expect((await deps.checkpoints.latest('i1'))).toMatchObject({ seq: (await deps.chain.head('i1')).seq, state: 'awaiting-action' });
  });

  test('without deletedSecrets/read verify checks the rest and says deleted checkpoints were not checked; a deleted one still shows when its repair is refused', async () => {
    const { service, deps, softDelete } = setup({ noDeletedRead: true });
    await service.open(request, caller);
    await service.open(request, caller);
    const all = await verifyAll(deps);
    expect(all).toMatchObject({ ok: true, incidents: 2, deletedCheckpoints: 'not-checked', deletedCheckpointsReason: expect.stringContaining('Key Vault Reader') });
    expect(await verifyIncident(deps, 'i1')).not.toHaveProperty('deletedCheckpoints');
    softDelete('i2');
    expect(await verifyIncident(deps, 'i2')).toMatchObject({ ok: false, reason: 'checkpoint-deleted', recovery: { secretName: 'incident-i2-head', how: expect.stringContaining('az keyvault secret recover') } });
    expect((await verifyAll(deps)).failures.map((f) => [f.incidentId, f.reason])).toEqual([['i2', 'checkpoint-deleted']]);
  });
});
