/**
 * In-memory ports for the playbook run tests (Cosmos DB, Key Vault and ARM are maps
 * here; the integration tests run the real ones): an incident service with a planning
 * inventory, and `PlaybookActions` that record each effect once per target (as the real
 * actions are idempotent on their own terms) and count every call.
 */
import { InjectedFault } from '../../../shared/adapters/faults';
import type { Incident } from '../../../shared/domain/incident';
import type { Checkpoint, EntryDoc } from '../../../shared/domain/incidentChain';
import type { IncidentJob } from '../../../shared/domain/incidentPlaybook';
import type { SigningKeySnapshot, TenantSnapshot } from '../../../shared/domain/playbooks';
import type { RoleAssignment } from '../../../shared/ports';
import { IncidentLog } from '../../../shared/services/incidents/log';
import { IncidentService, type IncidentServiceDeps } from '../../../shared/services/incidents/service';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { memoryEntries, versioned } from '../../helpers/memoryStores';
import type { PlaybookActions } from '../../../shared/services/playbooks/steps';

const quiet = { info() {}, warn() {}, error() {} };

export const VAULT_SCOPE = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/local';
export const CUSTOMER_SCOPE = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-byok';

export const TENANTS: TenantSnapshot[] = [
  { tenantId: 'fabrikam', topology: 'service-managed', vault: 'local', activeKid: 'k-fab-1', versions: [{ kid: 'k-fab-1', state: 'active', compromised: false, rsaBits: 2048 }], revoked: false },
  { tenantId: 'contoso', topology: 'byok', vault: 'contoso-byok', activeKid: 'k-con-1', versions: [{ kid: 'k-con-1', state: 'active', compromised: false, rsaBits: 3072 }], revoked: false },
];
export const SIGNING: SigningKeySnapshot[] = [{ kid: 'sig-1', state: 'current', kty: 'RSA', rsaBits: 2048 }];

export function setup(options: { failing?: { action: string; times: number }; threshold?: number; assignments?: RoleAssignment[]; reencryptPolls?: number } = {}) {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const clock = { now: async () => new Date((now += 1000)) };
  const incidents = versioned<Incident>();
  const jobs = versioned<IncidentJob>();
  const idem = versioned<{ id: string; fingerprint: string; expiresAt: string }>();
  const entryDocs = new Map<string, EntryDoc>();
  const cps = new Map<string, Checkpoint[]>();
  const entries = memoryEntries(entryDocs);
  const checkpoints = {
    latest: async (s: string) => cps.get(s)?.at(-1),
    all: async (s: string) => cps.get(s) ?? [],
    append: async (c: Checkpoint) => void cps.set(c.incidentId, [...(cps.get(c.incidentId) ?? []), c]),
    subjects: async () => [...cps.keys()],
    deleted: async () => undefined,
    deletedSubjects: async () => [],
  };
  let armed: string | undefined;
  const faults = {
    hit(point: string) {
      if (point === armed) {
        armed = undefined;
        throw new InjectedFault(point);
      }
    },
  };
  /** Effects by target (what a real, idempotent action changes once) and every call made. */
  const effects = new Map<string, number>();
  const calls: string[] = [];
  let failuresLeft = options.failing?.times ?? 0;
  const act = async <T>(name: string, target: string, result: T): Promise<T> => {
    calls.push(`${name}:${target}`);
    if (options.failing?.action === name && failuresLeft-- > 0) throw new Error(`${name} is down`);
    const key = `${name}:${target}`;
    if (!effects.has(key)) effects.set(key, effects.size + 1);
    return result;
  };
  let policyVersion = 1;
  let reencryptPolls = 0;
  const actions: PlaybookActions = {
    tenants: {
      rekey: (t, i) => act('rekey', `${t}:${i.fromKid}`, { newKid: `${i.fromKid}-next` }),
      markCompromised: (t, kid) => act('markCompromised', `${t}:${kid}`, { tenantState: 'rekey-required' }),
    },
    signing: {
      emergencyRollover: (i) => act('emergency', i.kid, { signingKid: `${i.kid}-next`, disabledInKeyVault: true }),
      replace: (i) => act('replace', i.kid, { signingKid: `${i.kid}-3072`, newKids: [`${i.kid}-3072`] }),
    },
    credentials: { renewWithoutGrace: (c) => act('renew', c, { rotationId: `r-${c}`, state: 'completed', oldVersionDisabled: true }) },
    keySets: {
      addKey: (s) => act('addKey', s, { keyId: 'k2' }),
      reencrypt: async (s) => {
        const polls = (reencryptPolls += 1);
        const completed = polls > (options.reencryptPolls ?? 0);
        return completed ? act('reencrypt', s, { jobId: 'j', completed, processed: 1, total: 1 }) : (calls.push(`reencrypt-poll:${s}`), { jobId: 'j', completed, processed: 0, total: 1 });
      },
      retireKey: (s, k) => act('retireKey', `${s}:${k}`, undefined),
      flagExportStale: (s) => act('flagExportStale', s, undefined),
      rotateKek: (s) => act('rotateKek', s, { kekVersion: 'v2', rewrapped: 1 }),
    },
    policy: { raise: (to) => act('raise', String(to.rsaMinBits), { version: ++policyVersion }) },
    access: {
      assignmentsOf: async (p) => (calls.push(`list:${p}`), (options.assignments ?? []).filter((a) => a.principalId === p)),
      remove: (a) => act('remove', a.id, undefined),
    },
  };
  const deps: IncidentServiceDeps = {
    incidents: { ...incidents, list: async () => ({ items: [...incidents.docs.values()].map((v) => v.doc) }), ids: async () => [...incidents.docs.keys()] },
    entries,
    checkpoints,
    jobs: { ...jobs, due: async () => [] },
    lookups: {
      tenants: async (ids) => TENANTS.filter((t) => !ids || ids.includes(t.tenantId)).map((t) => ({ ...t, state: 'active', adminContacts: [] })),
      tenantsByKid: async (kids) => TENANTS.filter((t) => t.versions.some((v) => kids.includes(v.kid))).map((t) => ({ ...t, state: 'active', adminContacts: [] })),
      signingKeys: async () => SIGNING,
      credential: async () => ({ version: 'v1' }),
      vaults: () => ['local', 'contoso-byok'],
      keySets: { sets: async (ids) => (ids ?? ['orders']).filter((id) => id === 'orders'), keys: async (refs) => refs.filter((r) => r.set === 'orders' && r.keyId === 'k1') },
    },
    chain: new IncidentLog({ entries, checkpoints, clock, faults, log: quiet, checkpointEvery: 10 }),
    notifier: { publish: async () => undefined },
    clock,
    log: quiet,
    leaseMs: 60_000,
    maxAttempts: 3,
    runner: new StepRunner({ clock, faults, log: quiet, owner: 'test' }),
    idempotency: { store: idem as never, clock, leaseMs: 60_000 },
    playbookActions: actions,
    playbooks: {
      inventory: {
        tenants: async (ids) => TENANTS.filter((t) => !ids || ids.includes(t.tenantId)),
        tenantsByKid: async (kids) => TENANTS.filter((t) => t.versions.some((v) => kids.includes(v.kid))),
        signingKeys: async () => SIGNING,
        keySets: async (ids) => (ids ?? ['orders']).filter((id) => id === 'orders').map((set) => ({ set, kekVault: 'local', kekOwned: true, keys: [{ keyId: 'k1', state: 'primary' as const }] })),
        credentialVersion: async () => 'v1',
        vaultScopes: () => ({ own: { local: VAULT_SCOPE }, customer: { 'contoso-byok': CUSTOMER_SCOPE } }),
        assignmentsAt: async (scope, principalId) => (options.assignments ?? []).filter((a) => a.principalId === principalId || a.principalId === 'group-1'),
      },
      context: async () => ({ protectedPrincipals: ['keyturn-app'], policy: { version: policyVersion, rsaMinBits: 2048, forbiddenAlgorithms: [] } }),
      approvalThreshold: options.threshold ?? 20,
    },
  };
  let ids = 0;
  const service = new IncidentService({ ...deps, newId: () => `i${++ids}` });
  return {
    service,
    deps,
    effects,
    calls,
    arm: (point: string) => void (armed = point),
    /** Moves the clock past the lease of a run that crashed. */
    later: (ms = 120_000) => void (now += ms),
    timeline: async (id: string) => (await service.get(id)).timeline,
  };
}
