/**
 * The renewal service against in-memory fakes of its ports. The entra-app-password
 * provider is the real Graph adapter talking to a local Graph stub (127.0.0.1),
 * because Microsoft Graph cannot run here; the stub speaks Graph's wire format for
 * addPassword, removePassword and GET application passwordCredentials.
 */
import { createHash, randomBytes } from 'node:crypto';
import { armedFaults } from '../../../shared/adapters/faults';
import { graphAppPasswordProvider } from '../../../shared/adapters/renewal/graphAppPasswordProvider';
import { symmetricProvider } from '../../../shared/adapters/renewal/symmetricProvider';
import { DAY_MS, STEP_FAILURE, invariantViolations, startRotation } from '../../../shared/domain/rotation';
import type { KeyVaultEventHandler } from '../../../shared/services/events/ports';
import { RenewalService } from '../../../shared/services/renewal/renewalService';
import { FakeClock, FakeDeadLetters, FakeIdempotency, FakeNotifier, FakeRotations, FakeSecrets, MemoryLogger, recordingVerified } from './fakes';
import { type GraphStub, existingPassword, startGraphStub } from './graphStub';

const TOPIC = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/keyturn-local';
const APP = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';
const LEASE_S = 60;

let graph: GraphStub;
beforeAll(async () => (graph = await startGraphStub()));
afterAll(() => graph.stop());

function world(options: { maxAttempts?: number } = {}) {
  const clock = new FakeClock();
  const secrets = new FakeSecrets(clock);
  const rotations = new FakeRotations();
  const deadLetters = new FakeDeadLetters();
  const notifier = new FakeNotifier();
  const idempotency = new FakeIdempotency();
  const log = new MemoryLogger();
  const keyEvents: KeyVaultEventHandler & { seen: string[] } = {
    name: 'keys',
    seen: [],
    async handle({ event }) {
      if (event.objectType !== 'Key') return { answer: 'not-mine' };
      keyEvents.seen.push(event.objectName);
      return { answer: 'handled', outcome: 'seen' };
    },
  };
  const graphProvider = graphAppPasswordProvider({ endpoint: graph.url, credential: { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3600_000 }) } });
  const providers = {
    symmetric: recordingVerified(symmetricProvider, secrets),
    'entra-app-password': recordingVerified(graphProvider, secrets),
  };
  const settings = {
    vaults: { local: 'https://127.0.0.1:8443' },
    eventVaultNames: { 'keyturn-local': 'local' },
    windowDays: 30,
    maxAttempts: options.maxAttempts ?? 3,
    defaultValidityDays: 365,
    defaultGraceDays: 7,
    leaseSeconds: LEASE_S,
  };
  const worker = (owner: string, faults: string[] = []) =>
    new RenewalService({ rotations, secrets, providers, deadLetters, keyEvents, idempotency, notifier, clock, faults: armedFaults(faults), log, settings, owner });

  const seedSymmetric = (name = 'db-key', days = 10) =>
    secrets.seed('local', name, randomBytes(32).toString('base64'), {
      tags: { 'keyturn-provider': 'symmetric', 'keyturn-grace-days': '7', owner: 'team-a' },
      expiresOn: new Date(clock.time.getTime() + days * DAY_MS),
    });
  const seedEntra = (name = 'app-secret', days = 10) => {
    const old = existingPassword('before Keyturn');
    graph.addApp(APP, [old]);
    const props = secrets.seed('local', name, old.secretText, {
      tags: { 'keyturn-provider': 'entra-app-password', ProviderAddress: APP, CredentialId: old.keyId, ValidityPeriodDays: '60' },
      expiresOn: new Date(clock.time.getTime() + days * DAY_MS),
    });
    return { props, old };
  };
  const event = (name: string, version: string, kind = 'SecretNearExpiry', id = `${kind}-${Math.random()}`) => ({
    id,
    topic: TOPIC,
    subject: name,
    eventType: `Microsoft.KeyVault.${kind}`,
    eventTime: clock.time.toISOString(),
    data: { Id: `https://x/secrets/${name}/${version}`, VaultName: 'keyturn-local', ObjectType: 'Secret', ObjectName: name, Version: version, NBF: null, EXP: 1 },
    dataVersion: '1',
    metadataVersion: '1',
  });

  /** No value (ours, the stub's, the seeds') appears in records, logs, notifications or dead letters. */
  const assertNoLeaks = () => {
    const values = [...secrets.values(), ...graph.issuedSecrets()];
    const outside = JSON.stringify([rotations.all(), log.lines, notifier.events, [...deadLetters.letters.values()]]);
    for (const v of values) expect(outside.includes(v)).toBe(false);
  };

  /** The end state of a completed rotation of `name`; `oldValue` was current before. */
  const assertRotated = (name: string, oldValue: string, provider: 'symmetric' | 'entra') => {
    const versions = secrets.all('local', name);
    expect(versions).toHaveLength(2);
    const [old, current] = versions;
    expect(current!.enabled).toBe(true);
    expect(current!.tags['keyturn-stage']).toBe('current');
    expect(current!.value).not.toBe(oldValue);
    expect(secrets.verified.has(current!.value)).toBe(true);
    expect(old!.enabled).toBe(false);
    expect(old!.tags['keyturn-stage']).toBe('retired');
    expect(secrets.all('local', `${name}--pending`).filter((v) => v.enabled)).toHaveLength(0);
    if (provider === 'entra') {
      const passwords = graph.passwords(APP);
      expect(passwords.map((p) => p.keyId)).toEqual([current!.tags['keyturn-credential-id']]);
      expect(current!.tags.CredentialId).toBe(current!.tags['keyturn-credential-id']);
      expect(passwords[0]!.secretText).toBe(current!.value);
    }
    for (const r of rotations.all()) expect(invariantViolations(r)).toEqual([]);
    expect(new Set(notifier.events.map((e) => e.id)).size).toBe(1);
    assertNoLeaks();
  };

  /** A rotation of the seeded secret's current version, stored but not yet advanced. */
  const stored = async (props: { name: string; version: string; tags: Record<string, string> }, provider: 'symmetric' | 'entra-app-password' = 'entra-app-password') => {
    const r = startRotation(
      {
        vault: 'local',
        name: props.name,
        fromVersion: props.version,
        provider,
        validityDays: 60,
        graceDays: 7,
        trigger: 'renew',
        ...(provider === 'entra-app-password' ? { appObjectId: APP, previousCredentialRef: props.tags.CredentialId } : {}),
      },
      clock.time,
    );
    await rotations.create(r);
    return r.id;
  };

  return { clock, secrets, rotations, deadLetters, idempotency, notifier, log, keyEvents, providers, worker, seedSymmetric, seedEntra, event, stored, assertNoLeaks, assertRotated };
}

const isCrash = (e: unknown) => e instanceof Error && e.name === 'InjectedFault';

/** Runs `fn` while Graph does not list new passwords, so verification never sees them. */
async function hidingNewPasswords(fn: () => Promise<void>) {
  graph.hideNewPasswords = true;
  try {
    await fn();
  } finally {
    graph.hideNewPasswords = false;
  }
}

describe('a NearExpiry event renews the credential', () => {
  test.each(['symmetric', 'entra'] as const)('%s: create → verify → promote → notify, then retire after grace', async (provider) => {
    const w = world();
    const seeded = provider === 'symmetric' ? w.seedSymmetric() : w.seedEntra().props;
    const oldValue = w.secrets.consumerRead('local', seeded.name);
    const a = w.worker('A');

    const outcome = await a.handleEvent(w.event(seeded.name, seeded.version));
    expect(outcome).toEqual({ outcome: 'started', rotationId: `local:${seeded.name}:${seeded.version}:1` });
    const r = w.rotations.all()[0]!;
    expect(r.step).toBe('retire');
    expect(r.retireAfter).toBe(new Date(w.clock.time.getTime() + 7 * DAY_MS).toISOString());

    // Promoted and announced; the old one is previous and still enabled during grace.
    const [old, current] = w.secrets.all('local', seeded.name);
    expect(w.secrets.consumerRead('local', seeded.name)).toBe(current!.value);
    expect(old).toMatchObject({ enabled: true, tags: expect.objectContaining({ 'keyturn-stage': 'previous' }) });
    const validity = provider === 'symmetric' ? 365 : 60;
    expect(current!.expiresOn!.getTime()).toBe(w.clock.time.getTime() + validity * DAY_MS);
    expect(current!.tags).toMatchObject(provider === 'symmetric' ? { owner: 'team-a', 'keyturn-provider': 'symmetric' } : { ProviderAddress: APP });
    expect(Buffer.from(current!.value, provider === 'symmetric' ? 'base64' : 'utf8').length).toBe(provider === 'symmetric' ? 32 : current!.value.length);
    expect(w.notifier.events).toEqual([
      {
        id: `${r.id}:rotated`,
        eventType: 'Keyturn.CredentialRotated',
        subject: `/vaults/local/secrets/${seeded.name}`,
        data: expect.objectContaining({ vault: 'local', name: seeded.name, newVersion: current!.version, previousVersion: seeded.version, previousRetiresAfter: r.retireAfter }),
      },
    ]);
    if (provider === 'entra') expect(graph.passwords(APP)).toHaveLength(2);

    // Not before the grace period…
    w.clock.advance(7 * DAY_MS - 1000);
    await a.resumeDue();
    expect(w.secrets.all('local', seeded.name)[0]!.enabled).toBe(true);
    // …then retired.
    w.clock.advance(1000);
    expect(await a.resumeDue()).toEqual({ due: 1, advanced: 1, errors: 0 });
    expect(w.rotations.all()[0]!.status).toBe('completed');
    w.assertRotated(seeded.name, oldValue, provider);
  });
});

describe('duplicate and out-of-order deliveries', () => {
  test('five deliveries in any order, to two workers at once → one rotation, one new version', async () => {
    const w = world();
    const s = w.seedSymmetric();
    const events = [
      w.event(s.name, s.version, 'SecretExpired', 'x1'),
      w.event(s.name, s.version, 'SecretNearExpiry', 'n1'),
      w.event(s.name, s.version, 'SecretNearExpiry', 'n1'),
      w.event(s.name, s.version.toUpperCase(), 'SecretNearExpiry', 'n2'),
      w.event(s.name.toUpperCase(), s.version, 'SecretExpired', 'x2'),
    ];
    const [a, b] = [w.worker('A'), w.worker('B')];
    const outcomes = await Promise.all(events.map((e, i) => (i % 2 ? a : b).handleEvent(e)));
    expect(outcomes.filter((o) => o.outcome === 'started')).toHaveLength(1);
    expect(w.rotations.all()).toHaveLength(1);
    expect(w.secrets.writes.filter((x) => x.name === s.name)).toHaveLength(1);
    // A late event for the replaced version is acknowledged and changes nothing.
    expect(await a.handleEvent(w.event(s.name, s.version, 'SecretExpired'))).toEqual({ outcome: 'ignored', reason: 'version is no longer current' });
    w.clock.advance(8 * DAY_MS);
    await Promise.all([a.resumeDue(), b.resumeDue()]);
    expect(w.rotations.all()[0]!.status).toBe('completed');
    expect(w.secrets.all('local', s.name)).toHaveLength(2);
    w.assertNoLeaks();
  });

  test('unmanaged secrets, pending siblings and unknown secrets are acknowledged', async () => {
    const w = world();
    const plain = w.secrets.seed('local', 'plain', 'not-managed-value', { tags: {} });
    const a = w.worker('A');
    expect(await a.handleEvent(w.event('plain', plain.version))).toEqual({ outcome: 'ignored', reason: 'not managed by Keyturn' });
    expect(await a.handleEvent(w.event('db--pending', 'abc'))).toMatchObject({ outcome: 'ignored' });
    expect(await a.handleEvent(w.event('nothing', 'abc'))).toEqual({ outcome: 'ignored', reason: 'secret not found' });
    expect(w.rotations.all()).toHaveLength(0);
  });

  test('malformed, oversized and spoofed events are recorded as dead letters and change nothing', async () => {
    const w = world();
    const s = w.seedSymmetric();
    const a = w.worker('A');
    const spoofed = { ...w.event(s.name, s.version), topic: TOPIC.replace('keyturn-local', 'evil-vault') };
    spoofed.data.VaultName = 'evil-vault';
    const oversized = { ...w.event(s.name, s.version), data: { ...w.event(s.name, s.version).data, Pad: 'x'.repeat(70_000) } };
    expect(await a.handleEvent({ nonsense: true })).toEqual({ outcome: 'dead-lettered', reason: 'malformed' });
    expect(await a.handleEvent(oversized)).toEqual({ outcome: 'dead-lettered', reason: 'oversized' });
    expect(await a.handleEvent(spoofed)).toEqual({ outcome: 'dead-lettered', reason: 'spoofed' });
    const letters = [...w.deadLetters.letters.values()];
    expect(letters.map((l) => l.reason).sort()).toEqual(['malformed', 'oversized', 'spoofed']);
    expect(letters.find((l) => l.reason === 'spoofed')).toMatchObject({ source: spoofed.topic, detail: expect.stringContaining('evil-vault') });
    // A projection of the event, never its data values: the raw event is known by its hash and size.
    const stored = JSON.stringify(letters);
    for (const value of ['https://x/secrets/', 'x'.repeat(100), 'nonsense']) expect(stored.includes(value)).toBe(false);
    expect(letters.find((l) => l.reason === 'oversized')).toMatchObject({
      bytes: Buffer.byteLength(JSON.stringify(oversized)),
      sha256: createHash('sha256').update(JSON.stringify(oversized)).digest('hex'),
      event: {
        id: oversized.id,
        eventType: 'Microsoft.KeyVault.SecretNearExpiry',
        subject: s.name,
        topic: TOPIC,
        dataVersion: '1',
        eventTime: oversized.eventTime,
        dataKeys: ['EXP', 'Id', 'NBF', 'ObjectName', 'ObjectType', 'Pad', 'VaultName', 'Version'],
        dataKeyCount: 8,
      },
    });
    expect(letters.find((l) => l.reason === 'malformed')).toMatchObject({ source: 'unknown', event: { dataKeys: [], dataKeyCount: null } });
    for (const l of letters) expect(Object.keys(l).sort()).toEqual(['bytes', 'detail', 'event', 'id', 'reason', 'receivedAt', 'sha256', 'source']);
    expect(w.rotations.all()).toHaveLength(0);
    expect(w.secrets.all('local', s.name)).toHaveLength(1);
  });

  test('key events go to the KeyEventHandler port', async () => {
    const w = world();
    const e = { ...w.event('signing', 'abc'), eventType: 'Microsoft.KeyVault.KeyNearExpiry' };
    e.data.ObjectType = 'Key';
    expect(await w.worker('A').handleEvent(e)).toEqual({ outcome: 'routed' });
    expect(w.keyEvents.seen).toEqual(['signing']);
  });
});

describe('concurrent invocations in one process (one lease owner)', () => {
  test.each([
    ['two services sharing the process owner', 2],
    ['Promise.all on one service', 1],
  ] as const)('%s: advance(id) at once → one new version, no orphan at Graph, pending switched off', async (_label, services) => {
    const w = world();
    const { props: s, old } = w.seedEntra();
    const id = await w.stored(s);
    // Same owner string, as for the event's kick and the resume timer in one worker.
    const workers = services === 2 ? [w.worker('host-1:42'), w.worker('host-1:42')] : [w.worker('host-1:42')];
    await Promise.all([0, 1, 2].map((i) => workers[i % workers.length]!.advance(id)));
    await workers[0]!.resumeDue();

    const r = (await w.rotations.read(id))!.doc;
    expect(r.step).toBe('retire');
    expect(w.secrets.writes.filter((x) => x.name === s.name)).toHaveLength(1);
    const current = w.secrets.all('local', s.name).at(-1)!;
    expect(graph.passwords(APP).map((p) => p.keyId).sort()).toEqual([old.keyId, current.tags['keyturn-credential-id']].sort());
    expect(w.secrets.all('local', `${s.name}--pending`).filter((v) => v.enabled)).toHaveLength(0);
    expect(w.notifier.events).toHaveLength(1);

    w.clock.advance(8 * DAY_MS);
    await Promise.all([workers[0]!.resumeDue(), workers.at(-1)!.advance(id)]);
    expect((await w.rotations.read(id))!.doc.status).toBe('completed');
    w.assertRotated(s.name, old.secretText, 'entra');
  });
});

const POINTS = ['create', 'verify', 'promote', 'notify', 'retire'].flatMap((s) => [`${s}:before`, `${s}:claimed`, `${s}:after`]);

describe('a crash at any step boundary resumes without repeating a side effect', () => {
  test.each([
    ...POINTS.map((p) => ['symmetric', p] as const),
    ...[...POINTS, 'create:provider'].map((p) => ['entra', p] as const),
  ])('%s, crash at %s', async (provider, point) => {
    const w = world();
    const seeded = provider === 'symmetric' ? w.seedSymmetric() : w.seedEntra().props;
    const oldValue = w.secrets.consumerRead('local', seeded.name);
    let crashed = false;
    const run = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        if (!isCrash(e)) throw e;
        crashed = true;
      }
    };
    const a = w.worker('A', [`${point}*1`]);
    const b = w.worker('B'); // the restarted process: a new owner
    await run(() => a.handleEvent(w.event(seeded.name, seeded.version)));
    for (let i = 0; i < 4 && w.rotations.all()[0]?.status !== 'completed'; i++) {
      w.clock.advance(8 * DAY_MS); // past the lease and the grace period
      await run(() => (crashed ? b : a).resumeDue());
    }
    expect(crashed).toBe(true);
    expect(w.rotations.all()).toHaveLength(1);
    expect(w.rotations.all()[0]!.status).toBe('completed');
    expect(w.secrets.writes.filter((x) => x.name === seeded.name)).toHaveLength(1);
    if (provider === 'entra') {
      // A password whose text was lost (crash between addPassword and storing it) is removed, then made again.
      const adds = graph.calls.filter((c) => c.path === `/v1.0/applications/${APP}/addPassword`).length;
      expect(adds).toBe(point === 'create:provider' ? 2 : 1);
    }
    w.assertRotated(seeded.name, oldValue, provider);
  });

  beforeEach(() => void (graph.calls.length = 0));
});

describe('failure and the next attempt', () => {
  test('after maxAttempts failures the rotation is failed, the old credential stays current, renew starts attempt 2 and cleans up', async () => {
    const w = world({ maxAttempts: 3 });
    const { props: s } = w.seedEntra();
    const oldValue = w.secrets.consumerRead('local', s.name);
    const a = w.worker('A');
    await hidingNewPasswords(async () => {
      await a.handleEvent(w.event(s.name, s.version));
      for (let i = 0; i < 5; i++) {
        w.clock.advance(3600_000);
        await a.resumeDue();
      }
    });
    const failed = w.rotations.all()[0]!;
    expect(failed.status).toBe('failed');
    expect(failed.lastError?.step).toBe('verify');
    expect(w.secrets.consumerRead('local', s.name)).toBe(oldValue);
    expect(w.log.lines.some((l) => l.startsWith('error ALERT: credential rotation failed'))).toBe(true);
    // Before it was written failed, what it created went: no valid credential is left behind.
    expect(failed.cleanup).toMatchObject({ state: 'done', tries: 1 });
    expect(failed.dueAt).toBeUndefined();
    expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([w.secrets.all('local', s.name)[0]!.tags.CredentialId]);
    expect(w.secrets.all('local', `${s.name}--pending`).map((v) => v.enabled)).toEqual([false]);

    // The sweep re-alerts daily while it stays failed.
    w.clock.advance(DAY_MS);
    expect((await a.sweep()).alerted).toEqual([failed.id]);
    expect((await a.sweep()).alerted).toEqual([]);

    const view = await a.renew('local', s.name);
    expect(view).toMatchObject({ id: `local:${s.name}:${s.version}:2`, attempt: 2, state: 'grace' });
    // In grace the old rotation is no longer in flight: a renew targets the new current version.
    const newVersion = w.secrets.all('local', s.name).at(-1)!.version;
    await expect(a.renew('local', s.name)).resolves.toMatchObject({ fromVersion: newVersion, attempt: 1 });
    w.clock.advance(8 * DAY_MS);
    await a.resumeDue();
    // Attempt 2 removed attempt 1's password and disabled its pending value.
    const attempt2 = w.rotations.all().find((r) => r.attempt === 2)!;
    expect(attempt2.status).toBe('completed');
    expect(w.secrets.all('local', `${s.name}--pending`).every((v) => !v.enabled)).toBe(true);
    expect(graph.passwords(APP).map((p) => p.keyId)).not.toContain(failed.pending!.credentialRef);
    w.assertNoLeaks();
  });

  test('renew: 409 while a rotation is in flight, 404 for unknown vaults or secrets, NOT_MANAGED otherwise', async () => {
    const w = world();
    const s = w.seedSymmetric();
    w.secrets.seed('local', 'plain', randomBytes(16).toString('hex'), { tags: {} });
    const a = w.worker('A', ['verify:before']); // stays in flight
    await expect(a.renew('local', s.name)).rejects.toThrow(/Injected/);
    await expect(w.worker('B').renew('local', s.name)).rejects.toMatchObject({ code: 'ROTATION_IN_FLIGHT', details: { rotationId: `local:db-key:${s.version}:1` } });
    await expect(w.worker('B').renew('nowhere', s.name)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(w.worker('B').renew('local', 'missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(w.worker('B').renew('local', 'plain')).rejects.toMatchObject({ code: 'NOT_MANAGED' });
  });

  test('a failing provider is retried with backoff before the rotation fails', async () => {
    const w = world({ maxAttempts: 5 });
    const { props: s } = w.seedEntra();
    graph.failNext(2, 503, 'addPassword');
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    const r = w.rotations.all()[0]!;
    expect(r.step).toBe('create');
    expect(r.lastError).toMatchObject({ step: 'create', message: STEP_FAILURE.create, name: 'GraphError', code: 'ServiceUnavailable', statusCode: 503 });
    for (let i = 0; i < 3; i++) {
      w.clock.advance(3600_000);
      await a.resumeDue();
    }
    expect(w.rotations.all()[0]!.steps.create!.failures).toBe(2);
    expect(w.rotations.all()[0]!.step).toBe('retire');
  });
});

describe('failures after promotion: the rotation only goes forward', () => {
  const LEAKY = 'connect ECONNREFUSED https://topic.example/api/events?aeg-sas-key=not-for-records';

  test('a notify that fails more than maxAttempts times is retried until it succeeds; the old credential is retired after grace', async () => {
    const w = world({ maxAttempts: 3 });
    const { props: s, old } = w.seedEntra();
    let failures = 5;
    const publish = w.notifier.publish.bind(w.notifier);
    w.notifier.publish = async (e) => {
      if (failures-- > 0) throw Object.assign(new Error(LEAKY), { code: 'ECONNREFUSED' });
      return publish(e);
    };
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    for (let i = 0; i < 4; i++) {
      w.clock.advance(3600_000);
      await a.resumeDue();
    }
    let r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'notify', steps: { notify: { failures: 5 } } });
    expect(r.lastError).toMatchObject({ step: 'notify', message: STEP_FAILURE.notify, name: 'Error', code: 'ECONNREFUSED' });
    expect(w.log.lines.filter((l) => l.startsWith('error ALERT: credential rotation is stuck at notify'))).toHaveLength(1);
    expect(w.log.lines.some((l) => l.includes('old credential stays current'))).toBe(false);
    // The error's text is in the log only: not in the record, the rotation view or the listing.
    expect(w.log.lines.some((l) => l.includes(LEAKY))).toBe(true);
    const shown = JSON.stringify([w.rotations.all(), await a.getRotation(r.id), await a.listCredentials()]);
    expect(shown.includes('topic.example')).toBe(false);
    expect(shown.includes('ECONNREFUSED https')).toBe(false);

    w.clock.advance(3600_000);
    await a.resumeDue();
    r = w.rotations.all()[0]!;
    expect(r.step).toBe('retire');
    expect(r.notifiedAt).toBeDefined();
    expect(w.notifier.events).toHaveLength(1);
    w.clock.advance(8 * DAY_MS);
    await a.resumeDue();
    expect(w.rotations.all()[0]!.status).toBe('completed');
    w.assertRotated(s.name, old.secretText, 'entra');
  });

  test('a pending copy that cannot be disabled at promote is disabled by notify before it publishes, retried with backoff', async () => {
    const w = world({ maxAttempts: 3 });
    const s = w.seedSymmetric();
    const oldValue = w.secrets.consumerRead('local', s.name);
    const update = w.secrets.update.bind(w.secrets);
    let failures = 3; // promote's clean-up, then notify twice
    w.secrets.update = async (vault, name, version, changes) => {
      if (name.endsWith('--pending') && failures-- > 0) throw Object.assign(new Error('Service Unavailable'), { statusCode: 503 });
      return update(vault, name, version, changes);
    };
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    let r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'notify', steps: { notify: { failures: 1 } } });
    expect(r.promoted!.tidied).toBeUndefined();
    expect(w.secrets.all('local', `${s.name}--pending`).filter((v) => v.enabled)).toHaveLength(1);
    expect(w.notifier.events).toHaveLength(0); // consumers hear of it only once it is clean
    expect(r.nextAttemptAt! > w.clock.time.toISOString()).toBe(true);

    await a.resumeDue(); // not due yet: backoff
    expect(w.rotations.all()[0]!.steps.notify!.failures).toBe(1);
    for (let i = 0; i < 2; i++) {
      w.clock.advance(3600_000);
      await a.resumeDue();
    }
    r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'retire', steps: { notify: { failures: 2 } } });
    expect(w.secrets.all('local', `${s.name}--pending`).filter((v) => v.enabled)).toHaveLength(0);
    expect(w.secrets.all('local', s.name)[0]!.tags['keyturn-stage']).toBe('previous');
    expect(w.notifier.events).toHaveLength(1);
    w.clock.advance(8 * DAY_MS);
    await a.resumeDue();
    w.assertRotated(s.name, oldValue, 'symmetric');
  });

  test('a promote whose clean-up finished records it, so notify has nothing to redo', async () => {
    const w = world();
    const s = w.seedSymmetric();
    const a = w.worker('A', ['notify:before']);
    await expect(a.handleEvent(w.event(s.name, s.version))).rejects.toThrow(/Injected/);
    const r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ step: 'notify', promoted: { tidied: true } });
    expect(w.secrets.all('local', `${s.name}--pending`).filter((v) => v.enabled)).toHaveLength(0);
  });

  test('a retire that keeps failing never fails the rotation: it alerts (then daily), the old credential stays enabled until it succeeds', async () => {
    const w = world({ maxAttempts: 3 });
    const { props: s, old } = w.seedEntra();
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    const id = w.rotations.all()[0]!.id;
    w.clock.advance(8 * DAY_MS);
    graph.failNext(30, 503, 'removePassword');
    for (let hour = 0; hour < 28; hour++) {
      await a.resumeDue();
      w.clock.advance(3600_000);
    }
    const r = (await w.rotations.read(id))!.doc;
    expect(r).toMatchObject({ status: 'active', step: 'retire' });
    expect(r.steps.retire!.failures).toBe(28);
    expect(w.log.lines.filter((l) => l.startsWith('error ALERT: credential rotation is stuck at retire'))).toHaveLength(2);
    expect(r.alerts).toMatchObject({ count: 2, step: 'retire' });
    // The old credential still works: enabled in the vault and at Graph.
    expect(w.secrets.all('local', s.name)[0]!.enabled).toBe(true);
    expect(graph.passwords(APP).map((p) => p.keyId)).toContain(old.keyId);
    // A renew (or the sweep) does not mint a third credential on top of it.
    await expect(a.renew('local', s.name)).rejects.toMatchObject({ code: 'ROTATION_IN_FLIGHT', details: { rotationId: id } });
    expect((await a.sweep()).started).toEqual([]);
    expect(await a.handleEvent(w.event(s.name, w.secrets.all('local', s.name)[1]!.version))).toMatchObject({ outcome: 'ignored' });

    for (let hour = 0; hour < 8 && (await w.rotations.read(id))!.doc.status !== 'completed'; hour++) {
      w.clock.advance(3600_000);
      await a.resumeDue();
    }
    expect(w.rotations.all()).toHaveLength(1);
    expect(w.rotations.all()[0]!.status).toBe('completed');
    w.assertRotated(s.name, old.secretText, 'entra');
  });
});

describe('failed and superseded rotations leave no valid credential behind', () => {
  test('a clean-up that fails when the rotation fails is retried by the resume timer', async () => {
    const w = world({ maxAttempts: 2 });
    const { props: s, old } = w.seedEntra();
    const a = w.worker('A');
    await hidingNewPasswords(async () => {
      await a.handleEvent(w.event(s.name, s.version));
      graph.failNext(1, 503, 'removePassword'); // the clean-up at failure cannot remove the password
      w.clock.advance(3600_000);
      await a.resumeDue();
    });
    let r = w.rotations.all()[0]!;
    expect(r.status).toBe('failed');
    expect(r.cleanup).toMatchObject({ state: 'pending', tries: 1 });
    expect(w.secrets.all('local', `${s.name}--pending`).map((v) => v.enabled)).toEqual([false]);
    expect(graph.passwords(APP)).toHaveLength(2); // the new password could not be removed yet

    w.clock.advance(3600_000);
    expect(await a.resumeDue()).toMatchObject({ due: 1, errors: 0 });
    r = w.rotations.all()[0]!;
    expect(r.cleanup).toMatchObject({ state: 'done', tries: 2 });
    expect(r.dueAt).toBeUndefined();
    expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([old.keyId]);
    expect((await a.resumeDue()).due).toBe(0);
    expect(await a.getRotation(r.id)).toMatchObject({ status: 'failed', cleanup: { state: 'done', tries: 2 } });
  });

  test('superseded after a crash between addPassword and storing the value: the lost password is removed', async () => {
    const w = world();
    const { props: s, old } = w.seedEntra();
    const crashing = w.worker('A', ['create:provider*1']);
    await expect(crashing.handleEvent(w.event(s.name, s.version))).rejects.toThrow(/Injected/);
    expect(graph.passwords(APP)).toHaveLength(2); // made at Graph, never stored: its text is lost
    // Meanwhile someone replaces the version by hand.
    w.secrets.seed('local', s.name, old.secretText, { tags: { ...s.tags } });
    w.clock.advance(2 * LEASE_S * 1000);
    await w.worker('B').resumeDue();
    const r = w.rotations.all()[0]!;
    expect(r.status).toBe('superseded');
    expect(r.cleanup).toMatchObject({ state: 'done' });
    expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([old.keyId]);
    expect(w.secrets.all('local', `${s.name}--pending`)).toHaveLength(0);
  });

  test('superseded before promotion: the pending value is switched off and its password removed', async () => {
    const w = world();
    const { props: s, old } = w.seedEntra();
    const a = w.worker('A', ['promote:before*1']);
    await expect(a.handleEvent(w.event(s.name, s.version))).rejects.toThrow(/Injected/);
    w.secrets.seed('local', s.name, old.secretText, { tags: { ...s.tags } });
    await w.worker('B').resumeDue();
    const r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'superseded', cleanup: { state: 'done' } });
    expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([old.keyId]);
    expect(w.secrets.all('local', `${s.name}--pending`).map((v) => v.enabled)).toEqual([false]);
  });
});

describe('secrets that could never rotate are refused before anything is created', () => {
  test.each([
    ['a name too long for its --pending sibling', 'k'.repeat(119), {}],
    ['too many tags for the promoted version', 'tagged-key', Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`team-tag-${i}`, 'x']))],
  ])('%s', async (_label, name, extra) => {
    const w = world();
    const props = w.secrets.seed('local', name, randomBytes(32).toString('base64'), {
      tags: { 'keyturn-provider': 'symmetric', ...extra },
      expiresOn: new Date(w.clock.time.getTime() + DAY_MS),
    });
    const a = w.worker('A');
    expect(await a.handleEvent(w.event(name, props.version))).toMatchObject({ outcome: 'ignored', reason: expect.stringMatching(/^invalid: \((name|tags)\)/) });
    expect((await a.sweep()).started).toEqual([]);
    await expect(a.renew('local', name)).rejects.toMatchObject({ code: 'NOT_MANAGED' });
    expect(w.rotations.all()).toHaveLength(0);
    expect(w.secrets.all('local', `${name}--pending`)).toHaveLength(0);
    const [row] = await a.listCredentials();
    expect(row).toMatchObject({ name, provider: 'symmetric', status: 'invalid', problem: expect.stringMatching(/^\((name|tags)\): /) });
  });

  test('the largest that fits still rotates: a 118-character name, 11 user tags', async () => {
    const w = world();
    const name = 'k'.repeat(118);
    const tags = { 'keyturn-provider': 'symmetric', ...Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`team-tag-${i}`, 'x'])) };
    const props = w.secrets.seed('local', name, randomBytes(32).toString('base64'), { tags, expiresOn: new Date(w.clock.time.getTime() + DAY_MS) });
    expect(await w.worker('A').handleEvent(w.event(name, props.version))).toMatchObject({ outcome: 'started' });
    expect(Object.keys(w.secrets.all('local', name).at(-1)!.tags)).toHaveLength(15);
  });
});

describe('the sweep and the listing', () => {
  test('renews what is inside the window or expired, once', async () => {
    const w = world();
    const soon = w.seedSymmetric('soon', 10);
    w.seedSymmetric('later', 40);
    const expired = w.seedSymmetric('expired', -1);
    w.secrets.seed('local', 'plain', randomBytes(16).toString('hex'), { tags: {}, expiresOn: new Date(w.clock.time) });
    const a = w.worker('A');
    const report = await a.sweep();
    expect(report.managed).toBe(3);
    expect(report.started.sort()).toEqual([`local:expired:${expired.version}:1`, `local:soon:${soon.version}:1`]);
    expect((await a.sweep()).started).toEqual([]);

    const list = await a.listCredentials();
    expect(list.map((c) => c.name).sort()).toEqual(['expired', 'later', 'soon']);
    expect(list.find((c) => c.name === 'soon')).toMatchObject({
      vault: 'local',
      provider: 'symmetric',
      stage: 'current',
      rotation: { id: `local:soon:${soon.version}:1`, state: 'grace' },
    });
    expect(list.find((c) => c.name === 'later')).toMatchObject({ rotation: null, status: 'managed' });
    expect(await a.getRotation(`local:soon:${soon.version}:1`)).toMatchObject({ state: 'grace', attempt: 1 });
    await expect(a.getRotation('local:soon:ffff:1')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    w.assertNoLeaks();
  });
});

describe('the sweep survives one bad item', () => {
  const throttled = () => Object.assign(new Error('Too Many Requests'), { statusCode: 429, code: 'Throttled' });

  test('a secret whose read keeps failing is counted, logged and skipped; the rest is swept; the next run retries it', async () => {
    const w = world();
    const a1 = w.seedSymmetric('a-first', 10);
    const bad = w.seedSymmetric('b-bad', 10);
    const c3 = w.seedSymmetric('c-last', 10);
    const latest = w.secrets.latest.bind(w.secrets);
    let failing = true;
    w.secrets.latest = async (vault, name) => {
      if (failing && name === bad.name) throw throttled();
      return latest(vault, name);
    };
    const a = w.worker('A');
    const report = await a.sweep();
    expect(report.started.sort()).toEqual([`local:a-first:${a1.version}:1`, `local:c-last:${c3.version}:1`]);
    expect(report.failed).toEqual([{ vault: 'local', name: 'b-bad', error: expect.objectContaining({ name: 'Error', code: 'Throttled', statusCode: 429 }) }]);
    expect(w.log.lines.filter((l) => l.startsWith('warn Sweep skipped a secret'))).toHaveLength(1);
    expect(w.secrets.all('local', 'b-bad')).toHaveLength(1);

    failing = false;
    const next = await a.sweep();
    expect(next.started).toEqual([`local:b-bad:${bad.version}:1`]);
    expect(next.failed).toEqual([]);
    w.assertNoLeaks();
  });

  test('a listing that fails (at once, or at a later page) is reported; what was listed is swept', async () => {
    const w = world();
    const first = w.seedSymmetric('first', 10);
    w.seedSymmetric('second', 10);
    const a = w.worker('A');
    const list = w.secrets.list.bind(w.secrets);
    w.secrets.list = async () => {
      throw throttled();
    };
    expect(await a.sweep()).toEqual({ managed: 0, started: [], alerted: [], failed: [{ vault: 'local', error: expect.objectContaining({ statusCode: 429 }) }] });

    // The first page arrives, the next one fails.
    w.secrets.list = (async (vault: string) => {
      const [one] = await list(vault);
      return (async function* () {
        yield one!;
        throw throttled();
      })();
    }) as unknown as typeof w.secrets.list;
    const report = await a.sweep();
    expect(report.started).toEqual([`local:first:${first.version}:1`]);
    expect(report.failed).toEqual([{ vault: 'local', error: expect.objectContaining({ statusCode: 429 }) }]);
    expect(w.log.lines.filter((l) => l.startsWith('warn Sweep could not list the vault'))).toHaveLength(2);
  });
});

describe('renew with fromVersion and an Idempotency-Key', () => {
  const enabledVersions = (w: ReturnType<typeof world>, name: string) => w.secrets.all('local', name).filter((v) => v.enabled).length;

  test('fromVersion: renewed once; repeated, it answers 200 with the rotation that replaced it; unknown and not current is 409', async () => {
    const w = world();
    const s = w.seedSymmetric();
    const a = w.worker('A');
    const first = await a.renewRequest('local', s.name, { fromVersion: s.version.toUpperCase() });
    expect(first).toMatchObject({ status: 202, replayed: false, body: { rotationId: `local:db-key:${s.version}:1`, rotation: { state: 'grace' } } });
    const again = await w.worker('B').renewRequest('local', s.name, { fromVersion: s.version });
    expect(again).toMatchObject({ status: 200, body: { rotationId: `local:db-key:${s.version}:1` } });
    expect(w.rotations.all()).toHaveLength(1);
    expect(w.secrets.all('local', s.name)).toHaveLength(2);
    await expect(a.renewRequest('local', s.name, { fromVersion: 'abc123' })).rejects.toMatchObject({
      code: 'VERSION_NOT_CURRENT',
      details: { fromVersion: 'abc123', currentVersion: w.secrets.all('local', s.name)[1]!.version },
    });
    // While the first is still in flight, a repeat gets it too (not a 409).
    const t = w.seedSymmetric('other');
    const held = w.worker('C', ['verify:before']);
    await expect(held.renewRequest('local', 'other', { fromVersion: t.version })).rejects.toThrow(/Injected/);
    await expect(a.renewRequest('local', 'other', { fromVersion: t.version })).resolves.toMatchObject({ status: 200, body: { rotation: { state: 'verify' } } });
  });

  test('concurrent calls with fromVersion from two workers: one rotation per secret, both answer it', async () => {
    const w = world();
    const names = ['k1', 'k2', 'k3'];
    const seeded = names.map((n) => w.seedSymmetric(n));
    const [a, b] = [w.worker('A'), w.worker('B')];
    const answers = await Promise.all(
      seeded.flatMap((s) => [a, b, a, b].map((x) => x.renewRequest('local', s.name, { fromVersion: s.version }).catch((e: { code: string }) => e.code))),
    );
    expect(w.rotations.all()).toHaveLength(3);
    for (const [i, s] of seeded.entries()) {
      const mine = answers.slice(i * 4, i * 4 + 4);
      for (const x of mine) {
        if (typeof x === 'string') expect(x).toBe('ROTATION_IN_FLIGHT');
        else expect(x.body.rotationId).toBe(`local:${s.name}:${s.version}:1`);
      }
      expect(mine.filter((x) => typeof x !== 'string' && x.status === 202)).toHaveLength(1);
      expect(w.secrets.all('local', s.name)).toHaveLength(2);
    }
  });

  test('Idempotency-Key: the same request gets the same answer; another body with the key is 422; keys expire', async () => {
    const w = world();
    const s = w.seedSymmetric();
    const a = w.worker('A');
    const first = await a.renewRequest('local', s.name, { idempotencyKey: 'key-1' });
    expect(first).toMatchObject({ status: 202, replayed: false });
    const replay = await w.worker('B').renewRequest('local', 'DB-KEY', { idempotencyKey: 'key-1' });
    expect(replay).toEqual({ ...first, replayed: true });
    expect(w.rotations.all()).toHaveLength(1);
    await expect(a.renewRequest('local', s.name, { idempotencyKey: 'key-1', fromVersion: s.version })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await expect(a.renewRequest('local', 'other', { idempotencyKey: 'key-1' })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    // Stored: a hash of the key and of the request, the answer (no values).
    expect([...w.idempotency.docs.values()].map((v) => Object.keys(v.doc).sort())).toEqual([['answer', 'expiresAt', 'fingerprint', 'heldUntil', 'id']]);
    expect(JSON.stringify([...w.idempotency.docs.values()]).includes('key-1')).toBe(false);

    w.clock.advance(25 * 3600_000);
    const later = await a.renewRequest('local', s.name, { idempotencyKey: 'key-1', fromVersion: s.version });
    expect(later).toMatchObject({ status: 200, replayed: false, body: { rotationId: first.body.rotationId } });
    w.assertNoLeaks();
  });

  test('Idempotency-Key: a request that fails is not remembered (a retry runs again); two at once run once', async () => {
    const w = world();
    const a = w.worker('A');
    await expect(a.renewRequest('local', 'later', { idempotencyKey: 'k' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    w.seedSymmetric('later');
    await expect(a.renewRequest('local', 'later', { idempotencyKey: 'k' })).resolves.toMatchObject({ status: 202, replayed: false });

    const s = w.seedSymmetric('both');
    const both = await Promise.all([a, w.worker('B')].map((x) => x.renewRequest('local', s.name, { idempotencyKey: 'same' })));
    expect(both.map((x) => x.replayed).sort()).toEqual([false, true]);
    expect(both[0]!.body).toEqual(both[1]!.body);
    expect(w.rotations.all().filter((r) => r.name === 'both')).toHaveLength(1);
  });

  test('a renew while the previous rotation is in grace retires its old version first: never more than two enabled versions', async () => {
    const w = world();
    const { props: s } = w.seedEntra();
    const most: number[] = [];
    w.secrets.afterCommit = async (p) => void (p.name === s.name && most.push(enabledVersions(w, s.name)));
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    const r1 = w.rotations.all()[0]!;
    expect(r1.step).toBe('retire');
    expect(enabledVersions(w, s.name)).toBe(2);

    w.clock.advance(DAY_MS); // in grace
    const second = await a.renewRequest('local', s.name);
    expect(second).toMatchObject({ status: 202, body: { rotation: { fromVersion: r1.promoted!.version, state: 'grace' } } });
    const first = w.rotations.all().find((r) => r.id === r1.id)!;
    expect(first.status).toBe('completed');
    expect(invariantViolations(first)).toEqual([]);
    const versions = w.secrets.all('local', s.name);
    expect(versions.map((v) => v.enabled)).toEqual([false, true, true]);
    expect(graph.passwords(APP)).toHaveLength(2); // the first password went with its version
    expect(Math.max(...most)).toBeLessThanOrEqual(2);
    expect(w.log.lines.some((l) => l.includes('the previous version retires now'))).toBe(true);
  });

  test('when the previous rotation cannot retire now, the renew is refused (409) and nothing new is created', async () => {
    const w = world();
    const s = w.seedSymmetric();
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    const update = w.secrets.update.bind(w.secrets);
    w.secrets.update = async (vault, name, version, changes) => {
      if (changes.enabled === false && name === s.name) throw Object.assign(new Error('Service Unavailable'), { statusCode: 503 });
      return update(vault, name, version, changes);
    };
    const r1 = w.rotations.all()[0]!;
    await expect(a.renewRequest('local', s.name)).rejects.toMatchObject({ code: 'ROTATION_IN_FLIGHT', details: { rotationId: r1.id } });
    expect(w.rotations.all()).toHaveLength(1);
    expect(w.rotations.all()[0]).toMatchObject({ status: 'active', step: 'retire', steps: { retire: { failures: 1 } } });
    expect(enabledVersions(w, s.name)).toBe(2);
  });
});

describe('promote: a write that landed is never taken for one that failed', () => {
  const currentValue = (w: ReturnType<typeof world>, name: string) => w.secrets.all('local', name).at(-1)!;

  test.each(['symmetric', 'entra'] as const)('%s: the last allowed try commits but loses its answer: the step completes, notify and retire run', async (provider) => {
    const w = world({ maxAttempts: 1 });
    const seeded = provider === 'symmetric' ? w.seedSymmetric() : w.seedEntra().props;
    const oldValue = w.secrets.consumerRead('local', seeded.name);
    w.secrets.writeFaults.push({ commits: 1, lost: true });
    const a = w.worker('A');
    await a.handleEvent(w.event(seeded.name, seeded.version));
    const r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'retire', promoted: { version: currentValue(w, seeded.name).version } });
    expect(r.steps.promote!.failures).toBe(0);
    expect(w.notifier.events.map((e) => e.data.newVersion)).toEqual([currentValue(w, seeded.name).version]);
    expect(w.log.lines.some((l) => l.includes('its write landed'))).toBe(true);
    w.clock.advance(8 * DAY_MS);
    await a.resumeDue();
    expect(w.rotations.all()[0]!.status).toBe('completed');
    w.assertRotated(seeded.name, oldValue, provider);
  });

  test.each([
    ['an SDK retry after a lost response wrote the value twice, then the answer was lost', true],
    ['an SDK retry after a lost response wrote the value twice, and answered', false],
  ])('%s: the newest is recorded, the other disabled', async (_label, lost) => {
    const w = world({ maxAttempts: 3 });
    const { props: s, old } = w.seedEntra();
    w.secrets.writeFaults.push({ commits: 2, lost });
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    let versions = w.secrets.all('local', s.name);
    expect(versions).toHaveLength(3);
    const [, first, second] = versions;
    expect(first!.value).toBe(second!.value);
    expect(w.rotations.all()[0]!.promoted?.version).toBe(second!.version);
    expect(first!).toMatchObject({ enabled: false, tags: { 'keyturn-stage': 'retired' } });
    w.clock.advance(8 * DAY_MS);
    await a.resumeDue();
    const r = w.rotations.all()[0]!;
    expect(r.status).toBe('completed');
    versions = w.secrets.all('local', s.name);
    expect(versions.map((v) => v.enabled)).toEqual([false, false, true]);
    expect(w.secrets.consumerRead('local', s.name)).toBe(second!.value);
    expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([second!.tags['keyturn-credential-id']]);
    expect(graph.passwords(APP).map((p) => p.keyId)).not.toContain(old.keyId);
    for (const x of w.rotations.all()) expect(invariantViolations(x)).toEqual([]);
    w.assertNoLeaks();
  });

  test('a listing that lags behind cannot make a landed promotion look superseded: latest itself carries the token', async () => {
    const w = world({ maxAttempts: 3 });
    const s = w.seedSymmetric();
    const oldValue = w.secrets.consumerRead('local', s.name);
    w.secrets.writeFaults.push({ commits: 1, lost: true });
    w.secrets.afterCommit = async (p) => void (p.name === s.name && (w.secrets.listingLag = 1)); // the new version is not listed yet
    const a = w.worker('A');
    await a.handleEvent(w.event(s.name, s.version));
    const r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'retire', promoted: { version: currentValue(w, s.name).version } });
    w.secrets.listingLag = 0;
    w.clock.advance(8 * DAY_MS);
    await a.resumeDue();
    expect(w.rotations.all()[0]!.status).toBe('completed');
    w.assertRotated(s.name, oldValue, 'symmetric');
  });

  test('a try that cannot see its landed write yet fails; the next one adopts it from latest although the listing still lags', async () => {
    const w = world({ maxAttempts: 3 });
    const s = w.seedSymmetric();
    w.secrets.writeFaults.push({ commits: 1, lost: true });
    const a = w.worker('A');
    // The check after the failure cannot see the write yet (listing and latest both lag): the try is recorded as failed.
    const latest = w.secrets.latest.bind(w.secrets);
    let lagging = false;
    w.secrets.latest = async (vault, name) => (lagging && name === s.name ? { ...s, tags: { ...s.tags } } : latest(vault, name));
    w.secrets.afterCommit = async (p) => void (p.name === s.name && ((w.secrets.listingLag = 1), (lagging = true)));
    await a.handleEvent(w.event(s.name, s.version));
    expect(w.rotations.all()[0]).toMatchObject({ status: 'active', step: 'promote', steps: { promote: { failures: 1 } } });
    // The next try: the listing still lags, latest is up to date.
    lagging = false;
    w.clock.advance(3600_000);
    await a.resumeDue();
    const r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'retire', promoted: { version: currentValue(w, s.name).version } });
    expect(w.secrets.writes.filter((x) => x.name === s.name)).toHaveLength(1);
  });
});

describe('the sweep stops re-alerting a failed attempt once the credential is renewed', () => {
  const failAttempt = async (w: ReturnType<typeof world>, start: () => Promise<unknown>) =>
    hidingNewPasswords(async () => {
      await start();
      for (let i = 0; i < 4; i++) {
        w.clock.advance(3600_000);
        await w.worker('A').resumeDue();
      }
    });

  test('renewed by the next attempt: no alert about attempt 1 on any later day', async () => {
    const w = world({ maxAttempts: 2 });
    const { props: s } = w.seedEntra('app-secret', 20);
    const a = w.worker('A');
    await failAttempt(w, () => a.handleEvent(w.event(s.name, s.version)));
    const failed = w.rotations.all()[0]!;
    expect(failed.status).toBe('failed');
    w.clock.advance(DAY_MS);
    expect((await a.sweep()).alerted).toEqual([failed.id]);

    await a.renew('local', s.name);
    const alerted: string[] = [];
    for (let day = 0; day < 12; day++) {
      w.clock.advance(DAY_MS);
      await a.resumeDue();
      const report = await a.sweep();
      alerted.push(...report.alerted);
      expect(report.started).toEqual([]);
    }
    expect(alerted).toEqual([]);
    expect(w.rotations.all().find((r) => r.attempt === 2)!.status).toBe('completed');
    expect(w.rotations.all().find((r) => r.attempt === 1)!.alerts?.count).toBe(1);
  });

  test('a later attempt that failed too: only it alerts, daily, then once at expiry', async () => {
    const w = world({ maxAttempts: 2 });
    const { props: s } = w.seedEntra('app-secret', 6);
    const a = w.worker('A');
    await failAttempt(w, () => a.handleEvent(w.event(s.name, s.version)));
    await failAttempt(w, () => a.renew('local', s.name));
    const [first, second] = [...w.rotations.all()].sort((x, y) => x.attempt - y.attempt);
    expect([first!.status, second!.status]).toEqual(['failed', 'failed']);
    const perDay: string[][] = [];
    for (let day = 0; day < 9; day++) {
      w.clock.advance(DAY_MS);
      perDay.push((await a.sweep()).alerted);
    }
    // Days 1-5 daily, day 6 the last (expired), then silence; attempt 1 never.
    expect(perDay).toEqual([...Array(6).fill([second!.id]), [], [], []]);
    expect(w.log.lines.filter((l) => l.includes('credential is EXPIRED'))).toHaveLength(1);
  });

  test('replaced by hand: the failed attempt of the old version stops alerting', async () => {
    const w = world({ maxAttempts: 2 });
    const { props: s, old } = w.seedEntra('app-secret', 20);
    const a = w.worker('A');
    await failAttempt(w, () => a.handleEvent(w.event(s.name, s.version)));
    w.secrets.seed('local', s.name, old.secretText, { tags: { ...s.tags }, expiresOn: new Date(w.clock.time.getTime() + 90 * DAY_MS) });
    for (let day = 0; day < 5; day++) {
      w.clock.advance(DAY_MS);
      expect((await a.sweep()).alerted).toEqual([]);
    }
  });
});

describe('a lease that lapses while its step runs', () => {
  test.each(['symmetric', 'entra'] as const)('%s: a slow provider: the step is abandoned before its next write, the new holder finishes it', async (provider) => {
    const w = world();
    const seeded = provider === 'symmetric' ? w.seedSymmetric() : w.seedEntra().props;
    const oldValue = w.secrets.consumerRead('local', seeded.name);
    const slow = w.providers[provider === 'symmetric' ? 'symmetric' : 'entra-app-password'];
    const create = slow.create;
    const b = w.worker('B');
    let slowed = false;
    slow.create = async (...args) => {
      const made = await create(...args);
      if (!slowed) {
        slowed = true;
        w.clock.advance((LEASE_S + 1) * 1000); // the call took longer than the lease
        await b.resumeDue(); // the resume timer takes the step over and runs the rotation to its grace
      }
      return made;
    };
    await w.worker('A').handleEvent(w.event(seeded.name, seeded.version));
    const r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'retire' });
    expect(r.steps.create).toMatchObject({ failures: 0 });
    expect(r.steps.create!.tokens).toHaveLength(2);
    expect(r.lastError).toBeUndefined();
    // A wrote nothing after its lease lapsed: one pending value, B's.
    const pending = w.secrets.all('local', `${seeded.name}--pending`);
    expect(pending.map((v) => v.tags['keyturn-step-token'])).toEqual([r.steps.create!.tokens[1]]);
    expect(w.log.lines.some((l) => l.startsWith('warn Rotation step abandoned'))).toBe(true);
    w.clock.advance(8 * DAY_MS);
    await b.resumeDue();
    expect(w.rotations.all()[0]!.status).toBe('completed');
    w.assertRotated(seeded.name, oldValue, provider);
  });

  test('a slow answer after the pending write landed: the late worker never discards what the new holder is adopting', async () => {
    const w = world();
    const s = w.seedSymmetric();
    const oldValue = w.secrets.consumerRead('local', s.name);
    const b = w.worker('B');
    let bRun: Promise<unknown> | undefined;
    let reached!: () => void;
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    w.secrets.afterCommit = async (props) => {
      if (bRun || !props.name.endsWith('--pending')) return;
      w.clock.advance((LEASE_S + 1) * 1000); // the answer comes after the lease lapsed
      bRun = b.resumeDue();
      await atGate;
    };
    let held = false;
    w.rotations.beforeReplace = async (doc) => {
      // B has adopted A's pending value and is about to record it: it waits here while A's late answer arrives.
      if (!held && bRun && doc.step === 'verify' && doc.pending) {
        held = true;
        reached();
        await gate;
      }
    };
    await w.worker('A').handleEvent(w.event(s.name, s.version));
    expect(w.secrets.all('local', `${s.name}--pending`).map((v) => v.enabled)).toEqual([true]);
    release();
    await bRun;
    let r = w.rotations.all()[0]!;
    expect(r).toMatchObject({ status: 'active', step: 'retire' });
    expect(r.pending!.version).toBe(w.secrets.all('local', `${s.name}--pending`)[0]!.version);
    expect(r.lastError).toBeUndefined();
    w.clock.advance(8 * DAY_MS);
    await b.resumeDue();
    r = w.rotations.all()[0]!;
    expect(r.status).toBe('completed');
    w.assertRotated(s.name, oldValue, 'symmetric');
  });
});

describe('the next attempt takes provider facts from the current tags', () => {
  test('CredentialId fixed after a failure: attempt 2 retires the right password, not the one the old tag named', async () => {
    const w = world({ maxAttempts: 2 });
    const old = existingPassword('before Keyturn');
    const other = existingPassword('another consumer of the app');
    graph.addApp(APP, [old, other]);
    const tags = { 'keyturn-provider': 'entra-app-password', ProviderAddress: APP, CredentialId: other.keyId, ValidityPeriodDays: '60' };
    const s = w.secrets.seed('local', 'app-secret', old.secretText, { tags, expiresOn: new Date(w.clock.time.getTime() + 10 * DAY_MS) });
    const a = w.worker('A');
    await hidingNewPasswords(async () => {
      await a.handleEvent(w.event(s.name, s.version));
      w.clock.advance(3600_000);
      await a.resumeDue();
    });
    expect(w.rotations.all()[0]!.status).toBe('failed');
    await w.secrets.update('local', s.name, s.version, { tags: { ...tags, CredentialId: old.keyId } }); // the operator's fix

    await a.renew('local', s.name);
    const attempt2 = w.rotations.all().find((r) => r.attempt === 2)!;
    expect(attempt2.previousCredentialRef).toBe(old.keyId);
    w.clock.advance(8 * DAY_MS);
    await a.resumeDue();
    const done = w.rotations.all().find((r) => r.attempt === 2)!;
    expect(done.status).toBe('completed');
    const keyIds = graph.passwords(APP).map((p) => p.keyId);
    expect(keyIds).toContain(other.keyId);
    expect(keyIds).not.toContain(old.keyId);
    expect(keyIds).toContain(done.pending!.credentialRef);
  });

  test('the application id fixed after a failure: leftovers are removed from the app they were made on', async () => {
    const WRONG = '9a1c2b3d-0000-4000-8000-00000000abcd';
    const w = world({ maxAttempts: 2 });
    const old = existingPassword('before Keyturn');
    graph.addApp(APP, [old]);
    graph.addApp(WRONG, []);
    const tags = { 'keyturn-provider': 'entra-app-password', ProviderAddress: WRONG, CredentialId: old.keyId, ValidityPeriodDays: '60' };
    const s = w.secrets.seed('local', 'app-secret', old.secretText, { tags, expiresOn: new Date(w.clock.time.getTime() + 10 * DAY_MS) });
    const a = w.worker('A');
    await hidingNewPasswords(async () => {
      await a.handleEvent(w.event(s.name, s.version));
      graph.failNext(1, 503, 'removePassword'); // the clean-up at failure cannot remove attempt 1's password
      w.clock.advance(3600_000);
      await a.resumeDue();
    });
    expect(w.rotations.all()[0]).toMatchObject({ status: 'failed', cleanup: { state: 'pending' } });
    expect(graph.passwords(WRONG)).toHaveLength(1);
    await w.secrets.update('local', s.name, s.version, { tags: { ...tags, ProviderAddress: APP } });

    await a.renew('local', s.name); // attempt 2 cleans attempt 1's leftovers before it creates
    const attempt2 = w.rotations.all().find((r) => r.attempt === 2)!;
    expect(attempt2).toMatchObject({ appObjectId: APP, step: 'retire', leftovers: { appObjectId: WRONG } });
    expect(graph.passwords(WRONG)).toEqual([]);
    w.clock.advance(8 * DAY_MS);
    await a.resumeDue();
    expect(w.rotations.all().find((r) => r.attempt === 2)!.status).toBe('completed');
    expect(graph.passwords(APP).map((p) => p.keyId)).toEqual([w.secrets.all('local', s.name).at(-1)!.tags['keyturn-credential-id']]);
  });
});
