/**
 * The listings a renewal skips, and only on proof (issue 16, item 3): verify lists
 * the pending secret's versions for orphans unless this invocation's only create claim
 * wrote its pending value with one send; promote lists the managed secret's versions for
 * duplicates unless the only promote claim's write was sent once. Each test here fails
 * if a skip were taken without that proof (a write the SDK sent twice, a re-claimed
 * create, a store that cannot count sends). In-memory fakes of the ports, symmetric
 * provider (nothing at a provider: the Key Vault calls are the whole story).
 */
import { randomBytes } from 'node:crypto';
import { InjectedFault, armedFaults } from '../../../shared/adapters/faults';
import { symmetricProvider } from '../../../shared/adapters/renewal/symmetricProvider';
import { DAY_MS, invariantViolations } from '../../../shared/domain/rotation';
import { RenewalService } from '../../../shared/services/renewal/renewalService';
import { FakeClock, FakeDeadLetters, FakeNotifier, FakeRotations, FakeSecrets, MemoryLogger, recordingVerified } from './fakes';

const LEASE_S = 60;

function world() {
  const clock = new FakeClock();
  const secrets = new FakeSecrets(clock);
  const rotations = new FakeRotations();
  const notifier = new FakeNotifier();
  const log = new MemoryLogger();
  const provider = recordingVerified(symmetricProvider, secrets);
  const providers = { symmetric: provider, 'entra-app-password': provider };
  const settings = {
    vaults: { local: 'https://127.0.0.1:8443' },
    eventVaultNames: { 'keyturn-local': 'local' },
    windowDays: 30,
    maxAttempts: 3,
    defaultValidityDays: 365,
    defaultGraceDays: 7,
    leaseSeconds: LEASE_S,
  };
  const deadLetters = new FakeDeadLetters();
  const worker = (owner: string) => new RenewalService({ rotations, secrets, providers, deadLetters, notifier, clock, faults: armedFaults([]), log, settings, owner });
  // Every listing of versions, by secret name: what the skips save.
  const listed: string[] = [];
  const versions = secrets.versions.bind(secrets);
  secrets.versions = async (vault, name) => (listed.push(name), versions(vault, name));
  const seed = (name = 'db-key') =>
    secrets.seed('local', name, randomBytes(32).toString('base64'), {
      tags: { 'keyturn-provider': 'symmetric', 'keyturn-grace-days': '7' },
      expiresOn: new Date(clock.time.getTime() + 10 * DAY_MS),
    });
  const event = (name: string, version: string) => ({
    id: `near-${Math.random()}`,
    topic: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/keyturn-local',
    subject: name,
    eventType: 'Microsoft.KeyVault.SecretNearExpiry',
    eventTime: clock.time.toISOString(),
    data: { Id: `https://x/secrets/${name}/${version}`, VaultName: 'keyturn-local', ObjectType: 'Secret', ObjectName: name, Version: version, NBF: null, EXP: 1 },
    dataVersion: '1',
    metadataVersion: '1',
  });
  const enabledPending = (name: string) => secrets.all('local', `${name}--pending`).filter((v) => v.enabled);
  /** Retries until the rotation is in grace (promoted, announced). */
  const untilGrace = async (service: RenewalService) => {
    for (let i = 0; i < 5 && rotations.all()[0]?.step !== 'retire'; i++) {
      clock.advance(3600_000);
      await service.resumeDue();
    }
    expect(rotations.all()[0]).toMatchObject({ status: 'active', step: 'retire' });
  };
  /** Past grace: retired; the end state every renewal must reach. */
  const completes = async (service: RenewalService, name: string) => {
    clock.advance(8 * DAY_MS);
    await service.resumeDue();
    expect(rotations.all()[0]!.status).toBe('completed');
    const all = secrets.all('local', name);
    expect(all.map((v) => v.enabled)).toEqual([false, true]);
    expect(enabledPending(name)).toEqual([]);
    for (const r of rotations.all()) expect(invariantViolations(r)).toEqual([]);
  };
  return { clock, secrets, rotations, notifier, listed, worker, seed, event, enabledPending, untilGrace, completes };
}

describe('a first-try renewal whose writes were each sent once', () => {
  test('lists no versions until grace; the pending copy is disabled and the old version tagged previous all the same', async () => {
    const w = world();
    const s = w.seed();
    await w.worker('A').handleEvent(w.event(s.name, s.version));
    expect(w.rotations.all()[0]).toMatchObject({ status: 'active', step: 'retire' });
    expect(w.listed).toEqual([]);
    expect(w.enabledPending(s.name)).toEqual([]);
    const [old, current] = w.secrets.all('local', s.name);
    expect(old).toMatchObject({ enabled: true, tags: expect.objectContaining({ 'keyturn-stage': 'previous' }) });
    expect(current!.tags['keyturn-stage']).toBe('current');
    expect(w.notifier.events).toHaveLength(1);
    await w.completes(w.worker('A'), s.name);
    // Retire lists each secret once for all its clean-ups (duplicates, the old version; orphans, the pending copy).
    expect(w.listed).toEqual([s.name, `${s.name}--pending`]);
  });

  test('a store that cannot tell how often a write was sent: verify and promote list as before', async () => {
    const w = world();
    w.secrets.countsAttempts = false;
    const s = w.seed();
    await w.worker('A').handleEvent(w.event(s.name, s.version));
    expect(w.listed).toEqual([`${s.name}--pending`, s.name]);
    expect(w.enabledPending(s.name)).toEqual([]);
    await w.completes(w.worker('A'), s.name);
  });
});

describe('verify still removes orphans when the pending write may have made more than one version', () => {
  test.each([
    ['then answered', false],
    ['then lost its answer (the try fails, the next claim adopts)', true],
  ])('an SDK retry landed the pending write twice, %s: only the recorded copy is enabled when promote writes', async (_label, lost) => {
    const w = world();
    const s = w.seed();
    w.secrets.pendingWriteFaults.push({ commits: 2, lost });
    let atPromote: string[] | undefined;
    w.secrets.afterCommit = async (p) => {
      if (p.name === s.name) atPromote = w.enabledPending(s.name).map((v) => v.version);
    };
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    await w.untilGrace(a);
    const pending = w.secrets.all('local', `${s.name}--pending`);
    expect(pending).toHaveLength(2);
    const r = w.rotations.all()[0]!;
    // Before promotion the duplicate was already off (verify's doing: promote disables only the recorded one).
    expect(atPromote).toEqual([r.pending!.version]);
    expect(pending.map((v) => v.tags['keyturn-stage'])).toEqual(['retired', 'retired']);
    expect(w.listed).toContain(`${s.name}--pending`);
    await w.completes(a, s.name);
  });

  test('a re-claimed create: the first claim’s write that landed after the new holder looked is removed by verify', async () => {
    const w = world();
    const s = w.seed();
    const b = w.worker('B');
    const write = w.secrets.write.bind(w.secrets);
    let bRun: Promise<unknown> | undefined;
    let bRecordedCreate!: () => void;
    const bAtVerify = new Promise<void>((resolve) => (bRecordedCreate = resolve));
    let releaseB!: () => void;
    const bHeld = new Promise<void>((resolve) => (releaseB = resolve));
    // A's pending write is slow: its lease lapses in flight, B takes the step over and writes its own first.
    w.secrets.write = async (vault, name, value, options) => {
      if (bRun || !name.endsWith('--pending')) return write(vault, name, value, options);
      w.clock.advance((LEASE_S + 1) * 1000);
      bRun = b.resumeDue();
      await bAtVerify;
      await write(vault, name, value, options); // A's value lands now…
      throw new InjectedFault('after the pending write'); // …and A's process dies: nobody discards it
    };
    let held = false;
    w.rotations.beforeReplace = async (doc) => {
      // B recorded its create (the claim of verify follows): hold it there until A's write has landed.
      if (!held && bRun && doc.step === 'verify' && doc.pending && doc.steps.verify?.tokens?.length) {
        held = true;
        bRecordedCreate();
        await bHeld;
      }
    };
    await expect(w.worker('A').handleEvent(w.event(s.name, s.version))).rejects.toThrow(/after the pending write/);
    expect(w.enabledPending(s.name)).toHaveLength(2); // B's recorded copy and A's orphan
    releaseB();
    await bRun;
    const r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'retire' });
    expect(r.steps.create!.tokens).toHaveLength(2);
    const pending = w.secrets.all('local', `${s.name}--pending`);
    const orphan = pending.find((v) => v.tags['keyturn-step-token'] === r.steps.create!.tokens[0]);
    expect(orphan).toMatchObject({ enabled: false, tags: expect.objectContaining({ 'keyturn-stage': 'retired' }) });
    expect(orphan!.version).not.toBe(r.pending!.version);
    expect(w.enabledPending(s.name)).toEqual([]);
    await w.completes(b, s.name);
  });
});

describe('promote still disables duplicates when its write may have landed twice', () => {
  test('an SDK retry landed the promote write twice and answered: the older copy is disabled at promote', async () => {
    const w = world();
    const s = w.seed();
    w.secrets.writeFaults.push({ commits: 2, lost: false });
    await w.worker('A').handleEvent(w.event(s.name, s.version));
    const versions = w.secrets.all('local', s.name);
    expect(versions.map((v) => v.enabled)).toEqual([true, false, true]);
    expect(w.rotations.all()[0]!.promoted!.version).toBe(versions[2]!.version);
    expect(w.listed).toContain(s.name);
  });
});
