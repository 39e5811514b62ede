/**
 * The breach incident record on the real local stack: incidents opened over HTTP, their
 * timelines in Cosmos DB and checkpoints as Key Vault secret versions. Tampering is done
 * directly in Cosmos DB with @azure/cosmos, each on a fresh incident, and verify must name
 * the right reason and seq. A second host (Easy Auth trusted, one armed crash) appends
 * concurrently and crashes between an entry and its checkpoint.
 */
import { type Container, CosmosClient } from '@azure/cosmos';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type EntryBody, entryHash } from '../../../shared/domain/incidentChain';
import { resolveObjectId } from '../../../local/keyvault/principals';
import { ROLES } from '../../../local/keyvault/rbac';
import { PROJECT_ROOT, type TestHost, type TestStack, call, startStack } from '../../helpers/stack';

type Entry = { id: string; incidentId: string; seq: number; hash: string; prevHash: string; event: string; evidence: Record<string, unknown>; actor: unknown; claimedBy: string | null; at: string };

describe('When incidents are recorded on the local stack', () => {
  let stack: TestStack;
  let hostB: TestHost;
  let api: string;
  let apiB: string;
  let entries: Container;
  let incidentsC: Container;

  beforeAll(async () => {
    // The resume timer and the daily watch never fire on their own: the test runs them.
    // The record alone: the playbooks (issue 15) have their own tests (test/integration/playbooks).
    stack = await startStack({ env: { KEYTURN_RESUME_SCHEDULE: '0 0 0 1 1 *', KEYTURN_INCIDENT_VERIFY_SCHEDULE: '0 0 0 1 1 *', KEYTURN_PLAYBOOKS_ENABLED: 'false' } });
    api = `${stack.host!.url}/api`;
    hostB = await stack.startSecondHost({ KEYTURN_TRUST_EASY_AUTH_HEADER: 'true', KEYTURN_FAULTS: 'incident-checkpoint:before*1' });
    apiB = `${hostB.url}/api`;
    const cosmos = new CosmosClient({
      endpoint: stack.env.KEYTURN_COSMOS_ENDPOINT!,
      key: stack.env.KEYTURN_COSMOS_KEY,
      agent: new Agent({ ca: readFileSync(stack.env.KEYTURN_COSMOS_CA_FILE!, 'utf8') }),
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    const db = cosmos.database(stack.env.KEYTURN_COSMOS_DATABASE ?? 'keyturn');
    entries = db.container('incidentEntries');
    incidentsC = db.container('incidents');
    await stack.keyVault.secretClient().setSecret('orders-db-password', 'not-a-real-one');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const SCOPE = { vaults: ['local'], credentials: ['local/orders-db-password'], principals: ['intruder'] };
  const open = async (body: Record<string, unknown> = {}, headers: Record<string, string> = {}, base = api) =>
    call('POST', `${base}/incidents`, { body: { type: 'key-leaked', scope: SCOPE, description: 'key seen in a build log', reportedBy: 'alice@example.com', ...body }, headers });
  const verify = async (id: string) => (await call('GET', `${api}/incidents/${id}/verify`)).json();
  const get = async (id: string) => (await call('GET', `${api}/incidents/${id}`)).json();
  const note = (id: string, i: number, base = api) => call('POST', `${base}/incidents/${id}/entries`, { body: { event: `note ${i}`, evidence: { i } } });
  const chainOf = async (id: string): Promise<Entry[]> =>
    (await entries.items.query<Entry>({ query: 'SELECT * FROM c WHERE c.incidentId = @id', parameters: [{ name: '@id', value: id }] }).fetchAll()).resources.sort((a, b) => a.seq - b.seq);
  const plain = (e: Entry): Entry => {
    const { _rid, _self, _etag, _ts, _attachments, ...rest } = e as Entry & Record<string, unknown>;
    void _rid; void _self; void _etag; void _ts; void _attachments;
    return rest as Entry;
  };
  const rehash = (e: Entry): Entry => ({ ...e, id: `${e.incidentId}:${e.seq}`, hash: entryHash(e as unknown as EntryBody) });
  const put = (e: Entry) => entries.items.upsert(e);
  const remove = (id: string, seq: number) => entries.item(`${id}:${seq}`, id).delete();

  /** The hand-verification script of docs/incidents.md, against this stack. */
  const byHand = (id: string) => {
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'dist', 'local', 'verifyIncident.js'), id], { env: { PATH: process.env.PATH, ...stack.env }, encoding: 'utf8', cwd: PROJECT_ROOT });
    return { status: r.status, out: r.stdout + r.stderr };
  };

  /** A fresh incident of 9 entries: opened, running, scope snapshot, contained, 3 notes, a task (awaiting-action, checkpointed at 9). */
  async function fresh(): Promise<string> {
    const res = await open();
    expect(res.status).toBe(202);
    const id = res.json().incidentId as string;
    for (let i = 0; i < 3; i++) expect((await note(id, i)).status).toBe(201);
    expect((await call('POST', `${api}/incidents/${id}/tasks`, { body: { title: 'find the root cause' } })).status).toBe(201);
    expect(await verify(id)).toMatchObject({ ok: true, entries: 9 });
    return id;
  }

  let first: string;

  test('then an opened incident runs its steps, shows its timeline and verifies', async () => {
    const res = await open();
    expect(res.status).toBe(202);
    const { incidentId, incident } = res.json();
    first = incidentId;
    expect(incident).toMatchObject({ incidentId, type: 'key-leaked', severity: 'P2', state: 'contained', claimedBy: 'alice@example.com' });
    const view = await get(incidentId);
    expect(view.timeline.map((e: Entry) => e.event)).toEqual(['incident-opened', 'state-changed', 'scope-snapshot', 'state-changed']);
    expect(view.timeline[0]).toMatchObject({ seq: 1, prevHash: '0'.repeat(64), actor: { kind: 'function-key' }, claimedBy: 'alice@example.com' });
    expect(view.timeline[2]).toMatchObject({ actor: { kind: 'system' }, evidence: { snapshot: { credentials: [{ vault: 'local', name: 'orders-db-password' }], vaults: ['local'], principals: ['intruder'] } } });
    expect(view.metrics).toMatchObject({ affected: { vaults: 1, credentials: 1, principals: 1 } });
    expect(typeof view.metrics.timeToContainMs).toBe('number');
    // Checkpoints: opened, running, contained — versions of the incident's secret in Keyturn's vault.
    expect(await verify(incidentId)).toEqual({ incidentId, ok: true, entries: 4, checkpoints: 3, head: { seq: 4, hash: view.timeline[3].hash } });
    const versions = [];
    for await (const p of stack.keyVault.secretClient().listPropertiesOfSecretVersions(`incident-${incidentId}-head`)) versions.push(p);
    expect(versions).toHaveLength(3);
    expect(byHand(incidentId)).toEqual({ status: 0, out: `${incidentId}: 4 entries, 3 checkpoints, ok\n` });
    // No secret value reaches the record.
    expect(JSON.stringify(view)).not.toContain('not-a-real-one');
    expect((await call('GET', `${api}/incidents/nope-404/verify`)).status).toBe(404);
    expect((await call('GET', `${api}/incidents/nope-404`)).status).toBe(404);
  });

  test('then ids that exist nowhere, unsupported kinds, bad details and reportedBy "system" are 400s, and nothing is recorded', async () => {
    const before = (await call('GET', `${api}/incidents?top=200`)).json().incidents.length;
    const missing = await open({ scope: { tenants: ['nobody'], credentials: ['local/nope', 'local/orders-db-password'], vaults: ['elsewhere'] } });
    expect(missing.status).toBe(400);
    expect(missing.json()).toMatchObject({ code: 'SCOPE_NOT_FOUND', missing: [{ kind: 'tenants', id: 'nobody' }, { kind: 'credentials', id: 'local/nope' }, { kind: 'vaults', id: 'elsewhere' }] });
    expect((await open({ scope: { keySets: ['orders'] } })).json()).toMatchObject({ status: 400, code: 'SCOPE_KIND_UNSUPPORTED', field: 'scope.keySets' });
    expect((await open({ type: 'hsm-vulnerability', details: { advisory: 'CVE-1' } })).json()).toMatchObject({ status: 400, field: 'details.exposed' });
    expect((await open({ reportedBy: 'system' })).json()).toMatchObject({ status: 400, field: 'reportedBy' });
    expect((await open({ severity: 'P9' })).json()).toMatchObject({ status: 400, field: 'severity' });
    expect((await call('GET', `${api}/incidents?top=200`)).json().incidents.length).toBe(before);
    expect((await call('GET', `${api}/incidents?top=0`)).json()).toMatchObject({ status: 400, field: 'query.top' });
    expect((await call('GET', `${api}/incidents?continuationToken=not-a-token`)).json()).toMatchObject({ status: 400, field: 'query.continuationToken' });
  });

  test('then an Idempotency-Key replays the same incident, and another body with it is a 422', async () => {
    const headers = { 'idempotency-key': `k-${Date.now()}` };
    const a = await open({}, headers);
    const b = await open({}, headers);
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.json().incidentId).toBe(a.json().incidentId);
    const c = await open({ description: 'another incident' }, headers);
    expect(c.json()).toMatchObject({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  test('then a crash between an entry and its checkpoint is repaired by the next verify, with no false alarm', async () => {
    const id = (await open()).json().incidentId as string;
    expect(await verify(id)).toMatchObject({ ok: true, entries: 4, checkpoints: 3 });
    // Host B's first checkpoint crashes (armed once): the task's entries are written, their checkpoint is not.
    const crashed = await call('POST', `${apiB}/incidents/${id}/tasks`, { body: { title: 'rotate the CI token' } });
    expect(crashed.status).toBe(500);
    const repaired = await verify(id);
    expect(repaired).toMatchObject({ ok: true, entries: 6, checkpoints: 4, head: { seq: 6 } });
    expect(await verify(id)).toMatchObject({ ok: true, entries: 6, checkpoints: 4 });
    expect((await get(id)).incident.state).toBe('awaiting-action');
    // Now covered: dropping the tail is detected.
    expect((await call('POST', `${api}/incidents/${id}/tasks/t1`, { body: { state: 'done', note: 'rotated' } })).status).toBe(200);
    const closed = await call('POST', `${api}/incidents/${id}/close`, { body: { resolution: 'token rotated' } });
    expect(closed.json()).toMatchObject({ incident: { state: 'closed', resolution: 'token rotated' } });
    expect((await note(id, 1)).json()).toMatchObject({ status: 409, code: 'INCIDENT_CLOSED' });
    expect(await verify(id)).toMatchObject({ ok: true, entries: 9 });
  });

  test('then the actor is the Easy Auth principal where trusted, else function-key beside what the body claims', async () => {
    const principal = { 'x-ms-client-principal-id': '00000000-0000-0000-0000-00000000a004', 'x-ms-client-principal-name': 'operator@contoso.example' };
    const trusted = await open({ reportedBy: 'mallory' }, principal, apiB);
    expect(trusted.status).toBe(202);
    const t = (await get(trusted.json().incidentId)).timeline[0];
    expect(t).toMatchObject({ actor: { kind: 'principal', id: principal['x-ms-client-principal-id'], name: 'operator@contoso.example' }, claimedBy: 'mallory' });
    // Host A does not trust the header: a client's copy of it is not an identity.
    const untrusted = await open({ reportedBy: 'mallory' }, principal);
    expect((await get(untrusted.json().incidentId)).timeline[0]).toMatchObject({ actor: { kind: 'function-key' }, claimedBy: 'mallory' });
  });

  test('then 20 concurrent appends from two hosts make one unbroken chain', async () => {
    const id = (await open()).json().incidentId as string;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => note(id, i, i % 2 === 0 ? api : apiB)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    const chain = await chainOf(id);
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(new Set(chain.filter((e) => e.event.startsWith('note')).map((e) => e.evidence.i)).size).toBe(20);
    expect(await verify(id)).toMatchObject({ ok: true, entries: 24 });
  });

  test('then a run that crashes at a step boundary resumes on the resume timer, no step repeated', async () => {
    // Host C crashes once after the snapshot step ran (before its record), and once when `contain` is claimed; its leases are short.
    const hostC = await stack.startSecondHost({ KEYTURN_FAULTS: 'snapshot-scope:after*1,contain:claimed*1', KEYTURN_ROTATION_LEASE_SECONDS: '2' });
    const resume = async () => expect((await call('POST', `${stack.host!.url}/admin/functions/resumeRotations`, { body: { input: '' } })).status).toBe(202);
    for (const description of ['crash after the snapshot', 'crash at contain']) {
      expect((await open({ description }, {}, `${hostC.url}/api`)).status).toBe(500);
      const listed = (await call('GET', `${api}/incidents?top=200`)).json().incidents as { incidentId: string; description: string }[];
      const id = listed.find((i) => i.description === description)!.incidentId;
      let view = await get(id);
      expect(view.incident.state).not.toBe('contained');
      for (let i = 0; i < 60 && view.incident.state !== 'contained'; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        await resume();
        view = await get(id);
      }
      expect(view.timeline.map((e: Entry) => e.event)).toEqual(['incident-opened', 'state-changed', 'scope-snapshot', 'state-changed']);
      expect(await verify(id)).toMatchObject({ ok: true, entries: 4 });
    }
    await hostC.stop();
  });

  const tampered: Record<string, { reason: string; seq: number }> = {};

  test('then tampering in Cosmos DB is reported with the right reason and seq', async () => {
    const cases: [string, (id: string, chain: Entry[]) => Promise<unknown>, string, number][] = [
      ['a changed field', (id, c) => put({ ...plain(c[4]!), evidence: { i: 42 } }), 'modified', 5],
      ['a deleted middle entry', (id) => remove(id, 5), 'missing', 5],
      [
        'a forged entry with the chain shifted',
        async (id, c) => {
          const forged = rehash({ ...plain(c[4]!), event: 'nothing happened', evidence: {}, prevHash: c[3]!.hash });
          for (const e of c.slice(4).reverse()) await put(rehash({ ...plain(e), seq: e.seq + 1 }));
          await put(forged);
        },
        'broken-link',
        6,
      ],
      [
        'two swapped entries',
        async (_id, c) => {
          await put(rehash({ ...plain(c[5]!), seq: 5 }));
          await put(rehash({ ...plain(c[4]!), seq: 6 }));
        },
        'broken-link',
        5,
      ],
      [
        'a dropped tail',
        async (id) => {
          await remove(id, 9);
          await remove(id, 8);
        },
        'truncated',
        8,
      ],
      [
        'the whole chain rewritten with fresh hashes',
        async (_id, c) => {
          let prevHash = '0'.repeat(64);
          for (const e of c) {
            const rewritten = rehash({ ...plain(e), prevHash, ...(e.seq === 1 ? { claimedBy: 'someone else' } : {}) });
            await put(rewritten);
            prevHash = rewritten.hash;
          }
        },
        'checkpoint-mismatch',
        1,
      ],
      [
        'the whole incident deleted',
        async (id, c) => {
          for (const e of c) await remove(id, e.seq);
          await incidentsC.item(id, id).delete();
        },
        'incident-missing',
        1,
      ],
    ];
    for (const [what, tamper, reason, seq] of cases) {
      const id = await fresh();
      await tamper(id, await chainOf(id));
      expect({ what, ...(await verify(id)) }).toMatchObject({ what, ok: false, reason, firstBrokenSeq: seq });
      tampered[id] = { reason, seq };
      if (reason === 'modified') expect(byHand(id)).toMatchObject({ status: 1, out: expect.stringContaining(`seq ${seq}: hash does not match its fields (modified)`) });
    }
    expect((await call('GET', `${api}/incidents/${Object.keys(tampered).pop()}`)).status).toBe(404);
  });

  test('then verify-all finds every tampered record (the deleted one too), and the daily watch opens one log-tampering incident per finding', async () => {
    const all = (await call('GET', `${api}/incidents/verify`)).json();
    expect(all.ok).toBe(false);
    expect(all.ledger).toMatchObject({ ok: true, entries: 1 });
    const found = Object.fromEntries(all.failures.map((f: { incidentId: string; reason: string; firstBrokenSeq: number }) => [f.incidentId, { reason: f.reason, seq: f.firstBrokenSeq }]));
    expect(found).toEqual(tampered);
    expect(all.failures.map((f: { incidentId: string }) => f.incidentId)).not.toContain(first);

    const watch = async () => expect((await call('POST', `${stack.host!.url}/admin/functions/incidentWatch`, { body: { input: '' } })).status).toBe(202);
    const tamperIncidents = async () => (await call('GET', `${api}/incidents?type=log-tampering&top=200`)).json().incidents as { incidentId: string; details: { subject: string } }[];
    await watch();
    let opened: { incidentId: string; details: { subject: string } }[] = [];
    for (let i = 0; i < 120 && opened.length < 7; i++) {
      opened = await tamperIncidents();
      if (opened.length < 7) await new Promise((r) => setTimeout(r, 500));
    }
    expect(opened.map((o) => o.details.subject).sort()).toEqual(Object.keys(tampered).sort());
    // Recorded in its own chain, which verifies.
    expect(await verify(opened[0]!.incidentId)).toMatchObject({ ok: true });
    await watch();
    await new Promise((r) => setTimeout(r, 3000));
    expect((await tamperIncidents()).length).toBe(7);
    // Paged: four at a time, newest first, until no token comes back.
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = (await call('GET', `${api}/incidents?top=4${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`)).json();
      seen.push(...page.incidents.map((i: { incidentId: string }) => i.incidentId));
      token = page.continuationToken;
    } while (token && seen.length < 200);
    expect(seen).toContain(first);
    expect(seen.length).toBe((await call('GET', `${api}/incidents?top=200`)).json().incidents.length);
    expect(seen.length).toBeGreaterThan(8);
    expect(new Set(seen).size).toBe(seen.length);
  });

  test('then a soft-deleted checkpoint secret is reported (one incident and all, with how to recover it), and verifies again once recovered', async () => {
    const secrets = stack.keyVault.secretClient();
    const poll = { intervalInMs: 50 };
    const kept = await fresh();
    const gone = await fresh();
    await (await secrets.beginDeleteSecret(`incident-${kept}-head`, poll)).pollUntilDone();
    // `gone`: its documents deleted too; only the deleted secret's tag remembers it.
    await (await secrets.beginDeleteSecret(`incident-${gone}-head`, poll)).pollUntilDone();
    for (const e of await chainOf(gone)) await remove(gone, e.seq);
    await incidentsC.item(gone, gone).delete();
    const one = await verify(kept);
    expect(one).toMatchObject({ ok: false, reason: 'checkpoint-deleted', firstBrokenSeq: 1, recovery: { secretName: `incident-${kept}-head`, recoveryId: expect.stringContaining(`/deletedsecrets/incident-${kept}-head`) } });
    expect(one.recovery.how).toContain(`--name incident-${kept}-head`);
    const all = (await call('GET', `${api}/incidents/verify`)).json();
    const found = Object.fromEntries(all.failures.map((f: { incidentId: string; reason: string }) => [f.incidentId, f.reason]));
    expect(found).toMatchObject({ [kept]: 'checkpoint-deleted', [gone]: 'checkpoint-deleted' });
    // Recovered as the answer says: every checkpoint version is back, and the record verifies.
    await (await secrets.beginRecoverDeletedSecret(`incident-${kept}-head`, poll)).pollUntilDone();
    expect(await verify(kept)).toMatchObject({ ok: true, entries: 9 });
  });

  test('then the ledger is cross-checked with each closed incident: entries after the closure, and a closure the ledger never recorded', async () => {
    const closeIt = async (id: string) => {
      expect((await call('POST', `${api}/incidents/${id}/tasks/t1`, { body: { state: 'done', note: 'done' } })).status).toBe(200);
      expect((await call('POST', `${api}/incidents/${id}/close`, { body: { resolution: 'handled' } })).status).toBe(200);
    };
    const appended = await fresh();
    await closeIt(appended);
    const closedChain = await chainOf(appended);
    const last = closedChain.at(-1)!;
    expect(await verify(appended)).toMatchObject({ ok: true, head: { seq: last.seq, hash: last.hash } });
    // A well-formed entry after the closure, inside the checkpoint window: its chain alone still verifies.
    await put(rehash({ ...plain(last), seq: last.seq + 1, prevHash: last.hash, event: 'nothing happened', evidence: {}, at: new Date().toISOString() }));
    expect(await verify(appended)).toMatchObject({ ok: false, reason: 'ledger-mismatch', firstBrokenSeq: last.seq + 1, ledgerCheck: { mismatch: 'head-differs', recorded: { seq: last.seq, hash: last.hash }, actual: { seq: last.seq + 1 } } });

    // An incident made to look closed in Cosmos DB: no closure in the ledger.
    const flipped = await fresh();
    const { resource } = await incidentsC.item(flipped, flipped).read();
    await incidentsC.items.upsert({ ...resource, progress: 'closed', state: 'closed' });
    expect(await verify(flipped)).toMatchObject({ ok: false, reason: 'ledger-mismatch', ledgerCheck: { mismatch: 'not-in-ledger', recorded: null } });

    const all = (await call('GET', `${api}/incidents/verify`)).json();
    const found = Object.fromEntries(all.failures.map((f: { incidentId: string; reason: string }) => [f.incidentId, f.reason]));
    expect(found).toMatchObject({ [appended]: 'ledger-mismatch', [flipped]: 'ledger-mismatch' });
    expect(all.ledger).toMatchObject({ ok: true });
  });
  test('then a note and a close at the same time: the note is in the closed head or refused with 409 INCIDENT_CLOSED, never after (two hosts)', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 6; round++) {
      const id = (await open()).json().incidentId as string;
      const [n, c] = await Promise.all([note(id, round, round % 2 ? apiB : api), call('POST', `${round % 2 ? api : apiB}/incidents/${id}/close`, { body: { resolution: 'raced' } })]);
      expect(c.status).toBe(200);
      const chain = await chainOf(id);
      const closing = chain.find((e) => e.event === 'state-changed' && e.evidence.to === 'closed')!;
      const notes = chain.filter((e) => e.event === `note ${round}`);
      if (n.status === 201) {
        expect(notes.map((e) => e.seq)).toEqual([n.json().entry.seq]);
        expect(notes[0]!.seq).toBeLessThan(closing.seq);
        outcomes.push('before');
      } else {
        expect(n.json()).toMatchObject({ status: 409, code: 'INCIDENT_CLOSED' });
        expect(notes).toEqual([]);
        outcomes.push('refused');
      }
      expect(chain.at(-1)!.seq).toBe(closing.seq);
      expect({ round, ...(await verify(id)) }).toMatchObject({ round, ok: true });
    }
    expect(outcomes).toHaveLength(6);
  });

  test('then a note takes an Idempotency-Key (same note: same entry; another: 422) and refuses evidence.ref', async () => {
    const id = (await open()).json().incidentId as string;
    const headers = { 'idempotency-key': `note-${Date.now()}` };
    const body = { event: 'vendor called back', evidence: { ticket: 'INC-7' } };
    const a = await call('POST', `${api}/incidents/${id}/entries`, { body, headers });
    const b = await call('POST', `${apiB}/incidents/${id}/entries`, { body, headers });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.json().entry).toEqual(a.json().entry);
    expect((await call('POST', `${api}/incidents/${id}/entries`, { body: { ...body, event: 'another' }, headers })).json()).toMatchObject({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });
    expect((await chainOf(id)).filter((e) => e.event === 'vendor called back')).toHaveLength(1);
    expect((await call('POST', `${api}/incidents/${id}/entries`, { body: { event: 'x', evidence: { ref: 'r1.0' } } })).json()).toMatchObject({ status: 400, field: 'evidence.ref' });
  });

  test('then a change while the checkpoint secret is soft-deleted is recorded whole and answered 409 CHECKPOINT_DELETED; once recovered the checkpoint follows', async () => {
    const secrets = stack.keyVault.secretClient();
    const poll = { intervalInMs: 50 };
    const id = (await open()).json().incidentId as string;
    const name = `incident-${id}-head`;
    await (await secrets.beginDeleteSecret(name, poll)).pollUntilDone();
    const refused = await call('POST', `${api}/incidents/${id}/tasks`, { body: { title: 'recover the checkpoint secret' } });
    expect(refused.json()).toMatchObject({ status: 409, code: 'CHECKPOINT_DELETED', secretName: name, recorded: true, recovery: { secretName: name, recoveryId: expect.stringContaining(`/deletedsecrets/${name}`) } });
    expect(refused.json().detail).toContain(`az keyvault secret recover --vault-name`);
    // Recorded once: the task and its entries, nothing left half-done.
    const view = await get(id);
    expect(view.tasks).toHaveLength(1);
    expect(view.timeline.filter((e: Entry) => e.event === 'task-opened')).toHaveLength(1);
    expect(await verify(id)).toMatchObject({ ok: false, reason: 'checkpoint-deleted' });
    expect(byHand(id)).toMatchObject({ status: 1, out: expect.stringContaining(`checkpoint secret ${name} is soft-deleted`) });
    await (await secrets.beginRecoverDeletedSecret(name, poll)).pollUntilDone();
    const head = (await chainOf(id)).at(-1)!;
    expect(await verify(id)).toMatchObject({ ok: true, checkpoints: 4, head: { seq: head.seq } });
    expect(JSON.parse((await secrets.getSecret(name)).value!)).toMatchObject({ seq: head.seq, state: 'awaiting-action' });
  });

  // Last: it takes Key Vault Reader away from Keyturn on its vault for the rest of this stack.
  test('then without Key Vault Reader verify still verifies and says deleted checkpoints were not checked (no 403)', async () => {
    const vault = stack.vaults['keyturn-local']!;
    const arm = stack.arm.client('operator');
    const app = resolveObjectId('keyturn-app')!;
    let removed = 0;
    for await (const a of arm.roleAssignments.listForScope(vault.scope)) {
      if (a.principalId === app && a.roleDefinitionId?.endsWith(ROLES.keyVaultReader.id) && a.name) {
        await arm.roleAssignments.delete(vault.scope, a.name);
        removed++;
      }
    }
    expect(removed).toBe(1);
    const kept = await fresh();
    const all = await call('GET', `${api}/incidents/verify`);
    expect(all.status).toBe(200);
    expect(all.json()).toMatchObject({ deletedCheckpoints: 'not-checked', deletedCheckpointsReason: expect.stringContaining('Key Vault Reader') });
    // A deleted checkpoint secret still shows: the repair's write is refused.
    await (await stack.keyVault.secretClient().beginDeleteSecret(`incident-${kept}-head`, { intervalInMs: 50 })).pollUntilDone();
    const one = await call('GET', `${api}/incidents/${kept}/verify`);
    expect(one.status).toBe(200);
    expect(one.json()).toMatchObject({ ok: false, reason: 'checkpoint-deleted', recovery: { secretName: `incident-${kept}-head` } });
  });
});
