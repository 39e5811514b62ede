/**
 * Playbooks run from an incident (in-memory ports, see fakes.ts): planned once at open,
 * each planned step a step of the incident's run with its notes on the timeline (actor
 * system) and its tasks on the incident; a crash at every step boundary resumes with no
 * effect repeated; retries end `failed` with the remaining steps and `resume` continues;
 * fleet-wide runs wait for a second identity.
 */
import { CUSTOMER_SCOPE, VAULT_SCOPE, setup } from './fakes';

const caller = (id = 'alice') => ({ actor: { kind: 'function-key' as const }, claimedBy: id, identity: () => id });
const keyLeaked = { type: 'key-leaked' as const, scope: { tenants: ['fabrikam', 'contoso'], signingKeys: ['sig-1'], credentials: ['local/api-key'] }, description: 'leaked', severity: 'P1' as const };

test('key-leaked: every affected key is handled once, in plan order, each step on the timeline; the BYOK task keeps it awaiting-action', async () => {
  const s = setup();
  await s.service.open(keyLeaked, caller());
  expect([...s.effects.keys()]).toEqual(['rekey:fabrikam:k-fab-1', 'markCompromised:contoso:k-con-1', 'emergency:sig-1', 'renew:local/api-key@v1']);
  const view = await s.service.get('i1');
  expect(view.incident).toMatchObject({ progress: 'contained', state: 'awaiting-action' });
  expect(view.tasks).toEqual([expect.objectContaining({ title: expect.stringContaining('tenant contoso'), state: 'open' })]);
  const events = view.timeline.map((e) => e.event);
  expect(events).toEqual(expect.arrayContaining(['playbook-planned', 'playbook.rule', 'tenant.rekeyed', 'tenant.version-compromised', 'signing.emergency-rollover', 'credential.renewed', 'task.opened']));
  const system = view.timeline.filter((e) => String(e.event).includes('.'));
  expect(system.every((e) => (e.actor as { kind: string }).kind === 'system')).toBe(true);
  expect(view.timeline.find((e) => e.event === 'tenant.rekeyed')!.evidence).toMatchObject({ tenantId: 'fabrikam', compromisedKid: 'k-fab-1', newKid: 'k-fab-1-next' });
});

test('a crash at each playbook step boundary resumes with no effect repeated and no entry written twice', async () => {
  const probe = setup();
  await probe.service.open(keyLeaked, caller());
  const job = (await probe.deps.jobs.read('i1'))!.doc;
  const steps = job.plan;
  expect(steps.length).toBeGreaterThan(5);
  for (const step of steps) {
    for (const point of ['before', 'claimed', 'after']) {
      const s = setup();
      s.arm(`${step}:${point}`);
      await expect(s.service.open(keyLeaked, caller())).rejects.toThrow(/Injected fault/);
      s.later();
      await s.service.kick('i1');
      expect([...s.effects.keys()]).toEqual([...probe.effects.keys()]);
      const timeline = await s.timeline('i1');
      const refs = timeline.map((e) => e.evidence.ref).filter(Boolean);
      expect(new Set(refs).size).toBe(refs.length);
      expect(timeline.map((e) => e.event).filter((e) => e === 'tenant.rekeyed')).toHaveLength(1);
      expect((await s.deps.jobs.read('i1'))!.doc.status).toBe('completed');
    }
  }
});

test('a step that keeps failing ends the run failed with the remaining steps on the timeline; resume continues without repeating the done ones', async () => {
  const s = setup({ failing: { action: 'emergency', times: 3 } });
  await s.service.open(keyLeaked, caller());
  for (let i = 0; i < 4; i++) {
    s.later(3_600_000);
    await s.service.kick('i1');
  }
  expect((await s.deps.jobs.read('i1'))!.doc.status).toBe('failed');
  const failed = (await s.timeline('i1')).find((e) => e.event === 'step-failed')!;
  expect(failed.evidence).toMatchObject({ step: 'signing-emergency-rollover:sig-1', remaining: ['signing-emergency-rollover:sig-1', 'credential-renew-no-grace:local/api-key@v1', 'contain'] });
  expect([...s.effects.keys()]).toEqual(['rekey:fabrikam:k-fab-1', 'markCompromised:contoso:k-con-1']);
  const resumed = await s.service.resume('i1');
  expect([...s.effects.keys()]).toEqual(['rekey:fabrikam:k-fab-1', 'markCompromised:contoso:k-con-1', 'emergency:sig-1', 'renew:local/api-key@v1']);
  expect(s.calls.filter((c) => c.startsWith('rekey:'))).toHaveLength(1);
  expect(resumed.incident.progress).toBe('contained');
  expect(resumed.timeline.map((e) => e.event)).toContain('run-continued');
  await expect(s.service.resume('i1')).resolves.toBeDefined(); // a completed run: nothing more to do
});

test('all: true waits for a second approver; the requester cannot approve; the approval starts the run', async () => {
  const s = setup();
  await s.service.open({ ...keyLeaked, scope: { all: true } }, caller('alice'));
  expect((await s.service.get('i1')).incident.state).toBe('awaiting-approval');
  s.later();
  await s.service.kick('i1');
  expect(s.effects.size).toBe(0);
  await expect(s.service.approve('i1', caller('alice'))).rejects.toMatchObject({ code: 'APPROVER_IS_REQUESTER' });
  await expect(s.service.resume('i1')).rejects.toMatchObject({ code: 'INCIDENT_NOT_RESUMABLE' });
  const approved = await s.service.approve('i1', caller('bob'));
  expect(approved.incident).toMatchObject({ approval: { requestedBy: 'alice', approvedBy: 'bob' }, progress: 'contained' });
  expect(s.effects.has('rekey:fabrikam:k-fab-1')).toBe(true);
  expect(approved.timeline.map((e) => e.event)).toEqual(expect.arrayContaining(['approval-requested', 'approved']));
});

test('a plan above the threshold needs approval too; one at or below it runs at once', async () => {
  const above = setup({ threshold: 3 });
  await above.service.open(keyLeaked, caller());
  expect((await above.service.get('i1')).incident.state).toBe('awaiting-approval');
  const at = setup({ threshold: 4 });
  await at.service.open(keyLeaked, caller());
  expect((await at.service.get('i1')).incident.progress).toBe('contained');
});

test('unauthorized-use: no rekey; direct assignments removed, the others and the root cause become tasks; a protected principal is refused', async () => {
  const mk = (name: string, scope: string, principalId = 'intruder-id') => ({ id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`, name, scope, roleDefinitionId: 'r', principalId });
  const assignments = [mk('a1', VAULT_SCOPE), mk('a2', `${VAULT_SCOPE}/keys/k`), mk('a3', '/subscriptions/s/resourceGroups/rg'), mk('a4', CUSTOMER_SCOPE), mk('a5', VAULT_SCOPE, 'group-1')];
  const s = setup({ assignments });
  await s.service.open({ type: 'unauthorized-use', scope: { principals: ['intruder-id', 'keyturn-app'] }, description: 'odd use', severity: 'P1' }, caller());
  expect([...s.effects.keys()]).toEqual([`remove:${assignments[0]!.id}`, `remove:${assignments[1]!.id}`]);
  expect(s.calls.some((c) => /^(rekey|emergency|renew|markCompromised)/.test(c))).toBe(false);
  const view = await s.service.get('i1');
  expect(view.tasks.map((t) => t.title)).toEqual([
    expect.stringContaining('inherited assignment at /subscriptions/s/resourceGroups/rg'),
    expect.stringContaining('customer-vault assignment'),
    expect.stringContaining('group assignment'),
    expect.stringContaining('root cause'),
  ]);
  expect(view.timeline.find((e) => e.event === 'access.refused-protected')!.evidence).toMatchObject({ principalId: 'keyturn-app' });
  expect(view.incident.state).toBe('awaiting-action');
  expect(view.tasks.map((t) => t.blocking)).toEqual([true, true, true, false]);
  // The accesses closed by hand, the advisory root-cause task alone does not hold the incident: contained, the task still listed open.
  for (const t of view.tasks.filter((x) => x.blocking)) await s.service.updateTask('i1', t.taskId, { state: 'done', note: 'handled' }, caller());
  const contained = await s.service.get('i1');
  expect(contained.incident).toMatchObject({ progress: 'contained', state: 'contained' });
  expect(contained.tasks.filter((t) => t.state === 'open')).toEqual([expect.objectContaining({ title: expect.stringContaining('root cause'), blocking: false })]);
  await expect(s.service.close('i1', 'done', caller())).rejects.toMatchObject({ code: 'INCIDENT_NOT_CLOSABLE' });
  const rootCause = contained.tasks.find((t) => t.state === 'open')!;
  await s.service.updateTask('i1', rootCause.taskId, { state: 'done', note: 'handled', finding: 'a leaked CI token' }, caller());
  expect((await s.service.get('i1')).incident.state).toBe('contained');
});

test('algorithm-weakness: a lowering is a 400 before anything is recorded; a raise rekeys and rolls exactly the keys below it', async () => {
  const s = setup();
  await s.service.open({ type: 'algorithm-weakness', scope: { all: true }, details: { policy: { rsaMinBits: 3072 } }, description: 'RSA-2048 weak', severity: 'P2' }, caller('alice'));
  await s.service.approve('i1', caller('bob'));
  expect([...s.effects.keys()]).toEqual(['raise:3072', 'rekey:fabrikam:k-fab-1', 'replace:sig-1']);
  const counts = (await s.timeline('i1')).find((e) => e.event === 'playbook.counts')!;
  expect(counts.evidence).toMatchObject({ counts: { tenantKeys: 1, signingKeys: 1, customerTasks: 0 } });
});

test('key-leaked on a key-set key: add, re-encrypt (waiting for the batch job is no failure), retire, export stale, in order', async () => {
  const s = setup({ reencryptPolls: 5 });
  await s.service.open({ type: 'key-leaked', scope: { keySetKeys: [{ set: 'orders', keyId: 'k1' }] }, description: 'data key leaked', severity: 'P1' }, caller());
  for (let i = 0; i < 8 && (await s.deps.jobs.read('i1'))!.doc.status === 'active'; i++) {
    s.later(3_600_000);
    await s.service.kick('i1');
  }
  expect((await s.deps.jobs.read('i1'))!.doc.status).toBe('completed');
  expect(s.calls.filter((c) => c.startsWith('reencrypt-poll'))).toHaveLength(5);
  expect([...s.effects.keys()]).toEqual(['addKey:orders', 'reencrypt:orders', 'retireKey:orders:k1', 'flagExportStale:orders']);
  expect(events(await s.timeline('i1'))).toEqual(expect.arrayContaining(['keyset.key-added', 'keyset.reencrypted', 'keyset.key-retired', 'keyset.export-stale']));
});

const events = (timeline: { event: string }[]) => timeline.map((e) => e.event);
