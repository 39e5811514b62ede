/**
 * The playbook step runner against recording fakes of the life cycles' actions (the
 * real services are exercised by the playbook integration tests): which action each
 * planned step calls, with what, and what it writes on the timeline.
 */
import { type AffectedSnapshot, planPlaybook } from '../../../shared/domain/playbooks';
import { DEFAULT_KEY_POLICY } from '../../../shared/domain/tenantKeyPolicy';
import { type PlaybookActions, WAIT_FOR_JOB_MS, runPlaybookStep } from '../../../shared/services/playbooks/steps';

function recordingActions(options: { reencryptDoneAfter?: number } = {}) {
  const calls: [string, ...unknown[]][] = [];
  let reencryptPolls = 0;
  const actions: PlaybookActions = {
    tenants: {
      rekey: async (tenantId, input) => (calls.push(['tenants.rekey', tenantId, input]), { newKid: `${tenantId}-new` }),
      markCompromised: async (tenantId, kid) => (calls.push(['tenants.markCompromised', tenantId, kid]), { tenantState: 'rekey-required' }),
    },
    signing: {
      emergencyRollover: async (input) => (calls.push(['signing.emergencyRollover', input]), { signingKid: 'sig-next', disabledInKeyVault: true }),
      replace: async (input) => (calls.push(['signing.replace', input]), { signingKid: 'sig-3072', newKids: ['sig-3072'] }),
    },
    credentials: {
      renewWithoutGrace: async (id) => (calls.push(['credentials.renewWithoutGrace', id]), { rotationId: 'rot-1', state: 'retired', oldVersionDisabled: true }),
    },
    keySets: {
      addKey: async (set) => (calls.push(['keySets.addKey', set]), { keyId: 'k2' }),
      reencrypt: async (set) => {
        calls.push(['keySets.reencrypt', set]);
        reencryptPolls++;
        const completed = reencryptPolls > (options.reencryptDoneAfter ?? 0);
        return { jobId: 'job-1', completed, processed: completed ? 10 : 4, total: 10 };
      },
      retireKey: async (set, keyId) => void calls.push(['keySets.retireKey', set, keyId]),
      flagExportStale: async (set) => void calls.push(['keySets.flagExportStale', set]),
      rotateKek: async (set) => (calls.push(['keySets.rotateKek', set]), { kekVersion: 'v2', rewrapped: 2 }),
    },
    policy: { raise: async (to) => (calls.push(['policy.raise', to]), { version: 2 }) },
    access: {
      assignmentsOf: async (principalId) => (
        calls.push(['access.assignmentsOf', principalId]),
        [{ id: '/s/ra-1', name: 'ra-1', scope: '/s', roleDefinitionId: '/s/rd', principalId }]
      ),
      remove: async (a) => void calls.push(['access.remove', a.id]),
    },
  };
  return { actions, calls };
}

const empty: AffectedSnapshot = { tenants: [], tenantKids: [], signingKeys: [], credentials: [], keySets: [], keySetKeys: [], principals: [], vaults: [], assignments: [] };
const ctx = { protectedPrincipals: ['keyturn-app-oid'], policy: DEFAULT_KEY_POLICY };

test('key-leaked drives each life cycle once per step, and the timeline names what changed', async () => {
  const snapshot: AffectedSnapshot = {
    ...empty,
    tenants: [{ tenantId: 'fabrikam', topology: 'service-managed', vault: 'v', activeKid: 'f2', revoked: false, versions: [{ kid: 'f2', state: 'active', compromised: false }] }],
    signingKeys: [{ kid: 'sig-1', state: 'current', kty: 'RSA', rsaBits: 2048 }],
    credentials: ['main/db'],
    keySets: [{ set: 'conn', kekVault: 'v', kekOwned: true, keys: [{ keyId: 'k1', state: 'primary' }] }],
    keySetKeys: [{ set: 'conn', keyId: 'k1' }],
  };
  const { actions, calls } = recordingActions();
  const notes = [];
  for (const step of planPlaybook('key-leaked', {}, snapshot, ctx)) {
    const out = await runPlaybookStep(step, actions, 'incident i-1');
    expect(out.done).toBe(true);
    notes.push(...out.notes);
  }
  expect(calls).toEqual([
    ['tenants.rekey', 'fabrikam', { fromKid: 'f2', compromised: true, reason: 'incident i-1' }],
    ['signing.emergencyRollover', { kid: 'sig-1', compromised: true, reason: 'incident i-1' }],
    ['credentials.renewWithoutGrace', 'main/db'],
    ['keySets.addKey', 'conn'],
    ['keySets.reencrypt', 'conn'],
    ['keySets.retireKey', 'conn', 'k1'],
    ['keySets.flagExportStale', 'conn'],
  ]);
  expect(notes.map((n) => n.event)).toEqual([
    'playbook.rule',
    'tenant.rekeyed',
    'signing.emergency-rollover',
    'credential.renewed',
    'keyset.key-added',
    'keyset.reencrypted',
    'keyset.key-retired',
    'keyset.export-stale',
  ]);
  expect(notes[1]!.evidence).toEqual({ tenantId: 'fabrikam', compromisedKid: 'f2', newKid: 'fabrikam-new' });
});

test('a re-encryption still running makes its step wait (the retired key is not retired before it ends)', async () => {
  const { actions, calls } = recordingActions({ reencryptDoneAfter: 1 });
  const [step] = planPlaybook('key-leaked', {}, { ...empty, keySets: [{ set: 'conn', kekVault: 'v', kekOwned: true, keys: [{ keyId: 'k1', state: 'primary' }] }], keySetKeys: [{ set: 'conn', keyId: 'k1' }] }, ctx).filter((s) => s.kind === 'keyset-reencrypt');
  expect(await runPlaybookStep(step!, actions, 'i')).toEqual({ done: false, notes: [], retryAfterMs: WAIT_FOR_JOB_MS });
  expect((await runPlaybookStep(step!, actions, 'i')).done).toBe(true);
  expect(calls.filter((c) => c[0] === 'keySets.retireKey')).toEqual([]);
});

test('unauthorized-use lists then removes the direct assignment, never touches a protected principal, and opens the root-cause task', async () => {
  const snapshot: AffectedSnapshot = {
    ...empty,
    principals: ['intruder-oid', 'keyturn-app-oid'],
    vaults: ['v'],
    assignments: [{ id: '/s/ra-1', principalId: 'intruder-oid', scope: '/s', reach: 'direct' }],
  };
  const { actions, calls } = recordingActions();
  const tasks = [];
  for (const step of planPlaybook('unauthorized-use', {}, snapshot, ctx)) tasks.push(...((await runPlaybookStep(step, actions, 'i')) as { tasks: unknown[] }).tasks);
  expect(calls).toEqual([['access.assignmentsOf', 'intruder-oid'], ['access.remove', '/s/ra-1']]);
  expect(tasks).toEqual([expect.objectContaining({ reason: 'root-cause', blocking: false })]);
});

test('algorithm-weakness raises the policy before replacing the weak signing key', async () => {
  const { actions, calls } = recordingActions();
  const snapshot: AffectedSnapshot = { ...empty, signingKeys: [{ kid: 'sig-1', state: 'current', kty: 'RSA', rsaBits: 2048 }] };
  for (const step of planPlaybook('algorithm-weakness', { policy: { rsaMinBits: 3072 } }, snapshot, ctx)) await runPlaybookStep(step, actions, 'i');
  expect(calls.map((c) => c[0])).toEqual(['policy.raise', 'signing.replace']);
  expect(calls[0]![1]).toEqual({ rsaMinBits: 3072, forbiddenAlgorithms: ['RSA1_5'] });
});
